//! The embedded render pipeline: coarse-to-fine scales, overlapping tiles and
//! one shared style target per scale, all in this process.
//!
//! Planning, resizing and stitching come from the coordinator crate and work on
//! plain image buffers; only [`deepstyle_worker::stylize`] touches tensors. The
//! farm runs the same steps with the tiles spread over workers.

use deepstyle_coordinator::imaging;
use deepstyle_coordinator::progressive::{tile_phases, ProgressiveCanvas};
use deepstyle_coordinator::scales::{plan_scales, Scale, ScalePlanOptions};
use deepstyle_coordinator::stitch::crop;
use deepstyle_coordinator::tiling::{plan_tiles, TilePlan};
use deepstyle_worker::options::Region;
use deepstyle_worker::stylize::{Observer, Progress};
use deepstyle_worker::vgg::receptive_field;
use deepstyle_worker::{stylize, Init, StyleImage, StyleTarget, StylizeOptions, Vgg19};
use image::Rgb32FImage;

/// A style image at its source resolution with its blend weight.
#[derive(Debug, Clone)]
pub struct StyleSource {
    /// The painting.
    pub image: Rgb32FImage,
    /// Relative weight in the blend.
    pub weight: f64,
}

/// How a render is cut into scales and tiles.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The pyramid; its `iterations` is the finest scale's.
    pub scales: ScalePlanOptions,
    /// Largest side optimised in one piece, halo included; larger scales are tiled.
    pub tile_size: u32,
    /// Least overlap between neighbouring tiles, in pixels.
    pub overlap: u32,
    /// Context around each tile, or `None` for half the deepest layer's receptive field.
    pub halo: Option<u32>,
    /// Style image size relative to the scale being rendered (neural-style's `-style_scale`).
    pub style_scale: f64,
    /// Upper bound on the style images' longest side, which bounds the cost of a style target.
    pub max_style_size: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            scales: ScalePlanOptions::default(),
            tile_size: 512,
            overlap: 128,
            halo: None,
            style_scale: 1.0,
            max_style_size: 1024,
        }
    }
}

/// Where the pipeline is; handed to the reporter with each iteration.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// The scale being rendered, 0 for the coarsest.
    pub scale: usize,
    /// Number of scales.
    pub num_scales: usize,
    /// The tile being optimised within the scale.
    pub tile: usize,
    /// Tiles at this scale.
    pub num_tiles: usize,
}

