//! The state store: jobs, tasks, leases, events and workers.
//!
//! Every state change of the farm goes through a [`Store`], so that a restarted coordinator
//! resumes from it. Two implementations share one set of semantics, checked by the
//! conformance suite in `tests/store_conformance.rs`:
//!
//! - [`RedisStore`]: the farm's store; multi-key transitions are Lua scripts and lease
//!   deadlines come from the Redis server's clock.
//! - [`MemoryStore`]: the embedded mode's store; its clock is tokio's, so tests can pause time.
//!
//! Lease rules: leasing a task bumps its attempt number and sets a deadline `lease_ttl` ahead;
//! heartbeats of the current attempt push the deadline; a lease past its deadline is put back
//! at the front of the queue until a task has been leased `max_attempts` times, after which the
//! task fails its job with the reason. A completion of an older attempt is refused as stale, and
//! a repeated completion of the accepted attempt is a harmless duplicate. Failing or cancelling
//! a job removes its queued tasks and turns its leases' heartbeats into `keep_going = false`.
//!
//! Only small values live here; images and results are in the blob store.

use std::time::Duration;

use async_trait::async_trait;

use crate::ids::{JobId, TaskId, WorkerId};

mod memory;
mod redis;
mod scripts;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// Default lease time-to-live, in seconds.
pub const LEASE_TTL_SECS: u64 = 30;

/// Default number of times a task is leased before it fails its job.
pub const MAX_ATTEMPTS: u32 = 3;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or refused a command.
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A stored record could not be read back.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A job with this id already exists.
    #[error("job {0} already exists")]
    JobExists(JobId),
    /// The job is not in the store.
    #[error("job {0} not found")]
    JobNotFound(JobId),
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How leases behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long a lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// Leases a task gets before it fails its job.
    pub max_attempts: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(LEASE_TTL_SECS),
            max_attempts: MAX_ATTEMPTS,
        }
    }
}

impl StoreConfig {
    fn lease_ttl_ms(&self) -> u64 {
        self.lease_ttl.as_millis().max(1) as u64
    }
}

/// The life cycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Accepted, no task leased yet.
    Queued,
    /// At least one task was leased.
    Running,
    /// The output is stored.
    Succeeded,
    /// A task failed for good; the job's error says why.
    Failed,
    /// Cancelled by a client.
    Cancelled,
}

impl JobState {
    /// Returns whether the job can still change.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    /// Returns the name stored for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored state name.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A job as submitted: the opaque spec and the geometry derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The job's id.
    pub id: JobId,
    /// The encoded job spec, opaque to the store.
    pub spec: Vec<u8>,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Number of scales planned.
    pub num_scales: u32,
}

/// A stored job with its progress.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The job as submitted.
    pub job: NewJob,
    /// Where it is.
    pub state: JobState,
    /// The scale being rendered.
    pub scale: u32,
    /// Tiles of that scale completed.
    pub tiles_done: u32,
    /// Tiles of that scale in all.
    pub tiles_total: u32,
    /// Why the job failed, empty otherwise.
    pub error: String,
    /// When it was submitted, in Unix milliseconds.
    pub created_unix_ms: i64,
    /// When it last changed, in Unix milliseconds.
    pub updated_unix_ms: i64,
}

/// A task to queue: its id and the payload a worker gets when leasing it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The task's id, which names its job and scale.
    pub id: TaskId,
    /// Opaque bytes handed to the worker (an encoded task description).
    pub payload: Vec<u8>,
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting in the queue.
    Queued,
    /// Leased to a worker with this attempt number.
    Leased {
        /// The current attempt.
        attempt: u32,
    },
    /// Completed by this attempt.
    Done {
        /// The accepted attempt.
        attempt: u32,
    },
    /// Failed for good.
    Failed,
    /// Dropped because its job was cancelled or failed.
    Cancelled,
}

/// A task handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The task.
    pub task: TaskId,
    /// Attempt number, 1 for the first lease; results must echo it.
    pub attempt: u32,
    /// When the lease expires without a heartbeat, in Unix milliseconds of the store's clock.
    pub deadline_unix_ms: i64,
    /// The payload given at enqueue time.
    pub payload: Vec<u8>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease holds until the new deadline.
    KeepGoing {
        /// The new deadline, in Unix milliseconds.
        deadline_unix_ms: i64,
    },
    /// The lease is gone (expired, superseded, or the job was cancelled or failed).
    Stop,
}

/// The answer to a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The result is the task's result.
    Accepted,
    /// The same attempt was already accepted; nothing changed.
    Duplicate,
    /// The attempt is not the current lease (expired and re-leased, or never leased).
    Stale,
    /// The task's job was cancelled or failed.
    Cancelled,
    /// No such task.
    Unknown,
}

