//! One style optimisation: from content features and a style target to an image.
//!
//! The driver evaluates the objective of Gatys et al. (see [`crate::loss`]) with
//! autograd, hands the gradient to the chosen optimiser, and reports progress
//! to an [`Observer`]. It runs on the calling thread: farm and CLI code call it
//! from a dedicated thread, never from an async executor.

use std::time::Instant;

use image::Rgb32FImage;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

use crate::error::{EngineError, Result};
use crate::loss::{content_loss, normalized_surrogate, style_loss, tv_loss};
use crate::optim::{Adam, Lbfgs, Optimizer, StepStatus};
use crate::options::{Init, OptimizerKind, Region, StylizeOptions};
use crate::region::{crop_features, weight_map, weighted_gram};
use crate::style_target::StyleTarget;
use crate::tensor_image::{to_image, to_tensor};
use crate::vgg::{self, Vgg19};

/// Standard deviation of the noise of a random start, around mid-gray.
const RANDOM_INIT_STD: f32 = 0.1;

/// The weighted loss terms at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Losses {
    /// Content weight times the content loss.
    pub content: f64,
    /// Style weight times the style loss.
    pub style: f64,
    /// TV weight times the total variation.
    pub tv: f64,
}

impl Losses {
    /// Returns the sum of the three terms.
    pub fn total(&self) -> f64 {
        self.content + self.style + self.tv
    }
}

/// Progress after one iteration.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Iterations done, from 1.
    pub iteration: u32,
    /// Iterations planned.
    pub iterations: u32,
    /// Losses at the point where this iteration's gradient was taken.
    pub losses: Losses,
    /// Seconds since the optimisation started.
    pub elapsed_secs: f64,
}

