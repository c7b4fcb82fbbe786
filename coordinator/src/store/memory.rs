//! The in-memory [`Store`] of the embedded mode (and of tests).
//!
//! One mutex guards all state, so every operation is atomic like a Redis script. The clock is
//! tokio's: a wall-clock origin taken at construction plus `tokio::time::Instant` elapsed, so a
//! test with paused time moves lease deadlines with `tokio::time::advance`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    Completion, Event, Expiry, Failure, GiveUp, Heartbeat, JobRecord, JobState, Lease, NewJob,
    NewTask, Result, Store, StoreConfig, StoreError, TaskState, WorkerRecord,
};
use crate::ids::{JobId, TaskId, WorkerId};

/// A [`Store`] that keeps everything in this process.
#[derive(Debug)]
pub struct MemoryStore {
    config: StoreConfig,
    origin_unix_ms: i64,
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, JobEntry>,
    tasks: HashMap<TaskId, TaskEntry>,
    queue: VecDeque<TaskId>,
    workers: BTreeMap<WorkerId, WorkerRecord>,
}

#[derive(Debug)]
struct JobEntry {
    record: JobRecord,
    tasks: HashSet<TaskId>,
    done: HashMap<u32, HashSet<TaskId>>,
    events: Vec<Event>,
}

#[derive(Debug)]
struct TaskEntry {
    payload: Vec<u8>,
    state: TaskState,
    attempt: u32,
    /// Leases handed back by stopping workers, which do not count as failed attempts.
    handed_back: u32,
    deadline_unix_ms: i64,
}

impl TaskEntry {
    /// Returns how many of `attempt`'s leases failed or expired.
    fn failed_attempts(&self, attempt: u32) -> u32 {
        attempt.saturating_sub(self.handed_back)
    }
}

