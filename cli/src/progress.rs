//! Render progress for people: a bar on a terminal, log lines otherwise, and intermediate
//! images of whole-image scales. It watches the embedded worker's engine task by task.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use deepstyle_coordinator::imaging::{self, BitDepth};
use deepstyle_coordinator::jobs::plan::JobPlan;
use deepstyle_proto::v1 as pb;
use deepstyle_worker::farm::task::TaskObserver;
use deepstyle_worker::stylize::Progress;
use image::Rgb32FImage;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

/// Shows a progress bar (or log lines), writes intermediate images and counts the tasks run.
#[derive(Debug)]
pub struct RenderProgress {
    bar: Option<ProgressBar>,
    print_every: u32,
    save_every: Option<u32>,
    output: PathBuf,
    tiles_per_scale: Mutex<Vec<usize>>,
    style_targets_run: AtomicUsize,
    tiles_run: AtomicUsize,
}

impl RenderProgress {
    /// Creates the reporter; the bar appears only when `bar` is set and stderr is a terminal.
    pub fn new(print_every: u32, save_every: Option<u32>, output: PathBuf, bar: bool) -> Self {
        let bar = (bar && std::io::stderr().is_terminal()).then(|| {
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
            tiles_per_scale: Mutex::new(Vec::new()),
            style_targets_run: AtomicUsize::new(0),
            tiles_run: AtomicUsize::new(0),
        }
    }

    /// A reporter that shows and writes nothing, for tests that only count tasks.
    pub fn quiet() -> Self {
        Self::new(0, None, PathBuf::new(), false)
    }

    /// Logs the plan and sizes the bar to its total iterations.
    pub fn on_plan(&self, plan: &JobPlan) {
        let mut total = 0;
        let mut tiles = Vec::with_capacity(plan.scales.len());
        for (index, scale) in plan.scales.iter().enumerate() {
            let n = plan.num_tiles(index);
            info!(
                scale = index,
                width = scale.width,
                height = scale.height,
                tiles = n,
                iterations = scale.iterations,
                "planned scale"
            );
            total += u64::from(scale.iterations) * n as u64;
            tiles.push(n);
        }
        *self.lock_tiles() = tiles;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Returns how many style-target tasks the engine ran.
    pub fn style_targets_run(&self) -> usize {
        self.style_targets_run.load(Ordering::Relaxed)
    }

    /// Returns how many tile tasks the engine ran (retries included).
    pub fn tiles_run(&self) -> usize {
        self.tiles_run.load(Ordering::Relaxed)
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn lock_tiles(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.tiles_per_scale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot_path(&self, scale: u32, iteration: u32) -> PathBuf {
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

impl TaskObserver for RenderProgress {
    fn on_task(&self, task: &pb::Task) {
        match task.kind {
            Some(pb::task::Kind::StyleTarget(_)) => &self.style_targets_run,
            Some(pb::task::Kind::Tile(_)) => &self.tiles_run,
            None => return,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn on_iteration(&self, task: &pb::Task, p: &Progress) {
        let l = p.losses;
        let (num_scales, num_tiles) = {
            let tiles = self.lock_tiles();
            let n = tiles.get(task.scale as usize).copied().unwrap_or(1);
            (tiles.len(), n)
        };
        let tile = task.tile_index.unwrap_or(0);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!(
                "scale {}/{num_scales} tile {}/{num_tiles}  loss {:.3e} \
                 (content {:.2e} style {:.2e} tv {:.2e})",
                task.scale + 1,
                tile + 1,
                l.total(),
                l.content,
                l.style,
                l.tv
            ));
        } else if self.print_every > 0
            && (p.iteration.is_multiple_of(self.print_every) || p.iteration == p.iterations)
        {
            info!(
                scale = task.scale,
                tile,
                tiles = num_tiles,
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

    fn on_snapshot(&self, task: &pb::Task, iteration: u32, image: &Rgb32FImage) {
        let path = self.snapshot_path(task.scale, iteration);
        match imaging::save(&path, image, None, BitDepth::Eight) {
            Ok(()) => info!(path = %path.display(), "saved intermediate image"),
            Err(error) => warn!(%error, "failed to save intermediate image"),
        }
    }
}
