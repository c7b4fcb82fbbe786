//! `deepstyle render`: the whole pipeline in this process, no Redis, no network.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use deepstyle_coordinator::color::keep_original_colors;
use deepstyle_coordinator::imaging::{self, BitDepth, DecodeLimits};
use deepstyle_coordinator::scales::ScalePlanOptions;
use deepstyle_worker::options::{DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT};
use deepstyle_worker::{device, weights, Init, OptimizerKind, Pooling, StylizeOptions, Vgg19};
use tracing::info;

use crate::pipeline::{self, Layout, StyleSource};
use crate::progress::RenderProgress;

/// The optimiser, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// L-BFGS: fewer iterations, more memory (neural-style's default).
    Lbfgs,
    /// Adam: less memory, needs more iterations.
    Adam,
}

/// The starting image, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InitArg {
    /// Start from the content photo (neural-style's `-init image`).
    Content,
    /// Start from seeded noise.
    Random,
    /// Start from `--init-image`.
    Image,
}

/// Pooling, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PoolingArg {
    /// Max pooling.
    Max,
    /// Average pooling.
    Avg,
}

/// Options of `deepstyle render`; neural-style's names are in the README.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The content photo.
    pub content: PathBuf,
    /// Style image(s); repeat or separate with commas to blend several.
    #[arg(short, long = "style", required = true, value_delimiter = ',')]
    pub styles: Vec<PathBuf>,
    /// Blend weights of the style images, one per style (default: equal).
    #[arg(long, value_delimiter = ',')]
    pub style_weights: Vec<f64>,
    /// Output image; its extension picks the format (png, jpg, webp, tif, bmp).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Longest side of the output in pixels.
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Iterations at the finest scale (coarser scales get a few more).
    #[arg(long, default_value_t = 500)]
    pub iterations: u32,
    /// Weight of the content loss.
    #[arg(long, default_value_t = DEFAULT_CONTENT_WEIGHT)]
    pub content_weight: f64,
    /// Weight of the style loss.
    #[arg(long, default_value_t = DEFAULT_STYLE_WEIGHT)]
    pub style_weight: f64,
    /// Weight of the total-variation smoothing.
    #[arg(long, default_value_t = DEFAULT_TV_WEIGHT)]
    pub tv_weight: f64,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Lbfgs)]
    pub optimizer: OptimizerArg,
    /// Adam's learning rate (images are in [0, 1]).
    #[arg(long, default_value_t = 0.02)]
    pub learning_rate: f64,
    /// Curvature pairs L-BFGS keeps.
    #[arg(long, default_value_t = 100)]
    pub lbfgs_history: usize,
    /// Starting image.
    #[arg(long, value_enum, default_value_t = InitArg::Content)]
    pub init: InitArg,
    /// Image to start from with `--init image`.
    #[arg(long)]
    pub init_image: Option<PathBuf>,
    /// Style image size relative to the output.
    #[arg(long, default_value_t = 1.0)]
    pub style_scale: f64,
    /// Keep the content photo's colours; transfer luminance only.
    #[arg(long)]
    pub original_colors: bool,
    /// Pooling between VGG blocks.
    #[arg(long, value_enum, default_value_t = PoolingArg::Max)]
    pub pooling: PoolingArg,
    /// Layers matched to the content photo.
    #[arg(long, value_delimiter = ',', default_value = "relu4_2")]
    pub content_layers: Vec<String>,
    /// Layers matched to the style's Gram matrices.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
    )]
    pub style_layers: Vec<String>,
    /// L1-normalise each loss term's gradient.
    #[arg(long)]
    pub normalize_gradients: bool,
    /// Seed of the random start.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Log losses every N iterations when no terminal shows a bar (0: never).
    #[arg(long, default_value_t = 50)]
    pub print_every: u32,
    /// Save the image every N iterations of a whole-image scale, next to the output.
    #[arg(long)]
    pub save_every: Option<u32>,
    /// Largest side optimised in one piece (halo included); larger scales are tiled.
    #[arg(long = "tile", default_value_t = 512)]
    pub tile_size: u32,
    /// Least overlap between tiles in pixels.
    #[arg(long, default_value_t = 128)]
    pub overlap: u32,
    /// Context around each tile in pixels (default: half the deepest layer's receptive field).
    #[arg(long)]
    pub halo: Option<u32>,
    /// Number of scales (default: enough to go from --base-size up by --scale-ratio).
    #[arg(long)]
    pub scales: Option<u32>,
    /// Ratio between consecutive scales.
    #[arg(long, default_value_t = 2.0)]
    pub scale_ratio: f32,
    /// Longest side of the first, whole-image scale.
    #[arg(long, default_value_t = 512)]
    pub base_size: u32,
    /// Longest side the style images are resized to at most.
    #[arg(long, default_value_t = 1024)]
    pub max_style_size: u32,
    /// Put the content's alpha channel back on the output.
    #[arg(long)]
    pub keep_alpha: bool,
    /// Write 16 bits per channel (PNG and TIFF).
    #[arg(long)]
    pub sixteen_bit: bool,
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
    /// Builds the engine options, checking what clap cannot.
    pub fn stylize_options(&self) -> anyhow::Result<StylizeOptions> {
        let optimizer = match self.optimizer {
            OptimizerArg::Lbfgs => OptimizerKind::Lbfgs {
                history_size: self.lbfgs_history,
            },
            OptimizerArg::Adam => OptimizerKind::Adam {
                learning_rate: self.learning_rate,
            },
        };
        let init = match self.init {
            InitArg::Content => Init::Content,
            InitArg::Random => Init::Random,
            InitArg::Image if self.init_image.is_none() => bail!("--init image needs --init-image"),
            InitArg::Image => Init::Image,
        };
        for (name, value) in [
            ("--content-weight", self.content_weight),
            ("--style-weight", self.style_weight),
            ("--tv-weight", self.tv_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{name} must be a finite number >= 0, got {value}");
            }
        }
        if self.iterations == 0 {
            bail!("--iterations must be at least 1");
        }
        Ok(StylizeOptions {
            content_layers: self.content_layers.clone(),
            style_layers: self.style_layers.clone(),
            content_weight: self.content_weight,
            style_weight: self.style_weight,
            tv_weight: self.tv_weight,
            iterations: self.iterations,
            optimizer,
            init,
            normalize_gradients: self.normalize_gradients,
            seed: self.seed,
            region: None,
        })
    }

    /// Builds the scale and tile layout.
    pub fn layout(&self) -> anyhow::Result<Layout> {
        if !(self.style_scale.is_finite() && self.style_scale > 0.0) {
            bail!("--style-scale must be > 0, got {}", self.style_scale);
        }
        Ok(Layout {
            scales: ScalePlanOptions {
                num_scales: self.scales,
                scale_ratio: self.scale_ratio,
                base_size: self.base_size,
                ..ScalePlanOptions::default()
            },
            tile_size: self.tile_size,
            overlap: self.overlap,
            halo: self.halo,
            style_scale: self.style_scale,
            max_style_size: self.max_style_size.max(1),
        })
    }

    fn style_weights(&self) -> anyhow::Result<Vec<f64>> {
        if self.style_weights.is_empty() {
            return Ok(vec![1.0; self.styles.len()]);
        }
        if self.style_weights.len() != self.styles.len() {
            bail!(
                "--style-weights has {} values for {} style images",
                self.style_weights.len(),
                self.styles.len()
            );
        }
        Ok(self.style_weights.clone())
    }
}

