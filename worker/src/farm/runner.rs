//! The worker's main loop: register, lease, fetch, run on the engine thread, report.
//!
//! While the engine works, an async task heartbeats the lease; when the coordinator answers
//! `keep_going = false` (lease lost, job cancelled) or the process is asked to shut down, the
//! engine is told to stop at its next iteration. On shutdown the running task is handed back at
//! once with a retryable failure, so another worker takes it without waiting for its lease.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deepstyle_proto::v1 as pb;
use tokio::sync::watch;
use tracing::{debug, error, info, info_span, warn, Instrument};

use anyhow::Context;
use deepstyle_coordinator::metrics::{WORKER_INFO, WORKER_MEMORY_BYTES, WORKER_TASKS};

use super::client::CoordinatorClient;
use super::config::WorkerConfig;
use super::engine::{Engine, EngineSettings, Inputs};
use super::error::Result;
use super::task::Control;
use crate::device;

/// Pause after a failed call to the coordinator before the next one, in milliseconds.
const RETRY_DELAY_MS: u64 = 500;

/// Longest pause between registration attempts while the coordinator is unreachable, in
/// milliseconds; the pause doubles from [`RETRY_DELAY_MS`] up to this.
const MAX_REGISTER_DELAY_MS: u64 = 10_000;

/// Answers to registration that retrying cannot change: a wrong or missing token, or an
/// address that serves something other than a DeepStyle coordinator.
const PERMANENT_REFUSALS: [tonic::Code; 3] = [
    tonic::Code::Unauthenticated,
    tonic::Code::PermissionDenied,
    tonic::Code::Unimplemented,
];

/// How long results are retried while the coordinator is unreachable, in seconds.
const REPORT_RETRY_SECS: u64 = 30;

/// The reason given when a task is handed back on shutdown.
pub const SHUTDOWN_REASON: &str = "worker shutting down";

/// What a worker tells the coordinator about a task it leased.
#[derive(Debug)]
enum Report {
    /// The encoded result.
    Done(Vec<u8>),
    /// The task failed; `retryable` when another try (elsewhere) may succeed.
    Failed { reason: String, retryable: bool },
    /// The worker is stopping and gives the task back unfinished.
    HandedBack,
}

/// Serves tasks from the configured coordinator until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let device = device::parse_device(&config.device)?;
    let weights = config
        .weights
        .clone()
        .unwrap_or_else(crate::weights::default_path);
    let engine = Engine::start(EngineSettings {
        weights,
        device,
        threads: config.threads,
        style_cache_entries: config.style_cache_entries,
        observer: None,
    })
    .await?;
    let ca_pem = match &config.tls_ca {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("failed to read tls_ca {}", path.display()))?,
        ),
        None => None,
    };
    let client = CoordinatorClient::connect(
        &config.coordinator,
        config.token.as_deref(),
        ca_pem.as_deref(),
    )?;
    if let Some(addr) = config.metrics_listen {
        deepstyle_coordinator::metrics::serve(addr)
            .context("failed to start the metrics endpoint")?;
    }
    serve(config, client, engine, shutdown)
        .await
        .context("the coordinator refused this worker")?;
    Ok(())
}

/// Serves tasks with a started engine over `client` until `shutdown` resolves, or until the
/// coordinator refuses this worker for good (see [`PERMANENT_REFUSALS`]); the coordinator
/// address and engine settings of `config` are not used.
pub async fn serve(
    config: WorkerConfig,
    client: CoordinatorClient,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let device_name = device::describe(engine.device(), config.threads);
    let memory_bytes = config
        .memory_bytes
        .or_else(|| device::memory_bytes(engine.device()))
        .unwrap_or_else(|| {
            warn!(device = %device_name, "device memory unknown; registering with 0 bytes");
            0
        });
    metrics::gauge!(WORKER_INFO, "device" => device_name.clone()).set(1.0);
    metrics::gauge!(WORKER_MEMORY_BYTES).set(memory_bytes as f64);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let mut worker = Worker {
        config,
        client,
        engine,
        device_name,
        memory_bytes,
        worker_id: String::new(),
        heartbeat_ms: 0,
        stop: stop_rx,
    };
    let served = worker.serve().await;
    info!("worker stopped");
    served
}

