//! Running one task on the engine thread: a style target or a tile.
//!
//! Everything here is blocking tensor work; [`super::engine`] calls it from its own thread.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use deepstyle_coordinator::imaging::{self, BitDepth, DecodeLimits};
use deepstyle_coordinator::jobs::plan::MAX_SIZE_PX;
use deepstyle_coordinator::metrics::{WORKER_ITERATIONS, WORKER_ITERATIONS_PER_SECOND};
use deepstyle_coordinator::stitch::crop;
use deepstyle_coordinator::tiling::{plan_tiles, Rect};
use deepstyle_proto::v1::{self as pb, StyleParams};
use image::Rgb32FImage;
use tracing::debug;

use super::error::{FarmError, Result};
use crate::canvas::{canvas_grams, region_grams};
use crate::options::{
    Init, OptimizerKind, Region, RegionWeights, StylizeOptions, DEFAULT_CONTENT_WEIGHT,
    DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT,
};
use crate::style_target::{StyleImage, StyleTarget};
use crate::stylize::{stylize, Observer, Progress};
use crate::vgg::{Pooling, Vgg19};

/// Shared between the engine and the heartbeat: the iteration reached and a stop request.
#[derive(Debug, Default)]
pub struct Control {
    /// Set to stop the optimisation at the next iteration.
    pub stop: AtomicBool,
    /// The last iteration done.
    pub iteration: AtomicU32,
}

/// Watches the tasks an engine runs: what `deepstyle render` uses for its progress bar and
/// intermediate images. Every method has a do-nothing default.
pub trait TaskObserver: Send + Sync + std::fmt::Debug {
    /// Called when a task starts on the engine.
    fn on_task(&self, _task: &pb::Task) {}
    /// Called after every optimiser iteration of a tile.
    fn on_iteration(&self, _task: &pb::Task, _progress: &Progress) {}
    /// Returns how often an intermediate image of a whole-image tile is wanted.
    fn snapshot_every(&self) -> Option<u32> {
        None
    }
    /// Receives an intermediate image of a whole-image tile.
    fn on_snapshot(&self, _task: &pb::Task, _iteration: u32, _image: &Rgb32FImage) {}
}