/// Why a worker gives a leased task up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The task cannot succeed (bad input): its job fails now.
    Fatal,
    /// The task may succeed elsewhere: it is queued again while failed attempts remain.
    Retryable,
    /// The worker is shutting down (scale-in, a rolling update): the task is queued again and
    /// the attempt does not count towards the limit, which only failures and expiries use up.
    HandedBack,
}

/// The answer to a worker's failure report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The task is queued again.
    Requeued,
    /// The task failed its job with this reason.
    JobFailed(String),
    /// The attempt is not the current lease; nothing changed.
    Stale,
}

/// What happened to one expired lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The task whose lease expired.
    pub task: TaskId,
    /// The attempt that expired.
    pub attempt: u32,
    /// Set when the task ran out of attempts and failed its job, with the reason.
    pub job_failed: Option<String>,
}

/// A line in a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened, in Unix milliseconds.
    pub unix_ms: i64,
    /// What happened.
    pub message: String,
}

/// A worker as it registered, with its activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// The worker's id.
    pub id: WorkerId,
    /// Its device, e.g. `cuda:0`.
    pub device: String,
    /// Memory of the device, in bytes.
    pub memory_bytes: u64,
    /// When it was last heard from, in Unix milliseconds.
    pub last_seen_unix_ms: i64,
    /// Tasks it completed.
    pub tasks_done: u64,
}

/// Persistent state of the farm: jobs, the task queue, leases, events and workers.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores a new job in the `Queued` state.
    async fn create_job(&self, job: &NewJob) -> Result<()>;

    /// Returns a job, or `None` if unknown.
    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>>;

    /// Returns up to `limit` jobs, newest first.
    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>>;

    /// Returns the ids of jobs that are queued or running.
    async fn active_jobs(&self) -> Result<Vec<JobId>>;

    /// Records that a job renders `scale` with `tiles_total` tiles; ignored once it is over.
    async fn set_progress(&self, id: &JobId, scale: u32, tiles_total: u32) -> Result<()>;

    /// Marks an active job succeeded; returns false if it was already over.
    async fn succeed_job(&self, id: &JobId) -> Result<bool>;

    /// Fails an active job with a reason and drops its tasks; returns false if it was over.
    async fn fail_job(&self, id: &JobId, reason: &str) -> Result<bool>;

    /// Cancels an active job and drops its tasks; returns false if it was already over.
    async fn cancel_job(&self, id: &JobId) -> Result<bool>;

    /// Queues the tasks that do not exist yet (of an active job) and returns how many were new.
    async fn enqueue(&self, job: &JobId, tasks: &[NewTask]) -> Result<usize>;

    /// Returns where a task is, or `None` if it was never queued.
    async fn task_state(&self, task: &TaskId) -> Result<Option<TaskState>>;

    /// Returns how many tile tasks of a scale are done.
    async fn tiles_done(&self, job: &JobId, scale: u32) -> Result<u32>;

    /// Expires overdue leases, then leases the next queued task to `worker`, if any.
    async fn lease(&self, worker: &WorkerId) -> Result<Option<Lease>>;

    /// Extends the lease of `attempt` if it is still current and its job active.
    async fn heartbeat(&self, task: &TaskId, attempt: u32) -> Result<Heartbeat>;

    /// Records the result of `attempt` (see [`Completion`]).
    async fn complete(&self, task: &TaskId, attempt: u32) -> Result<Completion>;

    /// Records that a worker gave `attempt` up, and why (see [`GiveUp`]).
    async fn fail(&self, task: &TaskId, attempt: u32, reason: &str, why: GiveUp)
        -> Result<Failure>;

    /// Requeues or fails the tasks whose lease is overdue and reports what it did.
    async fn expire_leases(&self) -> Result<Vec<Expiry>>;

    /// Returns how many tasks wait in the queue.
    async fn queue_len(&self) -> Result<u64>;

    /// Appends a line to a job's history.
    async fn append_event(&self, job: &JobId, message: &str) -> Result<()>;

    /// Returns a job's history, oldest first.
    async fn events(&self, job: &JobId) -> Result<Vec<Event>>;

    /// Records a worker, or refreshes its record.
    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()>;

    /// Notes that a worker was heard from, adding `tasks_done` to its count.
    async fn touch_worker(&self, worker: &WorkerId, tasks_done: u64) -> Result<()>;

    /// Returns the registered workers.
    async fn list_workers(&self) -> Result<Vec<WorkerRecord>>;
}
