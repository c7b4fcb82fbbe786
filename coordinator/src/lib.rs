//! The coordinator side of DeepStyle: everything that works on plain image
//! buffers and never needs libtorch.
//!
//! - [`imaging`]: decoding user images safely and writing results.
//! - [`tiling`]: cutting an output into overlapping tiles and the weights that blend them.
//! - [`stitch`]: putting optimised tiles back together.
//! - [`progressive`]: phased tiles and the progressive canvas each tile starts from.
//! - [`layers`]: VGG19's layer names and receptive fields.
//! - [`scales`]: the coarse-to-fine pyramid of a job.
//! - [`ids`]: the job, task, tile and worker identifiers that cross the wire.
//! - [`store`]: jobs, tasks and leases in Redis or in memory.
//! - [`blob`]: images, tile inputs and results, outside Redis.
//! - [`jobs`]: the job manager that drives a job scale by scale.
//! - [`color`]: keeping the content's colours on the output.
//! - [`service`]: the JobService and WorkerService gRPC servers.
//! - [`config`]: the coordinator process settings.
//! - [`logging`]: the log set-up every DeepStyle binary shares.
//! - [`metrics`]: Prometheus metric names and their endpoint.
#![warn(missing_docs)]

pub mod blob;
pub mod color;
pub mod config;
pub mod defaults;
pub mod exit;
pub mod ids;
pub mod imaging;
pub mod jobs;
pub mod layers;
pub mod logging;
pub mod metrics;
pub mod progressive;
pub mod scales;
pub mod service;
pub mod shutdown;
pub mod stitch;
pub mod store;
pub mod tiling;