/// Decodes an image blob, refusing bad input as final.
pub fn decode(what: &str, bytes: &[u8]) -> Result<Rgb32FImage> {
    imaging::decode(bytes, &DecodeLimits::default())
        .map(|loaded| loaded.rgb)
        .map_err(|e| FarmError::BadInput {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

/// Returns the pooling a task asks for.
pub fn pooling(value: pb::Pooling) -> Pooling {
    match value {
        pb::Pooling::Avg => Pooling::Avg,
        pb::Pooling::Max | pb::Pooling::Unspecified => Pooling::Max,
    }
}

/// Computes a style target from the style images (encoded, with their weights) and, when the
/// task has a canvas plan, the statistics of that canvas (`canvas`: its encoded start image).
pub fn style_target(
    vgg: &Vgg19,
    task: &pb::StyleTargetTask,
    images: &[(String, Vec<u8>, f64)],
    canvas: Option<&[u8]>,
) -> Result<StyleTarget> {
    let mut resized = Vec::with_capacity(images.len());
    for (key, bytes, _) in images {
        let image = decode(key, bytes)?;
        let (w, h) = imaging::fit_longest_side(image.width(), image.height(), task.style_size);
        resized.push(imaging::resize(&image, w, h));
    }
    let blend: Vec<StyleImage<'_>> = resized
        .iter()
        .zip(images)
        .map(|(image, (_, _, weight))| StyleImage {
            image,
            weight: *weight,
        })
        .collect();
    let target = StyleTarget::compute(vgg, &blend, &task.style_layers)?;
    let (Some(plan), Some(bytes)) = (&task.canvas, canvas) else {
        return Ok(target);
    };
    let bad_plan = |reason: String| FarmError::BadInput {
        what: "canvas".into(),
        reason,
    };
    if plan.width.max(plan.height) > MAX_SIZE_PX {
        return Err(bad_plan(format!(
            "{}x{} is above the largest scale, {MAX_SIZE_PX} px",
            plan.width, plan.height
        )));
    }
    let tiles = plan_tiles(plan.width, plan.height, plan.tile_core, plan.overlap)
        .map_err(|e| bad_plan(e.to_string()))?;
    let start = decode(&plan.start_blob, bytes)?;
    let start = imaging::resize(&start, plan.width, plan.height);
    let grams = canvas_grams(vgg, &start, &tiles, plan.halo, &task.style_layers)?;
    Ok(target.with_canvas(grams)?)
}

/// The encoded crops of a tile task.
#[derive(Debug, Clone, Copy)]
pub struct TileCrops<'a> {
    /// The content crop.
    pub content: &'a [u8],
    /// The start crop (the progressive canvas), if any.
    pub init: Option<&'a [u8]>,
    /// The crop of the scale's start image, for the tile's share of the canvas statistics.
    pub start: Option<&'a [u8]>,
}

/// Builds the engine options of a tile from the task's parameters.
pub fn stylize_options(
    params: &StyleParams,
    iterations: u32,
    has_init: bool,
    region: Option<Region>,
) -> Result<StylizeOptions> {
    let optimizer = match params.optimizer() {
        pb::Optimizer::Adam => OptimizerKind::Adam {
            learning_rate: params.learning_rate,
        },
        pb::Optimizer::Lbfgs | pb::Optimizer::Unspecified => OptimizerKind::Lbfgs {
            history_size: params.lbfgs_history as usize,
        },
    };
    let init = match (params.init(), has_init) {
        (_, true) => Init::Image,
        (pb::Init::Image, false) => {
            return Err(FarmError::BadInput {
                what: "init_blob".into(),
                reason: "params.init is INIT_IMAGE but the task has no init image".into(),
            })
        }
        (pb::Init::Random, false) => Init::Random,
        (pb::Init::Content | pb::Init::Unspecified, false) => Init::Content,
    };
    Ok(StylizeOptions {
        content_layers: params.content_layers.clone(),
        style_layers: params.style_layers.clone(),
        content_weight: params.content_weight.unwrap_or(DEFAULT_CONTENT_WEIGHT),
        style_weight: params.style_weight.unwrap_or(DEFAULT_STYLE_WEIGHT),
        tv_weight: params.tv_weight.unwrap_or(DEFAULT_TV_WEIGHT),
        iterations,
        optimizer,
        init,
        normalize_gradients: params.normalize_gradients,
        seed: params.seed,
        region,
        region_weights: None,
    })
}

/// What a tile run reports to: the heartbeat's control and, optionally, an observer.
#[derive(Debug, Clone, Copy)]
pub struct Watchers<'a> {
    /// The task being run.
    pub task: &'a pb::Task,
    /// Iteration counter and stop flag shared with the heartbeat.
    pub control: &'a Control,
    /// Progress and snapshot receiver, if any.
    pub observer: Option<&'a dyn TaskObserver>,
}

/// Optimises a tile and returns its inner rect as a 16-bit PNG.
pub fn tile(
    vgg: &Vgg19,
    target: &StyleTarget,
    task: &pb::TileTask,
    crops: TileCrops<'_>,
    watchers: Watchers<'_>,
) -> Result<Vec<u8>> {
    let content = decode(&task.content_blob, crops.content)?;
    let init = crops
        .init
        .map(|bytes| decode("init_blob", bytes))
        .transpose()?;
    let (width, height) = content.dimensions();
    let inner = task.inner.ok_or_else(|| FarmError::BadInput {
        what: "inner".into(),
        reason: "a tile task needs an inner rect".into(),
    })?;
    let inner = Rect::new(inner.x, inner.y, inner.width, inner.height);
    if inner.is_empty() || !Rect::new(0, 0, width, height).contains_rect(&inner) {
        return Err(FarmError::BadInput {
            what: "inner".into(),
            reason: format!("{inner:?} is not inside the {width}x{height} crop"),
        });
    }
    // A whole-image task is optimised without a region, as the embedded renderer does.
    let region = (inner != Rect::new(0, 0, width, height)).then_some(Region {
        x: inner.x,
        y: inner.y,
        width: inner.width,
        height: inner.height,
    });
    let params = task.params.clone().unwrap_or_default();
    let mut options = stylize_options(&params, task.iterations, init.is_some(), region)?;
    let tile_target = match (region, weights(task)) {
        (Some(region), Some(weights)) => {
            let target = match (target.canvas(), crops.start) {
                (Some(_), Some(bytes)) => {
                    let start = decode("start_blob", bytes)?;
                    if start.dimensions() != content.dimensions() {
                        return Err(FarmError::BadInput {
                            what: "start_blob".into(),
                            reason: format!(
                                "start crop is {:?}, content crop {:?}",
                                start.dimensions(),
                                content.dimensions()
                            ),
                        });
                    }
                    let local = region_grams(vgg, &start, region, &weights, target.layers())?;
                    Some(target.for_tile(&local)?)
                }
                _ => None,
            };
            options.region_weights = Some(weights);
            target
        }
        _ => None,
    };
    let target = tile_target.as_ref().unwrap_or(target);
    let mut observer = TileObserver {
        watchers,
        whole: region.is_none(),
    };
    let out = stylize(
        vgg,
        &content,
        init.as_ref(),
        target,
        &options,
        &mut observer,
    )?;
    imaging::encode_png(&crop(&out.image, inner), None, BitDepth::Sixteen).map_err(|e| {
        FarmError::BadInput {
            what: "tile result".into(),
            reason: e.to_string(),
        }
    })
}

/// Returns the blend weights of a task's inner rect, if it carries them.
fn weights(task: &pb::TileTask) -> Option<RegionWeights> {
    (!task.weight_x.is_empty() && !task.weight_y.is_empty()).then(|| RegionWeights {
        xs: task.weight_x.clone(),
        ys: task.weight_y.clone(),
    })
}

struct TileObserver<'a> {
    watchers: Watchers<'a>,
    whole: bool,
}