/// Receives progress and snapshots; every method has a do-nothing default.
pub trait Observer {
    /// Called after every iteration.
    fn on_iteration(&mut self, _progress: &Progress) {}
    /// Returns how often a snapshot image is wanted, in iterations.
    fn snapshot_every(&self) -> Option<u32> {
        None
    }
    /// Receives the current image every `snapshot_every` iterations.
    fn on_snapshot(&mut self, _iteration: u32, _image: &Rgb32FImage) {}
    /// Returns true to stop early (cancellation, shutdown); the current image is returned.
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {}

/// The result of one optimisation.
#[derive(Debug)]
pub struct Stylized {
    /// The optimised image, same size as the content.
    pub image: Rgb32FImage,
    /// Losses at the starting image.
    pub initial: Losses,
    /// Losses at the returned image.
    pub last: Losses,
    /// Iterations actually run.
    pub iterations: u32,
}

/// Optimises an image of `content`'s size towards `content` and `target`.
///
/// `init_image` is required when `options.init` is [`Init::Image`] and must
/// have the content's size.
pub fn stylize(
    vgg: &Vgg19,
    content: &Rgb32FImage,
    init_image: Option<&Rgb32FImage>,
    target: &StyleTarget,
    options: &StylizeOptions,
    observer: &mut dyn Observer,
) -> Result<Stylized> {
    check_size(content, options)?;
    let device = vgg.device();
    let content_layers: Vec<&str> = options.content_layers.iter().map(String::as_str).collect();
    let content_t = to_tensor(content, device)?;
    let content_targets = tch::no_grad(|| vgg.forward(&content_t, &content_layers))?;

    let x = match options.init {
        Init::Content => content_t.f_detach_copy()?,
        Init::Random => random_init(content, options.seed)?.f_to_device(device)?,
        Init::Image => {
            let init = init_image.ok_or_else(|| EngineError::InvalidOption {
                field: "init",
                reason: "init is image but no init image was given".into(),
            })?;
            if init.dimensions() != content.dimensions() {
                return Err(EngineError::InvalidOption {
                    field: "init image",
                    reason: format!(
                        "init image is {:?}, content is {:?}",
                        init.dimensions(),
                        content.dimensions()
                    ),
                });
            }
            to_tensor(init, device)?
        }
    };
    let mask = match options.region {
        Some(region) => Some(region_mask(
            region,
            content.width(),
            content.height(),
            device,
        )?),
        None => None,
    };
    let objective = Objective {
        vgg,
        mask: mask.as_ref(),
        content_targets: &content_targets,
        target,
        options,
    };
    let mut optimizer: Box<dyn Optimizer> = match options.optimizer {
        OptimizerKind::Lbfgs { history_size } => Box::new(Lbfgs::new(history_size, 1.0)),
        OptimizerKind::Adam { learning_rate } => Box::new(Adam::new(learning_rate)),
    };

    let started = Instant::now();
    let mut initial = None;
    let mut done = 0;
    for iteration in 1..=options.iterations {
        if observer.should_stop() {
            break;
        }
        let (losses, grad) = objective.evaluate(&x)?;
        if !losses.total().is_finite() {
            return Err(EngineError::Diverged {
                iteration,
                loss: losses.total(),
            });
        }
        initial.get_or_insert(losses);
        let status = optimizer.step(&x, losses.total(), &grad)?;
        done = iteration;
        let elapsed_secs = started.elapsed().as_secs_f64();
        let iterations = options.iterations;
        observer.on_iteration(&Progress {
            iteration,
            iterations,
            losses,
            elapsed_secs,
        });
        if observer
            .snapshot_every()
            .is_some_and(|n| n > 0 && iteration.is_multiple_of(n))
        {
            observer.on_snapshot(iteration, &to_image(&x)?);
        }
        if status == StepStatus::Converged {
            break;
        }
    }
    // The returned image is clamped to [0, 1]; report the losses of exactly that image.
    let _ = tch::no_grad(|| x.shallow_clone().f_clamp_(0.0, 1.0))?;
    let last = tch::no_grad(|| objective.losses(&x))?;
    Ok(Stylized {
        image: to_image(&x)?,
        initial: initial.unwrap_or(last),
        last,
        iterations: done,
    })
}

/// Measures the weighted losses of `image` against `content` and `target` without optimising.
pub fn measure(
    vgg: &Vgg19,
    image: &Rgb32FImage,
    content: &Rgb32FImage,
    target: &StyleTarget,
    options: &StylizeOptions,
) -> Result<Losses> {
    check_size(image, options)?;
    let content_layers: Vec<&str> = options.content_layers.iter().map(String::as_str).collect();
    tch::no_grad(|| {
        let content_targets = vgg.forward(&to_tensor(content, vgg.device())?, &content_layers)?;
        let objective = Objective {
            vgg,
            mask: None,
            content_targets: &content_targets,
            target,
            options,
        };
        objective.losses(&to_tensor(image, vgg.device())?)
    })
}

/// Returns the least side length the options' deepest layer allows.
pub fn min_side(options: &StylizeOptions) -> Result<u32> {
    let mut least = 1;
    for layer in options.content_layers.iter().chain(&options.style_layers) {
        least = least.max(vgg::min_side(layer)?);
    }
    Ok(least)
}

fn check_size(image: &Rgb32FImage, options: &StylizeOptions) -> Result<()> {
    let min = min_side(options)?;
    let (width, height) = image.dimensions();
    if let Some(r) = options.region {
        let inside =
            r.width > 0 && r.height > 0 && r.x + r.width <= width && r.y + r.height <= height;
        if !inside {
            return Err(EngineError::InvalidOption {
                field: "region",
                reason: format!("{r:?} is not inside the {width}x{height} image"),
            });
        }
    }
    if width < min || height < min {
        let layer = options.deepest_layer()?.to_owned();
        return Err(EngineError::ImageTooSmall {
            width,
            height,
            layer,
            min,
        });
    }
    Ok(())
}

fn random_init(content: &Rgb32FImage, seed: u64) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.5f32, RANDOM_INIT_STD).expect("noise deviation is positive");
    let noise: Vec<f32> = (0..content.as_raw().len())
        .map(|_| normal.sample(&mut rng))
        .collect();
    let (w, h) = content.dimensions();
    Ok(Tensor::f_from_slice(&noise)?.f_reshape([1, 3, h as i64, w as i64])?)
}