/// Receives pipeline progress; every method has a do-nothing default.
pub trait Reporter {
    /// Called once with the plan before any work, with the total iterations it will run.
    fn on_plan(&mut self, _scales: &[Scale], _tiles_per_scale: &[usize], _total_iterations: u64) {}
    /// Called after every optimiser iteration.
    fn on_iteration(&mut self, _stage: Stage, _progress: &Progress) {}
    /// Returns how often an intermediate image is wanted (whole-image scales only).
    fn snapshot_every(&self) -> Option<u32> {
        None
    }
    /// Receives an intermediate image of a whole-image scale.
    fn on_snapshot(&mut self, _scale: usize, _iteration: u32, _image: &Rgb32FImage) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Reporter for Quiet {}

/// What a render did, for reports and tests.
#[derive(Debug, Clone, Default)]
pub struct RenderStats {
    /// The scales rendered, coarsest first.
    pub scales: Vec<Scale>,
    /// Tiles optimised at each scale.
    pub tiles_per_scale: Vec<usize>,
    /// Style targets computed (one per scale, whatever the tile count).
    pub style_targets_computed: usize,
}

/// Errors of the embedded pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] deepstyle_worker::EngineError),
    /// Scale planning refused the options.
    #[error(transparent)]
    Scales(#[from] deepstyle_coordinator::scales::ScaleError),
    /// Tile planning refused the options.
    #[error(transparent)]
    Tiling(#[from] deepstyle_coordinator::tiling::TilingError),
    /// Stitching refused a tile.
    #[error(transparent)]
    Stitch(#[from] deepstyle_coordinator::stitch::StitchError),
    /// The layout is inconsistent.
    #[error("invalid layout: {0}")]
    Layout(String),
}

/// Renders `content` at `width` x `height` with the given styles, scale by scale and tile by tile.
///
/// `init_image`, when given, replaces the start of the coarsest scale (resized to it).
#[allow(clippy::too_many_arguments)]
pub fn render(
    vgg: &Vgg19,
    content: &Rgb32FImage,
    styles: &[StyleSource],
    init_image: Option<&Rgb32FImage>,
    (width, height): (u32, u32),
    options: &StylizeOptions,
    layout: &Layout,
    reporter: &mut dyn Reporter,
) -> Result<(Rgb32FImage, RenderStats), PipelineError> {
    let halo = match layout.halo {
        Some(h) => h,
        None => deepest_receptive_field(options)?.div_ceil(2),
    };
    if layout.tile_size <= 2 * halo && needs_tiles(layout, width, height) {
        return Err(PipelineError::Layout(format!(
            "tile size {} leaves no room inside a halo of {halo} px",
            layout.tile_size
        )));
    }
    let scales = plan_scales(
        width,
        height,
        &ScalePlanOptions {
            iterations: options.iterations,
            ..layout.scales.clone()
        },
    )?;
    let plans: Vec<Option<TilePlan>> = scales
        .iter()
        .map(|s| tile_plan(layout, halo, s))
        .collect::<Result<_, _>>()?;
    let tiles_per_scale: Vec<usize> = plans
        .iter()
        .map(|p| p.as_ref().map_or(1, TilePlan::num_tiles))
        .collect();
    let total: u64 = scales
        .iter()
        .zip(&tiles_per_scale)
        .map(|(s, n)| s.iterations as u64 * *n as u64)
        .sum();
    reporter.on_plan(&scales, &tiles_per_scale, total);

    let mut stats = RenderStats {
        scales: scales.clone(),
        tiles_per_scale: tiles_per_scale.clone(),
        ..Default::default()
    };
    let mut previous: Option<Rgb32FImage> = None;
    for (scale, plan) in scales.iter().zip(&plans) {
        let content_s = imaging::resize(content, scale.width, scale.height);
        let target = style_target(vgg, styles, options, layout, scale)?;
        stats.style_targets_computed += 1;

        // The coarsest scale starts as the options say; finer ones from the upsampled result.
        let (init, init_kind) = match (&previous, init_image) {
            (Some(prev), _) => (
                Some(imaging::resize(prev, scale.width, scale.height)),
                Init::Image,
            ),
            (None, Some(img)) => (
                Some(imaging::resize(img, scale.width, scale.height)),
                Init::Image,
            ),
            (None, None) => (None, options.init),
        };
        let scale_options = StylizeOptions {
            iterations: scale.iterations,
            init: init_kind,
            ..options.clone()
        };
        let stage = Stage {
            scale: scale.index,
            num_scales: scales.len(),
            tile: 0,
            num_tiles: 1,
        };

        let result = match plan {
            None => {
                let mut observer = StageObserver {
                    reporter: &mut *reporter,
                    stage,
                    snapshots: true,
                };
                stylize(
                    vgg,
                    &content_s,
                    init.as_ref(),
                    &target,
                    &scale_options,
                    &mut observer,
                )?
                .image
            }
            Some(plan) => {
                // Tiles start from the running canvas, so a tile's overlaps begin from what its
                // finished neighbours made instead of averaging two unrelated textures.
                let (base, tile_options) = match &init {
                    Some(init) => (init.clone(), scale_options.clone()),
                    None if options.init == Init::Content => (
                        content_s.clone(),
                        StylizeOptions {
                            init: Init::Image,
                            ..scale_options.clone()
                        },
                    ),
                    None => (content_s.clone(), scale_options.clone()),
                };
                let mut canvas = ProgressiveCanvas::new(base);
                for phase in tile_phases(plan) {
                    let mut finished = Vec::with_capacity(phase.len());
                    for tile in phase {
                        let outer = plan.halo_rect(tile, halo);
                        let content_tile = crop(&content_s, outer);
                        let init_tile =
                            (tile_options.init == Init::Image).then(|| crop(canvas.image(), outer));
                        let stage = Stage {
                            tile: tile.index,
                            num_tiles: plan.num_tiles(),
                            ..stage
                        };
                        let mut observer = StageObserver {
                            reporter: &mut *reporter,
                            stage,
                            snapshots: false,
                        };
                        let inner = plan.inner_rect(tile, halo);
                        let region = Region {
                            x: inner.x,
                            y: inner.y,
                            width: inner.width,
                            height: inner.height,
                        };
                        let options = StylizeOptions {
                            region: Some(region),
                            ..tile_options.clone()
                        };
                        let out = stylize(
                            vgg,
                            &content_tile,
                            init_tile.as_ref(),
                            &target,
                            &options,
                            &mut observer,
                        )?;
                        finished.push((tile, crop(&out.image, inner)));
                    }
                    for (tile, pixels) in &finished {
                        canvas.blend(plan, tile, pixels)?;
                    }
                }
                canvas.finish(plan)?
            }
        };
        previous = Some(result);
    }
    Ok((previous.expect("a plan has at least one scale"), stats))
}

/// Returns the receptive field of the deepest layer the options use.
pub fn deepest_receptive_field(options: &StylizeOptions) -> Result<u32, PipelineError> {
    Ok(receptive_field(options.deepest_layer()?)?)
}

fn needs_tiles(layout: &Layout, width: u32, height: u32) -> bool {
    width.max(height) > layout.tile_size
}

/// Returns the tile plan of a scale, or `None` when the scale is optimised whole.
///
/// Tiles are planned so that each tile plus its halo is at most `tile_size`.
fn tile_plan(layout: &Layout, halo: u32, scale: &Scale) -> Result<Option<TilePlan>, PipelineError> {
    if !needs_tiles(layout, scale.width, scale.height) {
        return Ok(None);
    }
    let core = layout.tile_size - 2 * halo;
    let overlap = layout.overlap.min(core.saturating_sub(1) / 2);
    Ok(Some(plan_tiles(scale.width, scale.height, core, overlap)?))
}

/// Computes the blended style target for one scale, the style images resized by the style scale.
fn style_target(
    vgg: &Vgg19,
    styles: &[StyleSource],
    options: &StylizeOptions,
    layout: &Layout,
    scale: &Scale,
) -> Result<StyleTarget, PipelineError> {
    let longest = (layout.style_scale * scale.width.max(scale.height) as f64).round() as u32;
    let longest = longest.clamp(1, layout.max_style_size);
    let resized: Vec<Rgb32FImage> = styles
        .iter()
        .map(|s| {
            let (w, h) = imaging::fit_longest_side(s.image.width(), s.image.height(), longest);
            imaging::resize(&s.image, w, h)
        })
        .collect();
    let blend: Vec<StyleImage<'_>> = resized
        .iter()
        .zip(styles)
        .map(|(image, s)| StyleImage {
            image,
            weight: s.weight,
        })
        .collect();
    Ok(StyleTarget::compute(vgg, &blend, &options.style_layers)?)
}

/// Forwards engine progress to the pipeline reporter with the stage attached.
struct StageObserver<'a> {
    reporter: &'a mut dyn Reporter,
    stage: Stage,
    snapshots: bool,
}

impl Observer for StageObserver<'_> {
    fn on_iteration(&mut self, progress: &Progress) {
        self.reporter.on_iteration(self.stage, progress);
    }

    fn snapshot_every(&self) -> Option<u32> {
        self.snapshots
            .then(|| self.reporter.snapshot_every())
            .flatten()
    }

    fn on_snapshot(&mut self, iteration: u32, image: &Rgb32FImage) {
        self.reporter
            .on_snapshot(self.stage.scale, iteration, image);
    }
}