impl MemoryStore {
    /// Creates an empty store with the given lease rules.
    pub fn new(config: StoreConfig) -> Self {
        let origin_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            config,
            origin_unix_ms,
            origin: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn now_ms(&self) -> i64 {
        self.origin_unix_ms + self.origin.elapsed().as_millis() as i64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic mid-update elsewhere; the state is still consistent
        // because every update below is written so that it cannot panic halfway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Ends an active job in `state` and drops its queued and leased tasks.
    fn end_job(&mut self, id: &JobId, state: JobState, reason: &str, now: i64) -> bool {
        let Some(job) = self.jobs.get_mut(id) else {
            return false;
        };
        if !job.record.state.is_active() {
            return false;
        }
        job.record.state = state;
        job.record.error = reason.to_owned();
        job.record.updated_unix_ms = now;
        job.events.push(Event {
            unix_ms: now,
            message: format!("{}: {reason}", state.as_str()),
        });
        for task in &job.tasks {
            if let Some(entry) = self.tasks.get_mut(task) {
                if matches!(entry.state, TaskState::Queued | TaskState::Leased { .. }) {
                    entry.state = TaskState::Cancelled;
                }
            }
        }
        let tasks = &self.tasks;
        self.queue
            .retain(|t| tasks.get(t).is_some_and(|e| e.state == TaskState::Queued));
        true
    }

    fn expire(&mut self, now: i64, max_attempts: u32) -> Vec<Expiry> {
        let mut overdue: Vec<(TaskId, u32, u32)> = self
            .tasks
            .iter()
            .filter_map(|(id, t)| match t.state {
                TaskState::Leased { attempt } if t.deadline_unix_ms <= now => {
                    Some((id.clone(), attempt, t.failed_attempts(attempt)))
                }
                _ => None,
            })
            .collect();
        overdue.sort_by_key(|(id, _, _)| self.tasks[id].deadline_unix_ms);
        let mut out = Vec::new();
        for (id, attempt, failed) in overdue {
            if failed >= max_attempts {
                let reason = format!("task {id} lease expired after {attempt} attempts");
                if let Some(entry) = self.tasks.get_mut(&id) {
                    entry.state = TaskState::Failed;
                }
                self.end_job(&id.job, JobState::Failed, &reason, now);
                out.push(Expiry {
                    task: id,
                    attempt,
                    job_failed: Some(reason),
                });
            } else {
                if let Some(entry) = self.tasks.get_mut(&id) {
                    entry.state = TaskState::Queued;
                }
                self.queue.push_front(id.clone());
                out.push(Expiry {
                    task: id,
                    attempt,
                    job_failed: None,
                });
            }
        }
        out
    }

    fn job_mut(&mut self, id: &JobId) -> Result<&mut JobEntry> {
        self.jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::JobNotFound(id.clone()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_job(&self, job: &NewJob) -> Result<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        if state.jobs.contains_key(&job.id) {
            return Err(StoreError::JobExists(job.id.clone()));
        }
        let record = JobRecord {
            job: job.clone(),
            state: JobState::Queued,
            scale: 0,
            tiles_done: 0,
            tiles_total: 0,
            error: String::new(),
            created_unix_ms: now,
            updated_unix_ms: now,
        };
        state.jobs.insert(
            job.id.clone(),
            JobEntry {
                record,
                tasks: HashSet::new(),
                done: HashMap::new(),
                events: vec![Event {
                    unix_ms: now,
                    message: "queued".into(),
                }],
            },
        );
        Ok(())
    }

    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let state = self.lock();
        Ok(state.jobs.get(id).map(|j| {
            let mut record = j.record.clone();
            record.tiles_done = j.done.get(&record.scale).map_or(0, |d| d.len() as u32);
            record
        }))
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        let ids: Vec<JobId> = {
            let state = self.lock();
            let mut jobs: Vec<&JobEntry> = state.jobs.values().collect();
            jobs.sort_by_key(|j| {
                std::cmp::Reverse((j.record.created_unix_ms, j.record.job.id.clone()))
            });
            jobs.iter()
                .take(limit)
                .map(|j| j.record.job.id.clone())
                .collect()
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.job(&id).await?);
        }
        Ok(out)
    }

    async fn queue_len(&self) -> Result<u64> {
        Ok(self.lock().queue.len() as u64)
    }

    async fn active_jobs(&self) -> Result<Vec<JobId>> {
        let state = self.lock();
        let mut ids: Vec<JobId> = state
            .jobs
            .values()
            .filter(|j| j.record.state.is_active())
            .map(|j| j.record.job.id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn set_progress(&self, id: &JobId, scale: u32, tiles_total: u32) -> Result<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        let job = state.job_mut(id)?;
        if job.record.state.is_active() {
            job.record.scale = scale;
            job.record.tiles_total = tiles_total;
            job.record.updated_unix_ms = now;
        }
        Ok(())
    }

    async fn succeed_job(&self, id: &JobId) -> Result<bool> {
        let now = self.now_ms();
        let mut state = self.lock();
        let job = state.job_mut(id)?;
        if !job.record.state.is_active() {
            return Ok(false);
        }
        job.record.state = JobState::Succeeded;
        job.record.updated_unix_ms = now;
        job.events.push(Event {
            unix_ms: now,
            message: "succeeded".into(),
        });
        Ok(true)
    }

    async fn fail_job(&self, id: &JobId, reason: &str) -> Result<bool> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.job_mut(id)?;
        Ok(state.end_job(id, JobState::Failed, reason, now))
    }

    async fn cancel_job(&self, id: &JobId) -> Result<bool> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.job_mut(id)?;
        Ok(state.end_job(id, JobState::Cancelled, "cancelled by request", now))
    }

    async fn enqueue(&self, job: &JobId, tasks: &[NewTask]) -> Result<usize> {
        let mut state = self.lock();
        if !state.job_mut(job)?.record.state.is_active() {
            return Ok(0);
        }
        let mut created = 0;
        for task in tasks {
            if state.tasks.contains_key(&task.id) {
                continue;
            }
            state.tasks.insert(
                task.id.clone(),
                TaskEntry {
                    payload: task.payload.clone(),
                    state: TaskState::Queued,
                    attempt: 0,
                    handed_back: 0,
                    deadline_unix_ms: 0,
                },
            );
            state.job_mut(job)?.tasks.insert(task.id.clone());
            state.queue.push_back(task.id.clone());
            created += 1;
        }
        Ok(created)
    }

    async fn task_state(&self, task: &TaskId) -> Result<Option<TaskState>> {
        Ok(self.lock().tasks.get(task).map(|t| t.state))
    }

    async fn tiles_done(&self, job: &JobId, scale: u32) -> Result<u32> {
        let state = self.lock();
        Ok(state
            .jobs
            .get(job)
            .and_then(|j| j.done.get(&scale))
            .map_or(0, |d| d.len() as u32))
    }

