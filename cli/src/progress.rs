//! Render progress for people: a bar on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use deepstyle_coordinator::imaging::{self, BitDepth};
use deepstyle_coordinator::scales::Scale;
use deepstyle_worker::stylize::Progress;
use image::Rgb32FImage;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use crate::pipeline::{Reporter, Stage};

/// Shows a progress bar (or log lines) and writes intermediate images.
#[derive(Debug)]
pub struct RenderProgress {
    bar: Option<ProgressBar>,
    print_every: u32,
    save_every: Option<u32>,
    output: PathBuf,
}

impl RenderProgress {
    /// Creates the reporter; the bar appears only when stderr is a terminal.
    pub fn new(print_every: u32, save_every: Option<u32>, output: PathBuf) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} it  ETA {eta}  {msg}",
            )
            .expect("progress template is valid");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            print_every,
            save_every,
            output,
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn snapshot_path(&self, scale: usize, iteration: u32) -> PathBuf {
        let stem = self
            .output
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy();
        let ext = self
            .output
            .extension()
            .unwrap_or_default()
            .to_string_lossy();
        self.output
            .with_file_name(format!("{stem}_s{scale}_{iteration}.{ext}"))
    }
}

impl Reporter for RenderProgress {
    fn on_plan(&mut self, scales: &[Scale], tiles: &[usize], total: u64) {
        for (scale, n) in scales.iter().zip(tiles) {
            info!(
                scale = scale.index,
                width = scale.width,
                height = scale.height,
                tiles = n,
                iterations = scale.iterations,
                "planned scale"
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    fn on_iteration(&mut self, stage: Stage, p: &Progress) {
        let l = p.losses;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "scale {}/{} tile {}/{}  loss {:.3e} (content {:.2e} style {:.2e} tv {:.2e})",
                stage.scale + 1,
                stage.num_scales,
                stage.tile + 1,
                stage.num_tiles,
                l.total(),
                l.content,
                l.style,
                l.tv
            ));
        } else if self.print_every > 0
            && (p.iteration.is_multiple_of(self.print_every) || p.iteration == p.iterations)
        {
            info!(
                scale = stage.scale,
                tile = stage.tile,
                tiles = stage.num_tiles,
                iteration = p.iteration,
                iterations = p.iterations,
                total = l.total(),
                content = l.content,
                style = l.style,
                tv = l.tv,
                "iteration"
            );
        }
    }

    fn snapshot_every(&self) -> Option<u32> {
        self.save_every
    }

    fn on_snapshot(&mut self, scale: usize, iteration: u32, image: &Rgb32FImage) {
        let path = self.snapshot_path(scale, iteration);
        match imaging::save(&path, image, None, BitDepth::Eight) {
            Ok(()) => info!(path = %path.display(), "saved intermediate image"),
            Err(error) => warn!(%error, "failed to save intermediate image"),
        }
    }
}