struct Worker {
    config: WorkerConfig,
    client: CoordinatorClient,
    engine: Engine,
    device_name: String,
    memory_bytes: u64,
    worker_id: String,
    heartbeat_ms: u32,
    stop: watch::Receiver<bool>,
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `delay_ms` milliseconds, or less if the worker is told to stop.
    async fn pause(&mut self, delay_ms: u64) {
        let delay = tokio::time::sleep(Duration::from_millis(delay_ms));
        tokio::select! {
            _ = delay => {}
            _ = self.stop.wait_for(|s| *s) => {}
        }
    }

    async fn register(&mut self) -> Result<()> {
        let mut delay_ms = RETRY_DELAY_MS;
        while !self.stopping() {
            match self
                .client
                .register(&self.device_name, self.memory_bytes)
                .await
            {
                Ok((id, interval_ms)) => {
                    self.heartbeat_ms = self.config.heartbeat_ms.unwrap_or(interval_ms).max(10);
                    info!(worker_id = %id, device = %self.device_name, "registered");
                    self.worker_id = id;
                    return Ok(());
                }
                // A call cut short by our own stop (the embedded farm stopping after a refused
                // job) is no trouble to report.
                Err(_) if self.stopping() => return Ok(()),
                Err(e) if e.code().is_some_and(|c| PERMANENT_REFUSALS.contains(&c)) => {
                    error!(error = %e, "registration refused");
                    return Err(e);
                }
                Err(e) => {
                    warn!(error = %e, retry_in_ms = delay_ms, "cannot register, retrying");
                    self.pause(delay_ms).await;
                    delay_ms = (delay_ms * 2).min(MAX_REGISTER_DELAY_MS);
                }
            }
        }
        Ok(())
    }

