//! `deepstyle render`: the whole pipeline in this process, no Redis, no network.
//!
//! The render runs as a job on an [`EmbeddedFarm`]: the same planning, tiles and stitching as
//! the render farm, with the local engine as its one worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use deepstyle_coordinator::imaging::{self, BitDepth};
use deepstyle_coordinator::shutdown;
use deepstyle_worker::farm::config::STYLE_CACHE_ENTRIES;
use deepstyle_worker::farm::engine::{Engine, EngineSettings};
use deepstyle_worker::{device, weights};
use tracing::info;

use crate::client::{runtime, ExitError, EXIT_INTERRUPTED};
use crate::embedded::{self, EmbeddedFarm, Rendered};
use crate::progress::RenderProgress;
use crate::style_args::StyleArgs;

/// Options of `deepstyle render`; neural-style's names are in the README.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The content, styles and style options.
    #[command(flatten)]
    pub style: StyleArgs,
    /// Output image; its extension picks the format (png, jpg, webp, tif, bmp).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Log losses every N iterations when no terminal shows a bar (0: never).
    #[arg(long, default_value_t = 50)]
    pub print_every: u32,
    /// Save the image every N iterations of a whole-image scale, next to the output.
    #[arg(long)]
    pub save_every: Option<u32>,
    /// Device: auto, cpu or cuda:N.
    #[arg(long, default_value = "auto", env = "DEEPSTYLE_DEVICE")]
    pub device: String,
    /// CPU threads for tensor work (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// The converted VGG19 weights (default: models/vgg19_normalised.safetensors).
    #[arg(long, env = weights::WEIGHTS_ENV)]
    pub weights: Option<PathBuf>,
}

impl RenderArgs {
    fn depth(&self) -> BitDepth {
        if self.style.sixteen_bit {
            BitDepth::Sixteen
        } else {
            BitDepth::Eight
        }
    }
}

/// Renders as `args` say and returns the job's result; `progress` watches the engine.
pub fn render(args: &RenderArgs, progress: Arc<RenderProgress>) -> anyhow::Result<Rendered> {
    args.style.check()?;
    imaging::check_output(&args.output, args.depth())?;
    if args.save_every == Some(0) {
        bail!("--save-every must be at least 1");
    }
    if let Some(Err(reason)) = args.threads.map(device::check_threads) {
        bail!("--threads {reason}");
    }
    let device = device::parse_device(&args.device)?;
    let weights_path = args.weights.clone().unwrap_or_else(weights::default_path);
    info!(device = %device::describe(device, args.threads), weights = %weights_path.display(), "rendering");

    runtime()?.block_on(async {
        let engine = Engine::start(EngineSettings {
            weights: weights_path,
            device,
            threads: args.threads,
            style_cache_entries: STYLE_CACHE_ENTRIES,
            observer: Some(progress.clone()),
        })
        .await?;
        let mut farm = EmbeddedFarm::start(engine)?;
        // On ctrl-c or SIGTERM the farm still stops in order, so that its temporary blob
        // directory (tile results, canvases: gigabytes for large outputs) is removed.
        let rendered = tokio::select! {
            rendered = embedded::render(&mut farm, &args.style, |plan| progress.on_plan(plan)) => {
                Some(rendered)
            }
            () = shutdown::signal() => None,
        };
        progress.finish();
        farm.stop().await?;
        rendered.unwrap_or_else(|| {
            Err(ExitError::new(EXIT_INTERRUPTED, "render interrupted; no output written").into())
        })
    })
}

/// Runs `deepstyle render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Arc::new(RenderProgress::new(
        args.print_every,
        args.save_every,
        args.output.clone(),
        true,
    ));
    let rendered = render(args, progress)?;
    imaging::save_png_as(&args.output, &rendered.png, args.depth())
        .context("failed to write output image")?;
    let (width, height) = (rendered.job.width, rendered.job.height);
    let secs = started.elapsed().as_secs_f64();
    let tiles: usize = (0..rendered.plan.scales.len())
        .map(|s| rendered.plan.num_tiles(s))
        .sum();
    info!(output = %args.output.display(), width, height,
        scales = rendered.plan.scales.len(), tiles, secs, "done");
    println!(
        "wrote {} ({width}x{height}) in {secs:.1} s",
        args.output.display()
    );
    Ok(())
}
