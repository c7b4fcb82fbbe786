//! The coarse-to-fine pyramid of a job.
//!
//! A job is rendered as a sequence of scales, each `scale_ratio` times larger than the one
//! before. The first scale fits in `base_size` on its longest side and is optimised whole by
//! one worker, which settles the global layout of the style; every later scale starts from the
//! upsampled result of the previous one and is tiled (see [`crate::tiling`]) once it outgrows a
//! tile. The last scale is exactly the output size.
//!
//! Iterations: the finest scale gets `iterations`, and each step to a coarser scale multiplies
//! that by `coarse_iteration_factor` (at least 1). A coarser scale has `scale_ratio²` times
//! fewer pixels, so its extra iterations are cheap, and the coarse passes are where the image
//! takes its structure; the fine passes only refine texture.

use thiserror::Error;

/// Default ratio between the sides of consecutive scales.
pub const DEFAULT_SCALE_RATIO: f32 = 2.0;

/// Default longest side of the first, whole-image scale, in pixels.
pub const DEFAULT_BASE_SIZE_PX: u32 = 512;

/// Default number of iterations at the finest scale.
pub const DEFAULT_ITERATIONS: u32 = 300;

/// Default factor applied to the iteration count at each step to a coarser scale.
pub const DEFAULT_COARSE_ITERATION_FACTOR: f32 = 1.5;

/// Largest accepted ratio between consecutive scales.
pub const MAX_SCALE_RATIO: f32 = 16.0;

/// Largest accepted per-step iteration factor.
pub const MAX_COARSE_ITERATION_FACTOR: f32 = 4.0;

/// Most scales one job may have.
pub const MAX_SCALES: u32 = 32;

/// Errors raised while planning scales.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScaleError {
    /// The output has a zero width or height.
    #[error("output size must be positive, got {width}x{height}")]
    EmptyOutput {
        /// Requested output width in pixels.
        width: u32,
        /// Requested output height in pixels.
        height: u32,
    },
    /// The scale ratio is not a finite number in `(1, MAX_SCALE_RATIO]`.
    #[error("scale ratio must be above 1 and at most {MAX_SCALE_RATIO}, got {scale_ratio}")]
    InvalidRatio {
        /// Requested ratio.
        scale_ratio: f32,
    },
    /// The base size is zero.
    #[error("base size must be positive, got {base_size}")]
    EmptyBase {
        /// Requested base size in pixels.
        base_size: u32,
    },
    /// The finest scale has no iterations.
    #[error("iterations must be positive, got {iterations}")]
    NoIterations {
        /// Requested iterations.
        iterations: u32,
    },
    /// The iteration factor is not a finite number in `[1, MAX_COARSE_ITERATION_FACTOR]`.
    #[error("coarse iteration factor must be in [1, {MAX_COARSE_ITERATION_FACTOR}], got {factor}")]
    InvalidIterationFactor {
        /// Requested factor.
        factor: f32,
    },
    /// More scales than [`MAX_SCALES`] were requested or would be needed.
    #[error("{num_scales} scales requested or needed, at most {MAX_SCALES} allowed")]
    TooManyScales {
        /// Scales requested or needed.
        num_scales: u64,
    },
    /// An explicit number of scales is zero.
    #[error("number of scales must be positive")]
    NoScales,
    /// An explicit number of scales leaves the first scale above the base size.
    #[error(
        "{num_scales} scales leave the first at {width}x{height}, above base size {base_size}; \
         at least {needed} are needed"
    )]
    TooFewScales {
        /// Requested number of scales.
        num_scales: u32,
        /// Scales needed to reach the base size.
        needed: u32,
        /// Width the first scale would have.
        width: u32,
        /// Height the first scale would have.
        height: u32,
        /// Requested base size in pixels.
        base_size: u32,
    },
    /// An explicit number of scales makes two consecutive scales round to the same size.
    #[error("{num_scales} scales make scales {index} and {} both {width}x{height}", .index + 1)]
    DuplicateScales {
        /// Requested number of scales.
        num_scales: u32,
        /// Index of the first of the two equal scales.
        index: usize,
        /// Their width.
        width: u32,
        /// Their height.
        height: u32,
    },
}

/// Result alias for scale planning.
pub type Result<T> = std::result::Result<T, ScaleError>;

