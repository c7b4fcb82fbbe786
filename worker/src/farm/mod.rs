//! The worker process: registers with a coordinator, leases tasks, runs them and reports.
//!
//! The network runs on one dedicated engine thread ([`engine`]); the async side
//! ([`runner`]) long-polls for tasks, fetches their inputs, heartbeats while the engine works
//! and uploads the result. A task is either a style target (blended Gram matrices, see
//! [`crate::style_target`]) or a tile, optimised with only its core free (see
//! [`crate::options::StylizeOptions::region`]).

mod cache;
pub mod client;
pub mod config;
pub mod engine;
pub mod error;
pub mod runner;
pub mod task;

pub use config::WorkerConfig;
pub use error::{FarmError, Result};
pub use runner::run;
