//! The worker side of the job manager: register, lease, heartbeat, complete and fail.

use std::sync::Arc;
use std::time::Duration;

use deepstyle_proto::v1::{self as pb, JobSpec};
use prost::Message;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{plan, work, JobError, JobManager, Result};
use crate::blob;
use crate::ids::{TaskId, TaskKind, WorkerId};
use crate::store::{Completion, Failure, GiveUp, Heartbeat, WorkerRecord};

/// How often a long-polling lease re-checks the queue without a wake-up, in milliseconds.
const LEASE_POLL_MS: u64 = 100;

/// What a completion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// The result was accepted.
    Accepted,
    /// The same attempt had already been accepted.
    Duplicate,
}

impl JobManager {
    /// Registers a worker and returns its new id.
    pub async fn register_worker(&self, device: &str, memory_bytes: u64) -> Result<WorkerId> {
        let id = WorkerId::random();
        self.store
            .register_worker(&WorkerRecord {
                id: id.clone(),
                device: device.to_owned(),
                memory_bytes,
                last_seen_unix_ms: 0,
                tasks_done: 0,
            })
            .await?;
        info!(worker_id = %id, device, "worker registered");
        Ok(id)
    }

    /// Returns the registered workers.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>> {
        Ok(self.store.list_workers().await?)
    }

    /// Leases the next task to `worker`, waiting up to `wait` for one to be queued.
    pub async fn lease(&self, worker: &WorkerId, wait: Duration) -> Result<Option<pb::Task>> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.work.notified();
            if let Some(lease) = self.store.lease(worker).await? {
                let mut task = pb::Task::decode(lease.payload.as_slice())
                    .map_err(|e| JobError::Corrupt(format!("task {} payload: {e}", lease.task)))?;
                task.attempt = lease.attempt;
                task.deadline_unix_ms = lease.deadline_unix_ms;
                self.store.touch_worker(worker, 0).await?;
                self.lease_began(&lease.task, lease.attempt);
                debug!(worker_id = %worker, task = %lease.task, attempt = lease.attempt, "leased");
                self.changed(&lease.task.job);
                return Ok(Some(task));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let poll = deadline.min(now + Duration::from_millis(LEASE_POLL_MS));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(poll) => {}
            }
        }
    }

    /// Extends a lease; `None` means the worker must stop (lease gone or job over).
    pub async fn heartbeat(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        attempt: u32,
    ) -> Result<Option<i64>> {
        self.store.touch_worker(worker, 0).await?;
        Ok(match self.store.heartbeat(task, attempt).await? {
            Heartbeat::KeepGoing { deadline_unix_ms } => Some(deadline_unix_ms),
            Heartbeat::Stop => None,
        })
    }

    /// Checks and stores a task result, then advances its job.
    ///
    /// A tile result must be a PNG of exactly the task's inner rect; a style target is stored
    /// as given. Stale attempts and results for cancelled jobs are refused.
    pub async fn complete(
        self: &Arc<Self>,
        worker: &WorkerId,
        task: &TaskId,
        attempt: u32,
        bytes: Vec<u8>,
    ) -> Result<CompleteOutcome> {
        let key = match task.kind {
            TaskKind::StyleTarget => blob::style_target_key(&task.job, task.scale, attempt),
            TaskKind::Tile(tile) => {
                self.check_tile_result(task, &bytes).await?;
                blob::tile_result_key(&task.job, task.scale, tile, attempt)
            }
        };
        // Written before the store accepts it, under a per-attempt key, so an accepted task
        // always has its blob and a stale attempt can never overwrite the accepted one.
        self.blobs.put(&key, bytes).await?;
        let refused = match self.store.complete(task, attempt).await? {
            Completion::Accepted => {
                self.store.touch_worker(worker, 1).await?;
                if let Some(took) = self.lease_ended(task, attempt) {
                    let kind = match task.kind {
                        TaskKind::StyleTarget => "style_target",
                        TaskKind::Tile(_) => "tile",
                    };
                    ::metrics::histogram!(crate::metrics::TASK_DURATION, "kind" => kind)
                        .record(took.as_secs_f64());
                }
                info!(worker_id = %worker, task = %task, attempt, "task completed");
                self.changed(&task.job);
                let manager = Arc::clone(self);
                let job = task.job.clone();
                tokio::spawn(async move {
                    if let Err(e) = manager.advance(&job).await {
                        warn!(job_id = %job, error = %e, "cannot advance job");
                    }
                });
                return Ok(CompleteOutcome::Accepted);
            }
            Completion::Duplicate => return Ok(CompleteOutcome::Duplicate),
            Completion::Stale => {
                ::metrics::counter!(crate::metrics::STALE_COMPLETIONS).increment(1);
                JobError::StaleAttempt {
                    task: task.to_string(),
                    attempt,
                }
            }
            Completion::Cancelled => JobError::JobOver(task.job.clone()),
            Completion::Unknown => JobError::TaskNotFound(task.to_string()),
        };
        warn!(worker_id = %worker, task = %task, attempt, error = %refused, "result refused");
        self.blobs.delete(&key).await?;
        Err(refused)
    }

    async fn check_tile_result(&self, task: &TaskId, bytes: &[u8]) -> Result<()> {
        let record = self.job(&task.job).await?;
        let spec = JobSpec::decode(record.job.spec.as_slice())
            .map_err(|e| JobError::Corrupt(format!("job {} spec: {e}", task.job)))?;
        let job_plan = plan::plan(&spec, record.job.width, record.job.height)?;
        let tile = task.tile_id().map_or(0, |t| t.0) as usize;
        let Some((_, inner)) = job_plan.tile_rects(task.scale as usize, tile) else {
            return Err(JobError::TaskNotFound(task.to_string()));
        };
        let image = work::decode("tile result", bytes, &self.limits)?;
        if image.dimensions() != (inner.width, inner.height) {
            return Err(JobError::InvalidArgument {
                field: "data".into(),
                reason: format!(
                    "tile result is {}x{}, expected the inner rect {}x{}",
                    image.dimensions().0,
                    image.dimensions().1,
                    inner.width,
                    inner.height
                ),
            });
        }
        Ok(())
    }

    /// Records a worker's failure of a task.
    pub async fn fail(
        &self,
        worker: &WorkerId,
        task: &TaskId,
        attempt: u32,
        reason: &str,
        why: GiveUp,
    ) -> Result<()> {
        match self.store.fail(task, attempt, reason, why).await? {
            Failure::Requeued if why == GiveUp::HandedBack => {
                info!(worker_id = %worker, task = %task, attempt, reason, "task handed back");
                self.work.notify_waiters();
            }
            Failure::Requeued => {
                warn!(worker_id = %worker, task = %task, attempt, reason, "task failed, retrying");
                ::metrics::counter!(crate::metrics::TASK_RETRIES).increment(1);
                self.work.notify_waiters();
            }
            Failure::JobFailed(reason) => {
                warn!(worker_id = %worker, task = %task, attempt, reason, "task failed its job");
            }
            Failure::Stale => {
                return Err(JobError::StaleAttempt {
                    task: task.to_string(),
                    attempt,
                })
            }
        }
        self.changed(&task.job);
        Ok(())
    }
}