/// Options that shape a job's pyramid.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePlanOptions {
    /// Number of scales, or `None` for as many as needed to grow from `base_size` by the ratio.
    pub num_scales: Option<u32>,
    /// Ratio between the sides of consecutive scales, above 1.
    pub scale_ratio: f32,
    /// Longest side of the first, whole-image scale, in pixels.
    pub base_size: u32,
    /// Iterations at the finest scale.
    pub iterations: u32,
    /// Factor, at least 1, applied to the iterations at each step to a coarser scale.
    pub coarse_iteration_factor: f32,
}

impl Default for ScalePlanOptions {
    fn default() -> Self {
        Self {
            num_scales: None,
            scale_ratio: DEFAULT_SCALE_RATIO,
            base_size: DEFAULT_BASE_SIZE_PX,
            iterations: DEFAULT_ITERATIONS,
            coarse_iteration_factor: DEFAULT_COARSE_ITERATION_FACTOR,
        }
    }
}

/// One level of the pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale {
    /// Position in the pyramid, 0 for the coarsest.
    pub index: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Optimiser iterations at this scale.
    pub iterations: u32,
}

/// Plans the scales of an `out_width` x `out_height` output, coarsest first, the last being
/// exactly the output size.
///
/// In auto mode, scales that would round to the same size as the next one (only possible for
/// tiny sizes or ratios close to 1) are merged; with an explicit count that is an error.
pub fn plan_scales(out_width: u32, out_height: u32, opts: &ScalePlanOptions) -> Result<Vec<Scale>> {
    validate(out_width, out_height, opts)?;
    let ratio = f64::from(opts.scale_ratio);
    let longest = out_width.max(out_height);
    let needed = steps_to_base(longest, opts.base_size, ratio) + 1;

    let num_scales = match opts.num_scales {
        None if needed > u64::from(MAX_SCALES) => {
            return Err(ScaleError::TooManyScales { num_scales: needed });
        }
        None => needed as u32,
        Some(0) => return Err(ScaleError::NoScales),
        Some(n) if n > MAX_SCALES => {
            return Err(ScaleError::TooManyScales {
                num_scales: u64::from(n),
            });
        }
        Some(n) => n,
    };

    let mut sizes: Vec<(u32, u32)> = (0..num_scales)
        .map(|k| {
            let steps = (num_scales - 1 - k) as i32;
            let divisor = ratio.powi(steps);
            (
                scaled_side(out_width, divisor),
                scaled_side(out_height, divisor),
            )
        })
        .collect();

    if let Some(n) = opts.num_scales {
        let (width, height) = sizes[0];
        if width.max(height) > opts.base_size {
            return Err(ScaleError::TooFewScales {
                num_scales: n,
                needed: needed as u32,
                width,
                height,
                base_size: opts.base_size,
            });
        }
        if let Some(index) = sizes.windows(2).position(|pair| pair[0] == pair[1]) {
            let (width, height) = sizes[index];
            return Err(ScaleError::DuplicateScales {
                num_scales: n,
                index,
                width,
                height,
            });
        }
    } else {
        sizes.dedup();
    }

    let factor = f64::from(opts.coarse_iteration_factor);
    let finest = sizes.len() - 1;
    let scales: Vec<Scale> = sizes
        .into_iter()
        .enumerate()
        .map(|(index, (width, height))| {
            let iterations = f64::from(opts.iterations) * factor.powi((finest - index) as i32);
            // Saturating float-to-int conversion; only absurd inputs reach the cap.
            let iterations = iterations.round().min(f64::from(u32::MAX)) as u32;
            Scale {
                index,
                width,
                height,
                iterations,
            }
        })
        .collect();
    tracing::debug!(
        out_width,
        out_height,
        num_scales = scales.len(),
        "planned scales"
    );
    Ok(scales)
}

