//! The `deepstyle` command's library: argument handling, the client commands and the embedded
//! farm behind `deepstyle render`.
#![warn(missing_docs)]

pub mod client;
pub mod embedded;
pub mod jobs_cmd;
pub mod progress;
pub mod render_cmd;
pub mod style_args;
pub mod submit;
