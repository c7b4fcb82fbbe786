//! The coordinator side of DeepStyle: everything that works on plain image
//! buffers and never needs libtorch.
//!
//! - [`imaging`]: decoding user images safely and writing results.
//! - [`tiling`]: cutting an output into overlapping tiles and the weights that blend them.
//! - [`stitch`]: putting optimised tiles back together.
//! - [`scales`]: the coarse-to-fine pyramid of a job.
#![warn(missing_docs)]

pub mod imaging;
pub mod scales;
pub mod stitch;
pub mod tiling;