fn validate(out_width: u32, out_height: u32, opts: &ScalePlanOptions) -> Result<()> {
    if out_width == 0 || out_height == 0 {
        return Err(ScaleError::EmptyOutput {
            width: out_width,
            height: out_height,
        });
    }
    let ratio = opts.scale_ratio;
    if !(ratio.is_finite() && ratio > 1.0 && ratio <= MAX_SCALE_RATIO) {
        return Err(ScaleError::InvalidRatio { scale_ratio: ratio });
    }
    if opts.base_size == 0 {
        return Err(ScaleError::EmptyBase {
            base_size: opts.base_size,
        });
    }
    if opts.iterations == 0 {
        return Err(ScaleError::NoIterations {
            iterations: opts.iterations,
        });
    }
    let factor = opts.coarse_iteration_factor;
    if !(factor.is_finite() && (1.0..=MAX_COARSE_ITERATION_FACTOR).contains(&factor)) {
        return Err(ScaleError::InvalidIterationFactor { factor });
    }
    Ok(())
}

/// Returns how many divisions by `ratio` bring `longest` down to at most `base_size`.
fn steps_to_base(longest: u32, base_size: u32, ratio: f64) -> u64 {
    let mut steps = 0;
    // Bounded: past MAX_SCALES the caller refuses the plan anyway.
    while steps <= u64::from(MAX_SCALES) && scaled(longest, ratio.powi(steps as i32)) > base_size {
        steps += 1;
    }
    steps
}

/// Returns `side / divisor` rounded to the nearest pixel, without the minimum of one pixel.
fn scaled(side: u32, divisor: f64) -> u32 {
    (f64::from(side) / divisor).round() as u32
}

