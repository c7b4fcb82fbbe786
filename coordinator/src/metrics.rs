//! Prometheus metrics: the names every DeepStyle process records and the HTTP endpoint that
//! serves them (`metrics-exporter-prometheus`, scraped at any path, e.g. `/metrics`).

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Jobs by state (gauge, label `state`), refreshed by the coordinator's maintenance loop.
pub const JOBS: &str = "deepstyle_jobs";
/// Jobs accepted since start (counter).
pub const JOBS_SUBMITTED: &str = "deepstyle_jobs_submitted_total";
/// Tasks waiting in the queue for a worker (gauge).
pub const TILE_BACKLOG: &str = "deepstyle_tile_backlog";
/// Leases that ran out without a heartbeat (counter).
pub const LEASE_EXPIRIES: &str = "deepstyle_lease_expiries_total";
/// Completions refused because a newer attempt holds the task (counter).
pub const STALE_COMPLETIONS: &str = "deepstyle_stale_completions_total";
/// Tasks queued again after an expired lease or a retryable failure (counter).
pub const TASK_RETRIES: &str = "deepstyle_task_retries_total";
/// Seconds from lease to accepted completion, by task kind (histogram, label `kind`).
pub const TASK_DURATION: &str = "deepstyle_task_duration_seconds";
/// Optimiser iterations a worker ran (counter).
pub const WORKER_ITERATIONS: &str = "deepstyle_worker_iterations_total";
/// Iterations per second of the worker's last tile (gauge).
pub const WORKER_ITERATIONS_PER_SECOND: &str = "deepstyle_worker_iterations_per_second";
/// A worker's device, as label `device` on a gauge of 1.
pub const WORKER_INFO: &str = "deepstyle_worker_info";
/// Memory the worker reported at registration, in bytes (gauge).
pub const WORKER_MEMORY_BYTES: &str = "deepstyle_worker_memory_bytes";
/// Tasks a worker finished, by outcome (counter, label `outcome`).
pub const WORKER_TASKS: &str = "deepstyle_worker_tasks_total";

/// Errors starting the endpoint.
pub type Error = metrics_exporter_prometheus::BuildError;

/// Installs the global recorder and serves it on `addr`; call once, inside a tokio runtime.
pub fn serve(addr: SocketAddr) -> Result<(), Error> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(TASK_DURATION.into()),
            &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
        )?
        .install()?;
    tracing::info!(%addr, "serving metrics");
    Ok(())
}