impl Observer for TileObserver<'_> {
    fn on_iteration(&mut self, progress: &Progress) {
        let w = self.watchers;
        w.control
            .iteration
            .store(progress.iteration, Ordering::Relaxed);
        if let Some(observer) = w.observer {
            observer.on_iteration(w.task, progress);
        }
        metrics::counter!(WORKER_ITERATIONS).increment(1);
        if progress.elapsed_secs > 0.0 {
            let rate = f64::from(progress.iteration) / progress.elapsed_secs;
            metrics::gauge!(WORKER_ITERATIONS_PER_SECOND).set(rate);
        }
        debug!(
            iteration = progress.iteration,
            loss = progress.losses.total(),
            "iteration"
        );
    }

    fn should_stop(&self) -> bool {
        self.watchers.control.stop.load(Ordering::Relaxed)
    }

    fn snapshot_every(&self) -> Option<u32> {
        let observer = self.watchers.observer.filter(|_| self.whole)?;
        observer.snapshot_every()
    }

    fn on_snapshot(&mut self, iteration: u32, image: &Rgb32FImage) {
        if let Some(observer) = self.watchers.observer {
            observer.on_snapshot(self.watchers.task, iteration, image);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_every_param() {
        let params = StyleParams {
            content_layers: vec!["relu4_2".into()],
            style_layers: vec!["relu1_1".into()],
            content_weight: Some(2.0),
            style_weight: None,
            tv_weight: Some(0.5),
            optimizer: pb::Optimizer::Adam as i32,
            learning_rate: 0.1,
            lbfgs_history: 7,
            init: pb::Init::Random as i32,
            normalize_gradients: true,
            seed: 42,
            pooling: pb::Pooling::Avg as i32,
        };
        let o = stylize_options(&params, 9, false, None).unwrap();
        assert_eq!(o.content_weight, 2.0);
        assert_eq!(o.style_weight, DEFAULT_STYLE_WEIGHT);
        assert_eq!(o.tv_weight, 0.5);
        assert_eq!(o.iterations, 9);
        assert_eq!(o.optimizer, OptimizerKind::Adam { learning_rate: 0.1 });
        assert_eq!(o.init, Init::Random);
        assert!(o.normalize_gradients);
        assert_eq!(o.seed, 42);
        assert_eq!(
            stylize_options(&params, 9, true, None).unwrap().init,
            Init::Image
        );
        let image_without_blob = StyleParams {
            init: pb::Init::Image as i32,
            ..params
        };
        let err = stylize_options(&image_without_blob, 9, false, None).unwrap_err();
        assert!(!err.is_retryable());
    }
}