/// Returns a `[1, 1, H, W]` mask that is one inside `region` and zero elsewhere.
fn region_mask(region: Region, width: u32, height: u32, device: tch::Device) -> Result<Tensor> {
    let mask = Tensor::f_zeros([1, 1, height as i64, width as i64], (Kind::Float, device))?;
    let _ = mask
        .f_narrow(2, region.y as i64, region.height as i64)?
        .f_narrow(3, region.x as i64, region.width as i64)?
        .f_fill_(1.0)?;
    Ok(mask)
}

/// The objective of one optimisation with its fixed targets.
struct Objective<'a> {
    vgg: &'a Vgg19,
    /// Zero outside the optimised region, so the context pixels stay fixed.
    mask: Option<&'a Tensor>,
    content_targets: &'a [Tensor],
    target: &'a StyleTarget,
    options: &'a StylizeOptions,
}

/// Per-layer loss tensors before weighting.
struct Terms {
    content: Vec<(Tensor, Tensor)>,
    style: Vec<(Tensor, Tensor)>,
    tv: Tensor,
}

impl Objective<'_> {
    fn terms(&self, xs: &Tensor) -> Result<Terms> {
        let o = self.options;
        let names: Vec<&str> = o
            .content_layers
            .iter()
            .chain(self.target.layers())
            .map(String::as_str)
            .collect();
        let mut feats = self.vgg.forward(xs, &names)?.into_iter();
        let mut content = Vec::new();
        for (target, layer) in self.content_targets.iter().zip(&o.content_layers) {
            let f = feats.next().expect("one activation per content layer");
            let f = crop_features(&f, o.region, layer)?;
            let target = crop_features(target, o.region, layer)?;
            content.push((content_loss(&f, &target)?, f));
        }
        let mut style = Vec::new();
        for (gram, layer) in self.target.grams().iter().zip(self.target.layers()) {
            let full = feats.next().expect("one activation per style layer");
            let f = crop_features(&full, o.region, layer)?;
            let loss = match (o.region, &o.region_weights) {
                (Some(region), Some(weights)) => {
                    let map = weight_map(&full, region, weights, layer)?;
                    weighted_gram(&f, &map)?.f_mse_loss(gram, tch::Reduction::Mean)?
                }
                _ => style_loss(&f, gram)?,
            };
            style.push((loss, f));
        }
        let tv = tv_loss(&crop_features(xs, o.region, "input_norm")?)?;
        Ok(Terms { content, style, tv })
    }

    fn weigh(&self, terms: &Terms) -> Result<Losses> {
        let sum = |ts: &[(Tensor, Tensor)]| -> Result<f64> {
            ts.iter().map(|(l, _)| Ok(l.f_double_value(&[])?)).sum()
        };
        let o = self.options;
        Ok(Losses {
            content: o.content_weight * sum(&terms.content)?,
            style: o.style_weight * sum(&terms.style)?,
            tv: o.tv_weight * terms.tv.f_double_value(&[])?,
        })
    }

    fn losses(&self, x: &Tensor) -> Result<Losses> {
        self.weigh(&self.terms(x)?)
    }

    /// Returns the losses at `x` and the gradient of their weighted sum.
    fn evaluate(&self, x: &Tensor) -> Result<(Losses, Tensor)> {
        let o = self.options;
        let var = x.f_detach()?.set_requires_grad(true);
        let terms = self.terms(&var)?;
        let losses = self.weigh(&terms)?;

        let weighted = |ts: &[(Tensor, Tensor)], w: f64| -> Result<Tensor> {
            let mut acc = Tensor::f_zeros([], (Kind::Float, x.device()))?;
            for (loss, feats) in ts {
                let term = if o.normalize_gradients {
                    normalized_surrogate(loss, feats)?
                } else {
                    loss.shallow_clone()
                };
                acc = acc.f_add(&term.f_mul_scalar(w)?)?;
            }
            Ok(acc)
        };
        let objective = weighted(&terms.content, o.content_weight)?
            .f_add(&weighted(&terms.style, o.style_weight)?)?
            .f_add(&terms.tv.f_mul_scalar(o.tv_weight)?)?;
        let mut grad = Tensor::f_run_backward(&[&objective], &[&var], false, false)?
            .pop()
            .expect("one gradient per input");
        if let Some(mask) = self.mask {
            grad = grad.f_mul(mask)?;
        }
        Ok((losses, grad))
    }
}