    async fn lease(&self, _worker: &WorkerId) -> Result<Option<Lease>> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.expire(now, self.config.max_attempts);
        while let Some(id) = state.queue.pop_front() {
            let active = state
                .jobs
                .get(&id.job)
                .is_some_and(|j| j.record.state.is_active());
            let Some(entry) = state.tasks.get_mut(&id) else {
                continue;
            };
            if entry.state != TaskState::Queued || !active {
                continue;
            }
            entry.attempt += 1;
            entry.deadline_unix_ms = now + self.config.lease_ttl_ms() as i64;
            entry.state = TaskState::Leased {
                attempt: entry.attempt,
            };
            let lease = Lease {
                task: id.clone(),
                attempt: entry.attempt,
                deadline_unix_ms: entry.deadline_unix_ms,
                payload: entry.payload.clone(),
            };
            let job = state.job_mut(&id.job)?;
            if job.record.state == JobState::Queued {
                job.record.state = JobState::Running;
                job.record.updated_unix_ms = now;
            }
            return Ok(Some(lease));
        }
        Ok(None)
    }

    async fn heartbeat(&self, task: &TaskId, attempt: u32) -> Result<Heartbeat> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.expire(now, self.config.max_attempts);
        let Some(entry) = state.tasks.get_mut(task) else {
            return Ok(Heartbeat::Stop);
        };
        if entry.state != (TaskState::Leased { attempt }) {
            return Ok(Heartbeat::Stop);
        }
        entry.deadline_unix_ms = now + self.config.lease_ttl_ms() as i64;
        Ok(Heartbeat::KeepGoing {
            deadline_unix_ms: entry.deadline_unix_ms,
        })
    }

    async fn complete(&self, task: &TaskId, attempt: u32) -> Result<Completion> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.expire(now, self.config.max_attempts);
        let Some(entry) = state.tasks.get_mut(task) else {
            return Ok(Completion::Unknown);
        };
        let outcome = match entry.state {
            TaskState::Done { attempt: done } if done == attempt => Completion::Duplicate,
            TaskState::Cancelled => Completion::Cancelled,
            TaskState::Leased { attempt: current } if current == attempt => {
                entry.state = TaskState::Done { attempt };
                Completion::Accepted
            }
            _ => Completion::Stale,
        };
        if outcome == Completion::Accepted {
            let job = state.job_mut(&task.job)?;
            job.record.updated_unix_ms = now;
            if task.tile_id().is_some() {
                job.done.entry(task.scale).or_default().insert(task.clone());
            }
        }
        Ok(outcome)
    }

    async fn fail(
        &self,
        task: &TaskId,
        attempt: u32,
        reason: &str,
        why: GiveUp,
    ) -> Result<Failure> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.expire(now, self.config.max_attempts);
        let Some(entry) = state.tasks.get_mut(task) else {
            return Ok(Failure::Stale);
        };
        if entry.state != (TaskState::Leased { attempt }) {
            return Ok(Failure::Stale);
        }
        if why == GiveUp::HandedBack {
            entry.handed_back += 1;
        }
        let retry = match why {
            GiveUp::Fatal => false,
            GiveUp::Retryable => entry.failed_attempts(attempt) < self.config.max_attempts,
            GiveUp::HandedBack => true,
        };
        if retry {
            entry.state = TaskState::Queued;
            state.queue.push_front(task.clone());
            return Ok(Failure::Requeued);
        }
        entry.state = TaskState::Failed;
        let reason = format!("task {task} failed on attempt {attempt}: {reason}");
        state.end_job(&task.job, JobState::Failed, &reason, now);
        Ok(Failure::JobFailed(reason))
    }

    async fn expire_leases(&self) -> Result<Vec<Expiry>> {
        let now = self.now_ms();
        Ok(self.lock().expire(now, self.config.max_attempts))
    }

    async fn append_event(&self, job: &JobId, message: &str) -> Result<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.job_mut(job)?.events.push(Event {
            unix_ms: now,
            message: message.to_owned(),
        });
        Ok(())
    }

    async fn events(&self, job: &JobId) -> Result<Vec<Event>> {
        let state = self.lock();
        Ok(state
            .jobs
            .get(job)
            .map(|j| j.events.clone())
            .unwrap_or_default())
    }

    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()> {
        let now = self.now_ms();
        let mut record = worker.clone();
        record.last_seen_unix_ms = now;
        self.lock().workers.insert(worker.id.clone(), record);
        Ok(())
    }

    async fn touch_worker(&self, worker: &WorkerId, tasks_done: u64) -> Result<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        let record = state
            .workers
            .entry(worker.clone())
            .or_insert_with(|| WorkerRecord {
                id: worker.clone(),
                device: String::new(),
                memory_bytes: 0,
                last_seen_unix_ms: now,
                tasks_done: 0,
            });
        record.last_seen_unix_ms = now;
        record.tasks_done += tasks_done;
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>> {
        Ok(self.lock().workers.values().cloned().collect())
    }
}
