//! The `deepstyle` command's library: argument handling and the embedded render pipeline.
#![warn(missing_docs)]

pub mod client;
pub mod jobs_cmd;
pub mod pipeline;
pub mod progress;
pub mod render_cmd;
pub mod submit;