/// Runs `deepstyle render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let options = args.stylize_options()?;
    let layout = args.layout()?;
    let blend = args.style_weights()?;
    if args.size == 0 {
        bail!("--size must be at least 1");
    }
    if let Some(threads) = args.threads {
        if threads < 1 {
            bail!("--threads must be at least 1");
        }
        tch::set_num_threads(threads);
    }
    let device = device::parse_device(&args.device)?;
    let depth = if args.sixteen_bit {
        BitDepth::Sixteen
    } else {
        BitDepth::Eight
    };

    let limits = DecodeLimits::default();
    let content = imaging::load(&args.content, &limits).context("failed to read content image")?;
    let mut styles = Vec::new();
    for (path, weight) in args.styles.iter().zip(blend) {
        let style = imaging::load(path, &limits).context("failed to read style image")?;
        styles.push(StyleSource {
            image: style.rgb,
            weight,
        });
    }
    let init_image = match &args.init_image {
        Some(path) => Some(
            imaging::load(path, &limits)
                .context("failed to read init image")?
                .rgb,
        ),
        None => None,
    };

    let (width, height) =
        imaging::fit_longest_side(content.rgb.width(), content.rgb.height(), args.size);
    let weights_path = args.weights.clone().unwrap_or_else(weights::default_path);
    let deepest = options.deepest_layer()?.to_owned();
    let pooling = match args.pooling {
        PoolingArg::Max => Pooling::Max,
        PoolingArg::Avg => Pooling::Avg,
    };
    let vgg = Vgg19::load(&weights_path, device, pooling, &deepest)?;
    info!(device = %device::describe(device), width, height, weights = %weights_path.display(), "rendering");

    let started = Instant::now();
    let mut progress = RenderProgress::new(args.print_every, args.save_every, args.output.clone());
    let result = pipeline::render(
        &vgg,
        &content.rgb,
        &styles,
        init_image.as_ref(),
        (width, height),
        &options,
        &layout,
        &mut progress,
    );
    progress.finish();
    let (mut image, stats) = result?;

    if args.original_colors {
        let content_at_size = imaging::resize(&content.rgb, width, height);
        image = keep_original_colors(&image, &content_at_size);
    }
    let alpha = match (&content.alpha, args.keep_alpha) {
        (Some(alpha), true) => Some(imaging::resize_alpha(alpha, width, height)),
        _ => None,
    };
    imaging::save(&args.output, &image, alpha.as_ref(), depth)
        .context("failed to write output image")?;
    let secs = started.elapsed().as_secs_f64();
    let tiles: usize = stats.tiles_per_scale.iter().sum();
    info!(output = %args.output.display(), width, height, scales = stats.scales.len(), tiles, secs, "done");
    println!(
        "wrote {} ({width}x{height}) in {secs:.1} s",
        args.output.display()
    );
    Ok(())
}
