//! The job manager: validates and plans jobs, drives them scale by scale, and serves workers.
//!
//! A job advances through persisted state only (see [`JobManager::advance`]): for each scale,
//! coarsest first, a scale whose result blob exists is done; otherwise its style-target task is
//! queued, then (once that task is done and the previous scale's result is stored) its tile
//! inputs are written and its tile tasks queued, and once every tile is done the tiles are
//! stitched into the scale result. After the last scale the output is encoded and the job
//! succeeds. Every step is idempotent, so [`JobManager::reconcile`] after a restart simply
//! advances every active job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deepstyle_proto::v1::{self as pb, JobSpec};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, Notify};
use tracing::{info, warn};

use crate::blob::{self, BlobStore};
use crate::ids::{InvalidId, JobId};
use crate::imaging::{DecodeLimits, ImagingError};
use crate::store::{JobRecord, JobState, NewJob, Store, StoreError};

mod advance;
pub mod plan;
mod work;
mod workers;

pub use workers::CompleteOutcome;

/// How often leases are expired and active jobs re-advanced, in milliseconds.
pub const MAINTENANCE_INTERVAL_MS: u64 = 500;

/// Errors of the job manager, each mapped to one gRPC code by the service layer.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A request field is invalid; the field is named.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the proto (e.g. `styles[1].weight`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An id from the wire is malformed.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The job does not exist.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// The task does not exist.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// A result for an attempt that no longer holds the lease.
    #[error("task {task} attempt {attempt} is stale")]
    StaleAttempt {
        /// The task.
        task: String,
        /// The attempt the worker reported.
        attempt: u32,
    },
    /// The task's job was cancelled or failed.
    #[error("job {0} is no longer running")]
    JobOver(JobId),
    /// The job has no output yet.
    #[error("job {job} has no result (state {state:?})")]
    NotReady {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
    },
    /// A request goes beyond a configured limit (see [`RequestLimits`]).
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted, e.g. `active jobs of client 10.0.0.7`.
        what: String,
        /// The configured limit.
        limit: u64,
    },
    /// A stored or uploaded image could not be decoded or encoded.
    #[error("image {key}: {reason}")]
    Image {
        /// The blob key or role of the image.
        key: String,
        /// The decoder's message.
        reason: String,
    },
    /// Stitching refused the tiles.
    #[error(transparent)]
    Stitch(#[from] crate::stitch::StitchError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] blob::BlobError),
    /// A persisted record could not be read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// An invariant of the manager did not hold.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// Result alias of the job manager.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// A stored image and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The sha256 of the encoded bytes, lowercase hex.
    pub sha256: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Bounds on what clients may ask of the coordinator; each is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest uploaded image, in pixels.
    pub max_image_pixels: u64,
    /// Most iterations a job may ask for at its finest scale.
    pub max_iterations: u32,
    /// Most style images in one job.
    pub max_styles: u32,
    /// Most queued or running jobs one client (peer address) may have at once.
    pub max_active_jobs_per_client: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_image_pixels: crate::imaging::DEFAULT_MAX_PIXELS,
            max_iterations: plan::MAX_ITERATIONS,
            max_styles: MAX_STYLES,
            max_active_jobs_per_client: MAX_ACTIVE_JOBS_PER_CLIENT,
        }
    }
}

/// Most recent jobs the jobs-by-state gauge counts.
const GAUGE_JOBS_SCANNED: usize = 10_000;

/// Every job state, for gauges that report zeros too.
const ALL_STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
];

/// Default most style images in one job.
pub const MAX_STYLES: u32 = 16;

/// Default most active jobs per client.
pub const MAX_ACTIVE_JOBS_PER_CLIENT: u32 = 64;

/// Drives jobs through their scales and hands their tasks to workers.
#[derive(Debug)]
pub struct JobManager {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    limits: DecodeLimits,
    request_limits: RequestLimits,
    /// Jobs submitted by each client through this process, pruned as they end.
    // Kept in memory: after a restart the count starts again from the jobs submitted since.
    client_jobs: tokio::sync::Mutex<HashMap<String, Vec<JobId>>>,
    /// When each leased attempt (`task#attempt`) was handed out, for the duration metric.
    lease_started: Mutex<HashMap<String, std::time::Instant>>,
    job_locks: Mutex<HashMap<JobId, Arc<tokio::sync::Mutex<()>>>>,
    changes: broadcast::Sender<JobId>,
    work: Notify,
}

