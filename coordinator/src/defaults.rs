//! Defaults of the style objective, shared by the engine, the CLI and job specs.
//!
//! The weights are tuned for position-normalised Gram matrices and mean losses,
//! and happen to equal neural-style's own defaults for content and style.

/// Default content weight.
pub const CONTENT_WEIGHT: f64 = 5.0;
/// Default style weight (applied to each style layer).
pub const STYLE_WEIGHT: f64 = 100.0;
/// Default total-variation weight.
pub const TV_WEIGHT: f64 = 1.0;
/// Default content layers.
pub const CONTENT_LAYERS: [&str; 1] = ["relu4_2"];
/// Default style layers.
pub const STYLE_LAYERS: [&str; 5] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