    async fn serve(&mut self) -> Result<()> {
        self.register().await?;
        while !self.stopping() {
            let mut client = self.client.clone();
            let mut stop = self.stop.clone();
            let leased = tokio::select! {
                leased = client.lease(&self.worker_id, self.config.lease_wait_ms) => leased,
                _ = stop.wait_for(|s| *s) => break,
            };
            match leased {
                Ok(Some(task)) => {
                    let span = info_span!("task", worker_id = %self.worker_id,
                        job_id = %task.job_id, task = %task.task_id, tile = ?task.tile_index,
                        attempt = task.attempt);
                    self.run_task(task).instrument(span).await;
                }
                Ok(None) => {}
                Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                    warn!(error = %e, "coordinator forgot this worker, registering again");
                    self.register().await?;
                }
                Err(_) if self.stopping() => break,
                Err(e) => {
                    warn!(error = %e, "lease failed, retrying");
                    self.pause(RETRY_DELAY_MS).await;
                }
            }
        }
        Ok(())
    }

    async fn run_task(&mut self, task: pb::Task) {
        info!("task leased");
        let control = Arc::new(Control::default());
        let lease_lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.client.clone(),
            self.worker_id.clone(),
            task.clone(),
            Duration::from_millis(u64::from(self.heartbeat_ms)),
            Arc::clone(&control),
            Arc::clone(&lease_lost),
            self.stop.clone(),
        ));
        let result = match self.fetch_inputs(&task).await {
            Ok(inputs) => {
                self.engine
                    .run(task.clone(), inputs, Arc::clone(&control))
                    .await
            }
            Err(e) => Err(e),
        };
        heartbeat.abort();

        if self.stopping() {
            info!("handing the task back");
            self.report(&task, Report::HandedBack).await;
        } else if lease_lost.load(Ordering::Relaxed) {
            warn!("lease lost, result dropped");
        } else {
            match result {
                Ok(bytes) => self.report(&task, Report::Done(bytes)).await,
                Err(e) => {
                    error!(error = %e, retryable = e.is_retryable(), "task failed");
                    let report = Report::Failed {
                        reason: e.to_string(),
                        retryable: e.is_retryable(),
                    };
                    self.report(&task, report).await;
                }
            }
        }
    }

    async fn fetch_inputs(&mut self, task: &pb::Task) -> Result<Inputs> {
        match &task.kind {
            Some(pb::task::Kind::StyleTarget(style)) => {
                let mut images = Vec::with_capacity(style.styles.len());
                for input in &style.styles {
                    let key = deepstyle_coordinator::blob::image_key(&input.image_sha256);
                    let bytes = self.client.fetch_blob(&key).await?;
                    images.push((key, bytes, input.weight));
                }
                let canvas = match &style.canvas {
                    Some(plan) => Some(self.client.fetch_blob(&plan.start_blob).await?),
                    None => None,
                };
                Ok(Inputs::StyleTarget { images, canvas })
            }
            Some(pb::task::Kind::Tile(tile)) => {
                let content = self.client.fetch_blob(&tile.content_blob).await?;
                let init = match &tile.init_blob {
                    Some(key) => Some(self.client.fetch_blob(key).await?),
                    None => None,
                };
                let start = match &tile.start_blob {
                    Some(key) => Some(self.client.fetch_blob(key).await?),
                    None => None,
                };
                let style_target = if self.engine.has_style_target(&tile.style_target_blob) {
                    debug!("style target cached");
                    None
                } else {
                    Some(self.client.fetch_blob(&tile.style_target_blob).await?)
                };
                Ok(Inputs::Tile {
                    content,
                    init,
                    start,
                    style_target,
                })
            }
            None => Err(super::FarmError::BadInput {
                what: task.task_id.clone(),
                reason: "task has no kind".into(),
            }),
        }
    }

    /// Sends a result or a failure, retrying while the coordinator is unreachable.
    async fn report(&mut self, task: &pb::Task, report: Report) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(REPORT_RETRY_SECS);
        loop {
            let sent = match &report {
                Report::Done(bytes) => self
                    .client
                    .complete(&self.worker_id, task, bytes)
                    .await
                    .map(|accepted| info!(accepted, "task completed")),
                Report::Failed { reason, retryable } => self
                    .client
                    .fail(&self.worker_id, task, reason, *retryable, false)
                    .await
                    .map(|()| info!(reason, retryable, "failure reported")),
                // retryable too, so that a coordinator without `handed_back` still requeues it.
                Report::HandedBack => self
                    .client
                    .fail(&self.worker_id, task, SHUTDOWN_REASON, true, true)
                    .await
                    .map(|()| info!("task handed back")),
            };
            match sent {
                Ok(()) => {
                    let outcome = match &report {
                        Report::Done(_) => "completed",
                        Report::Failed { .. } => "failed",
                        Report::HandedBack => "handed_back",
                    };
                    metrics::counter!(WORKER_TASKS, "outcome" => outcome).increment(1);
                    return;
                }
                Err(e)
                    if e.code() == Some(tonic::Code::Unavailable)
                        && tokio::time::Instant::now() < deadline =>
                {
                    warn!(error = %e, "coordinator unreachable, retrying the report");
                    tokio::time::sleep(Duration::from_millis(RETRY_DELAY_MS)).await;
                }
                Err(e) => {
                    warn!(error = %e, "report refused");
                    return;
                }
            }
        }
    }
}

async fn heartbeat_loop(
    mut client: CoordinatorClient,
    worker_id: String,
    task: pb::Task,
    interval: Duration,
    control: Arc<Control>,
    lease_lost: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => {
                control.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
        let iteration = control.iteration.load(Ordering::Relaxed);
        match client.heartbeat(&worker_id, &task, iteration).await {
            Ok(true) => debug!(iteration, "heartbeat"),
            Ok(false) => {
                warn!("coordinator says stop");
                lease_lost.store(true, Ordering::Relaxed);
                control.stop.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
    }
}
