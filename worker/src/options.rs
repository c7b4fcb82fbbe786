//! The knobs of one optimisation, named after neural-style's options.

use deepstyle_coordinator::{defaults, layers};

use crate::error::{EngineError, Result};

/// Which optimiser to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// L-BFGS keeping `history_size` curvature pairs (neural-style's default, history 100).
    Lbfgs {
        /// Curvature pairs kept.
        history_size: usize,
    },
    /// Adam with the given learning rate.
    Adam {
        /// Step size; images are in [0, 1], so neural-style's 10 (for 0..255) is about 0.04 here.
        learning_rate: f64,
    },
}

/// Where the optimisation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// The content image itself.
    Content,
    /// Gray plus seeded Gaussian noise.
    Random,
    /// An image the caller passes (a coarser scale's result, or the user's `--init-image`).
    Image,
}

/// A rectangle of the image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Blend weights of a region's pixels along each axis (the weight of pixel `(x, y)` is
/// `xs[x] * ys[y]`, relative to the region), as the stitcher will give them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegionWeights {
    /// One weight per column of the region.
    pub xs: Vec<f32>,
    /// One weight per row of the region.
    pub ys: Vec<f32>,
}

/// Layers and weights of the objective, and how to optimise it.
#[derive(Debug, Clone)]
pub struct StylizeOptions {
    /// Layers whose activations must match the content image.
    pub content_layers: Vec<String>,
    /// Layers whose Gram matrices must match the style target.
    pub style_layers: Vec<String>,
    /// Weight of the content loss.
    pub content_weight: f64,
    /// Weight of the style loss (applied to each style layer).
    pub style_weight: f64,
    /// Weight of the total-variation penalty.
    pub tv_weight: f64,
    /// Loss evaluations to run (each is one optimiser step).
    pub iterations: u32,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// The starting image.
    pub init: Init,
    /// Whether each loss term's layer gradient is L1-normalised (neural-style's `-normalize_gradients`).
    pub normalize_gradients: bool,
    /// Seed for the random initialisation.
    pub seed: u64,
    /// The part of the image that is optimised and measured; the rest is fixed context.
    ///
    /// Tiles set it to their core: the halo around it only feeds the receptive
    /// fields, so each core must carry the style statistics on its own and the
    /// stitched image matches the style target as a whole. `None` is the whole image.
    pub region: Option<Region>,
    /// Blend weights of `region`: when set, the region's style statistic is its weighted Gram
    /// matrix (see [`crate::region`]), so positions count as much as they will once stitched.
    pub region_weights: Option<RegionWeights>,
}

impl StylizeOptions {
    /// Returns the deepest layer the objective uses, or an error naming an unknown layer.
    pub fn deepest_layer(&self) -> Result<&str> {
        let used = || {
            self.content_layers
                .iter()
                .chain(&self.style_layers)
                .map(String::as_str)
        };
        for layer in used() {
            crate::vgg::layer_position(layer)?;
        }
        layers::deepest(used()).ok_or_else(|| EngineError::InvalidOption {
            field: "layers",
            reason: "no content or style layers given".into(),
        })
    }
}

impl Default for StylizeOptions {
    fn default() -> Self {
        Self {
            content_layers: defaults::CONTENT_LAYERS.map(String::from).to_vec(),
            style_layers: defaults::STYLE_LAYERS.map(String::from).to_vec(),
            content_weight: DEFAULT_CONTENT_WEIGHT,
            style_weight: DEFAULT_STYLE_WEIGHT,
            tv_weight: DEFAULT_TV_WEIGHT,
            iterations: 500,
            optimizer: OptimizerKind::Lbfgs { history_size: 100 },
            init: Init::Content,
            normalize_gradients: false,
            seed: 0,
            region: None,
            region_weights: None,
        }
    }
}

/// Default content weight (see [`deepstyle_coordinator::defaults`]).
pub const DEFAULT_CONTENT_WEIGHT: f64 = defaults::CONTENT_WEIGHT;
/// Default style weight.
pub const DEFAULT_STYLE_WEIGHT: f64 = defaults::STYLE_WEIGHT;
/// Default total-variation weight.
pub const DEFAULT_TV_WEIGHT: f64 = defaults::TV_WEIGHT;