/// Returns `side / divisor` rounded to the nearest pixel, at least one pixel.
fn scaled_side(side: u32, divisor: f64) -> u32 {
    scaled(side, divisor).max(1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sizes(scales: &[Scale]) -> Vec<(u32, u32, u32)> {
        scales
            .iter()
            .map(|s| (s.width, s.height, s.iterations))
            .collect()
    }

    #[test]
    fn default_pyramid_for_a_4k_output() {
        let scales = plan_scales(3840, 2160, &ScalePlanOptions::default()).unwrap();
        assert_eq!(
            sizes(&scales),
            [
                (480, 270, 1013),
                (960, 540, 675),
                (1920, 1080, 450),
                (3840, 2160, 300)
            ]
        );
        assert!(scales.iter().enumerate().all(|(i, s)| s.index == i));
    }

    #[test]
    fn small_output_is_a_single_scale() {
        let scales = plan_scales(300, 200, &ScalePlanOptions::default()).unwrap();
        assert_eq!(sizes(&scales), [(300, 200, 300)]);
        let scales = plan_scales(512, 7, &ScalePlanOptions::default()).unwrap();
        assert_eq!(sizes(&scales), [(512, 7, 300)]);
    }

    #[test]
    fn explicit_count_and_odd_ratio() {
        let opts = ScalePlanOptions {
            num_scales: Some(3),
            scale_ratio: 1.5,
            base_size: 600,
            iterations: 100,
            coarse_iteration_factor: 1.0,
        };
        let scales = plan_scales(1001, 333, &opts).unwrap();
        assert_eq!(
            sizes(&scales),
            [(445, 148, 100), (667, 222, 100), (1001, 333, 100)]
        );
    }

    #[test]
    fn auto_mode_merges_scales_that_round_together() {
        let opts = ScalePlanOptions {
            base_size: 1,
            scale_ratio: 1.1,
            ..Default::default()
        };
        let scales = plan_scales(3, 1, &opts).unwrap();
        let dims: Vec<(u32, u32)> = scales.iter().map(|s| (s.width, s.height)).collect();
        assert_eq!(dims, [(1, 1), (2, 1), (3, 1)]);
        assert_eq!(scales[2].iterations, 300);
        assert_eq!(scales[0].iterations, 675);
    }

    #[test]
    fn rejects_bad_options() {
        let ok = ScalePlanOptions::default();
        let check = |w, h, opts: ScalePlanOptions| plan_scales(w, h, &opts).unwrap_err();
        assert_eq!(
            check(0, 5, ok.clone()),
            ScaleError::EmptyOutput {
                width: 0,
                height: 5
            }
        );
        for bad in [1.0, 0.5, f32::NAN, f32::INFINITY, 17.0] {
            let err = check(
                10,
                10,
                ScalePlanOptions {
                    scale_ratio: bad,
                    ..ok.clone()
                },
            );
            assert!(
                matches!(err, ScaleError::InvalidRatio { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = check(
            10,
            10,
            ScalePlanOptions {
                base_size: 0,
                ..ok.clone()
            },
        );
        assert_eq!(err, ScaleError::EmptyBase { base_size: 0 });
        let err = check(
            10,
            10,
            ScalePlanOptions {
                iterations: 0,
                ..ok.clone()
            },
        );
        assert_eq!(err, ScaleError::NoIterations { iterations: 0 });
        let err = check(
            10,
            10,
            ScalePlanOptions {
                coarse_iteration_factor: 0.9,
                ..ok.clone()
            },
        );
        assert_eq!(err, ScaleError::InvalidIterationFactor { factor: 0.9 });
        let err = check(
            10,
            10,
            ScalePlanOptions {
                num_scales: Some(0),
                ..ok.clone()
            },
        );
        assert_eq!(err, ScaleError::NoScales);
        let err = check(
            10,
            10,
            ScalePlanOptions {
                num_scales: Some(33),
                ..ok.clone()
            },
        );
        assert_eq!(err, ScaleError::TooManyScales { num_scales: 33 });
        let err = check(
            4000,
            3000,
            ScalePlanOptions {
                num_scales: Some(2),
                ..ok.clone()
            },
        );
        assert_eq!(
            err.to_string(),
            "2 scales leave the first at 2000x1500, above base size 512; at least 4 are needed"
        );
        let err = check(
            4,
            4,
            ScalePlanOptions {
                num_scales: Some(4),
                ..ok.clone()
            },
        );
        assert_eq!(err.to_string(), "4 scales make scales 0 and 1 both 1x1");
        let tiny_steps = ScalePlanOptions {
            scale_ratio: 1.01,
            base_size: 1,
            ..ok
        };
        let err = check(u32::MAX, 1, tiny_steps);
        assert!(matches!(err, ScaleError::TooManyScales { .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn pyramids_grow_to_the_output_and_keep_aspect(
            width in 1u32..20_000,
            height in 1u32..20_000,
            ratio in 1.2f32..4.0,
            base_size in 16u32..1024,
        ) {
            let opts = ScalePlanOptions { scale_ratio: ratio, base_size, ..Default::default() };
            let scales = match plan_scales(width, height, &opts) {
                // A pyramid deeper than MAX_SCALES is refused by design (tested above).
                Err(ScaleError::TooManyScales { num_scales }) => {
                    prop_assert!(num_scales > u64::from(MAX_SCALES));
                    return Ok(());
                }
                other => other.unwrap(),
            };
            let last = scales.last().unwrap();
            prop_assert_eq!((last.width, last.height), (width, height));
            prop_assert_eq!(last.iterations, opts.iterations);
            let first = scales[0];
            let ratio = f64::from(ratio);
            if width.max(height) > base_size {
                prop_assert!(first.width.max(first.height) <= base_size);
                // Not needlessly small: one step up, before rounding, would exceed the base.
                let grown = f64::from(first.width.max(first.height)) * ratio;
                prop_assert!(grown >= f64::from(base_size) + 0.5 - 0.5 * ratio - 1e-9);
            } else {
                prop_assert_eq!(scales.len(), 1);
            }
            for pair in scales.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                prop_assert!(a.width <= b.width && a.height <= b.height, "{:?}", scales);
                prop_assert!((a.width, a.height) != (b.width, b.height), "{:?}", scales);
                prop_assert!(a.iterations >= b.iterations);
                let (a_long, b_long) = (a.width.max(a.height), b.width.max(b.height));
                let step_error = (f64::from(b_long) - f64::from(a_long) * ratio).abs();
                prop_assert!(step_error <= 0.5 * ratio + 0.5 + 1e-9, "{:?}", scales);
            }
            for scale in &scales {
                // Each side is the output side shrunk by the same factor, to the nearest pixel
                // (or to one pixel when it would vanish), so the aspect ratio is kept.
                let divisor = ratio.powi((scales.len() - 1 - scale.index) as i32);
                for (side, out) in [(scale.width, width), (scale.height, height)] {
                    let exact = f64::from(out) / divisor;
                    let kept = (f64::from(side) - exact).abs() <= 0.5 + 1e-9;
                    prop_assert!(kept || (side == 1 && exact < 1.0), "{:?}", scale);
                }
            }
        }
    }
}
