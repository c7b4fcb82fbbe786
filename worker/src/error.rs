//! The style engine's error type.

use std::path::PathBuf;

/// Errors raised while loading the network or optimising an image.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The weights file does not exist.
    #[error(
        "VGG19 weights not found at {path}: run `scripts/setup.sh` to install and convert them"
    )]
    WeightsMissing {
        /// Where the weights were looked for.
        path: PathBuf,
    },
    /// The weights file could not be read as safetensors.
    #[error("failed to read VGG19 weights {path}: {source}")]
    WeightsUnreadable {
        /// The weights file.
        path: PathBuf,
        /// What libtorch said.
        source: tch::TchError,
    },
    /// A tensor the network needs is absent from the weights file.
    #[error("VGG19 weights {path} lack tensor {name}")]
    TensorMissing {
        /// The weights file.
        path: PathBuf,
        /// The missing tensor's name.
        name: String,
    },
    /// A tensor in the weights file has the wrong shape.
    #[error("VGG19 weights {path}: tensor {name} has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        actual: Vec<i64>,
        /// The shape VGG19 needs.
        expected: Vec<i64>,
    },
    /// A layer name is not one of VGG19's.
    #[error("unknown VGG19 layer {name:?} (expected names like relu4_2 or conv3_1)")]
    UnknownLayer {
        /// The name given.
        name: String,
    },
    /// An option is out of range.
    #[error("invalid option {field}: {reason}")]
    InvalidOption {
        /// The option's name.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An image is too small for the deepest layer used.
    #[error("image of {width}x{height} is too small for layer {layer}: each side needs {min} px")]
    ImageTooSmall {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// The deepest layer used.
        layer: String,
        /// The least side length that layer allows.
        min: u32,
    },
    /// The requested device cannot be used.
    #[error("device {name:?} is not available: {reason}")]
    Device {
        /// The device as given.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The loss stopped being a finite number.
    #[error("optimisation diverged at iteration {iteration}: loss is {loss}")]
    Diverged {
        /// The iteration where it happened.
        iteration: u32,
        /// The loss value.
        loss: f64,
    },
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] tch::TchError),
}

/// The style engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