impl JobManager {
    /// Creates a manager over a state store and a blob store with the default request limits.
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        limits: DecodeLimits,
    ) -> Arc<Self> {
        Self::with_request_limits(store, blobs, limits, RequestLimits::default())
    }

    /// Creates a manager that holds clients to `request_limits`; `limits` bound every decode.
    pub fn with_request_limits(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        limits: DecodeLimits,
        request_limits: RequestLimits,
    ) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        Arc::new(Self {
            store,
            blobs,
            limits,
            request_limits,
            client_jobs: tokio::sync::Mutex::new(HashMap::new()),
            lease_started: Mutex::new(HashMap::new()),
            job_locks: Mutex::new(HashMap::new()),
            changes,
            work: Notify::new(),
        })
    }

    /// Returns the state store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Returns the blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Returns a receiver of the ids of jobs that changed.
    pub fn subscribe(&self) -> broadcast::Receiver<JobId> {
        self.changes.subscribe()
    }

    fn changed(&self, job: &JobId) {
        let _ = self.changes.send(job.clone());
    }

    /// Checks that `bytes` are an image, stores them under `image/<sha256>` and describes them.
    pub async fn upload_image(&self, bytes: Vec<u8>) -> Result<ImageInfo> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let limits = DecodeLimits {
            max_pixels: self.request_limits.max_image_pixels,
            ..self.limits
        };
        let (bytes, width, height) = tokio::task::spawn_blocking(move || {
            let image = crate::imaging::decode(&bytes, &limits).map_err(|e| match e {
                ImagingError::TooLarge { .. } => JobError::LimitExceeded {
                    what: format!("upload image ({e})"),
                    limit: limits.max_pixels,
                },
                e => JobError::Image {
                    key: "upload".into(),
                    reason: e.to_string(),
                },
            })?;
            let (w, h) = image.dimensions();
            Ok::<_, JobError>((bytes, w, h))
        })
        .await
        .map_err(|_| JobError::Internal("decode task panicked"))??;
        let key = blob::image_key(&sha256);
        if !self.blobs.exists(&key).await? {
            self.blobs.put(&key, bytes).await?;
        }
        info!(sha256, width, height, "image stored");
        Ok(ImageInfo {
            sha256,
            width,
            height,
        })
    }

    /// Validates a spec from `client` (its peer address), stores the job, queues its first task
    /// and returns it.
    pub async fn submit(self: &Arc<Self>, spec: JobSpec, client: &str) -> Result<JobRecord> {
        let spec = plan::with_defaults(spec);
        plan::validate(&spec)?;
        let limits = self.request_limits;
        if spec.iterations > limits.max_iterations {
            return Err(JobError::InvalidArgument {
                field: "iterations".into(),
                reason: format!("must be at most {} on this server", limits.max_iterations),
            });
        }
        if spec.styles.len() > limits.max_styles as usize {
            return Err(JobError::InvalidArgument {
                field: "styles".into(),
                reason: format!("at most {} style images on this server", limits.max_styles),
            });
        }
        let mut client_jobs = self.client_jobs.lock().await;
        let active = client_jobs.entry(client.to_owned()).or_default();
        let mut still_active = Vec::with_capacity(active.len());
        for id in active.drain(..) {
            if self
                .store
                .job(&id)
                .await?
                .is_some_and(|j| j.state.is_active())
            {
                still_active.push(id);
            }
        }
        *active = still_active;
        if active.len() >= limits.max_active_jobs_per_client as usize {
            return Err(JobError::LimitExceeded {
                what: format!("active jobs of client {client}"),
                limit: u64::from(limits.max_active_jobs_per_client),
            });
        }
        let mut images = vec![("content_sha256".to_owned(), spec.content_sha256.clone())];
        for (i, style) in spec.styles.iter().enumerate() {
            images.push((
                format!("styles[{i}].image_sha256"),
                style.image_sha256.clone(),
            ));
        }
        if let Some(init) = &spec.init_sha256 {
            images.push(("init_sha256".into(), init.clone()));
        }
        for (field, sha) in &images {
            if !self.blobs.exists(&blob::image_key(sha)).await? {
                return Err(JobError::InvalidArgument {
                    field: field.clone(),
                    reason: format!("no uploaded image {sha}"),
                });
            }
        }
        let content = self
            .load_image(&blob::image_key(&spec.content_sha256))
            .await?;
        let (cw, ch) = content.dimensions();
        let (width, height) = crate::imaging::fit_longest_side(cw, ch, spec.size);
        let job_plan = plan::plan(&spec, width, height)?;

        let id = JobId::random();
        self.store
            .create_job(&NewJob {
                id: id.clone(),
                spec: spec.encode_to_vec(),
                width,
                height,
                num_scales: job_plan.scales.len() as u32,
            })
            .await?;
        active.push(id.clone());
        drop(client_jobs);
        ::metrics::counter!(crate::metrics::JOBS_SUBMITTED).increment(1);
        info!(job_id = %id, client, width, height, scales = job_plan.scales.len(), "job accepted");
        self.advance(&id).await?;
        self.job(&id).await
    }

    /// Returns a job.
    pub async fn job(&self, id: &JobId) -> Result<JobRecord> {
        self.store
            .job(id)
            .await?
            .ok_or_else(|| JobError::JobNotFound(id.clone()))
    }

    /// Returns up to `limit` jobs, newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<JobRecord>> {
        Ok(self.store.list_jobs(limit).await?)
    }

    /// Cancels a job (a finished job is returned unchanged).
    pub async fn cancel(&self, id: &JobId) -> Result<JobRecord> {
        self.job(id).await?;
        if self.store.cancel_job(id).await? {
            info!(job_id = %id, "job cancelled");
            self.changed(id);
        }
        self.job(id).await
    }

    /// Returns the encoded output of a succeeded job.
    pub async fn result(&self, id: &JobId) -> Result<Vec<u8>> {
        let job = self.job(id).await?;
        if job.state != JobState::Succeeded {
            return Err(JobError::NotReady {
                job: id.clone(),
                state: job.state,
            });
        }
        self.blobs
            .get(&blob::output_key(id))
            .await?
            .ok_or(JobError::Internal("a succeeded job has an output blob"))
    }

    /// Expires leases and re-advances active jobs every [`MAINTENANCE_INTERVAL_MS`] until
    /// `shutdown` resolves.
    pub async fn run_maintenance(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(MAINTENANCE_INTERVAL_MS));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            match self.store.expire_leases().await {
                Ok(expired) => {
                    for expiry in expired {
                        warn!(task = %expiry.task, attempt = expiry.attempt,
                            job_failed = ?expiry.job_failed, "lease expired");
                        ::metrics::counter!(crate::metrics::LEASE_EXPIRIES).increment(1);
                        if expiry.job_failed.is_none() {
                            ::metrics::counter!(crate::metrics::TASK_RETRIES).increment(1);
                        }
                        self.changed(&expiry.task.job);
                        self.work.notify_waiters();
                    }
                }
                Err(e) => warn!(error = %e, "cannot expire leases"),
            }
            if let Err(e) = self.reconcile().await {
                warn!(error = %e, "reconcile failed");
            }
            if let Err(e) = self.record_gauges().await {
                warn!(error = %e, "cannot read the job and queue gauges");
            }
        }
    }

    /// Sets the jobs-by-state and backlog gauges from the store.
    async fn record_gauges(&self) -> Result<()> {
        let backlog = self.store.queue_len().await?;
        ::metrics::gauge!(crate::metrics::TILE_BACKLOG).set(backlog as f64);
        let mut counts: HashMap<&'static str, u64> = HashMap::new();
        for job in self.store.list_jobs(GAUGE_JOBS_SCANNED).await? {
            *counts.entry(job.state.as_str()).or_default() += 1;
        }
        for state in ALL_STATES {
            let n = counts.get(state.as_str()).copied().unwrap_or(0);
            ::metrics::gauge!(crate::metrics::JOBS, "state" => state.as_str()).set(n as f64);
        }
        Ok(())
    }

    /// Notes that an attempt was handed out now.
    pub(crate) fn lease_began(&self, task: &impl std::fmt::Display, attempt: u32) {
        let mut started = self.lease_started.lock().unwrap_or_else(|e| e.into_inner());
        started.insert(format!("{task}#{attempt}"), std::time::Instant::now());
    }

    /// Returns how long ago an attempt was handed out by this process, forgetting it.
    pub(crate) fn lease_ended(
        &self,
        task: &impl std::fmt::Display,
        attempt: u32,
    ) -> Option<Duration> {
        let mut started = self.lease_started.lock().unwrap_or_else(|e| e.into_inner());
        started
            .remove(&format!("{task}#{attempt}"))
            .map(|t| t.elapsed())
    }

    async fn load_image(&self, key: &str) -> Result<crate::imaging::LoadedImage> {
        let bytes = self
            .blobs
            .get(key)
            .await?
            .ok_or_else(|| JobError::Corrupt(format!("missing blob {key}")))?;
        let limits = self.limits;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || work::decode(&key, &bytes, &limits))
            .await
            .map_err(|_| JobError::Internal("decode task panicked"))?
    }
}

/// Converts a stored job to its wire form.
pub fn to_proto(record: &JobRecord) -> pb::Job {
    let state = match record.state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    };
    pb::Job {
        job_id: record.job.id.to_string(),
        spec: JobSpec::decode(record.job.spec.as_slice()).ok(),
        state: state as i32,
        width: record.job.width,
        height: record.job.height,
        scale: record.scale,
        num_scales: record.job.num_scales,
        tiles_done: record.tiles_done,
        tiles_total: record.tiles_total,
        error: record.error.clone(),
        created_unix_ms: record.created_unix_ms,
        updated_unix_ms: record.updated_unix_ms,
    }
}
