//! The DeepStyle style engine: Gatys-style neural style transfer on libtorch.
//!
//! Load the network with [`vgg::Vgg19::load`], compute one
//! [`style_target::StyleTarget`] per job and scale, then call
//! [`stylize::stylize`] for each image or tile. Everything here is blocking
//! tensor work; callers run it on dedicated threads.
#![warn(missing_docs)]

pub mod canvas;
pub mod device;
pub mod error;
pub mod farm;
pub mod gram;
pub mod loss;
pub mod optim;
pub mod options;
pub mod region;
pub mod style_target;
pub mod stylize;
pub mod tensor_image;
pub mod vgg;
pub mod weights;

pub use error::{EngineError, Result};
pub use options::{Init, OptimizerKind, StylizeOptions};
pub use style_target::{StyleImage, StyleTarget};
pub use stylize::{stylize, Losses, Observer, Progress, Stylized};
pub use vgg::{Pooling, Vgg19};
