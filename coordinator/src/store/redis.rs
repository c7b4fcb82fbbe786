//! The Redis [`Store`] of the farm.
//!
//! Layout under a key prefix `P` (one Redis, not a cluster, since scripts build keys):
//! `P:job:<id>` (hash: spec, geometry, state, progress), `P:job:<id>:tasks` (set),
//! `P:job:<id>:done:<scale>` (set of finished tiles), `P:job:<id>:events` (list),
//! `P:jobs` (zset by creation time), `P:active` (set), `P:task:<task>` (hash: job, payload,
//! state, attempt, done_attempt, deadline), `P:queue` (list), `P:leases` (zset by deadline),
//! `P:workers` (set) and `P:worker:<id>` (hash). Transitions are the scripts of
//! [`super::scripts`]; plain reads are single commands.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Value;

use super::scripts::Scripts;
use super::{
    Completion, Event, Expiry, Failure, GiveUp, Heartbeat, JobRecord, JobState, Lease, NewJob,
    NewTask, Result, Store, StoreConfig, StoreError, TaskState, WorkerRecord,
};
use crate::ids::{JobId, TaskId, WorkerId};

/// A [`Store`] in Redis, shared by every coordinator process of a farm.
pub struct RedisStore {
    config: StoreConfig,
    prefix: String,
    conn: ConnectionManager,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379/0`) with keys under `prefix`.
    pub async fn connect(url: &str, prefix: &str, config: StoreConfig) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            config,
            prefix: prefix.to_owned(),
            conn,
            scripts: Scripts::new(),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn corrupt(key: String, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key,
            reason: reason.into(),
        }
    }

    async fn end_job(&self, id: &JobId, state: JobState, reason: &str) -> Result<bool> {
        let done: i64 = self
            .scripts
            .end_job
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(state.as_str())
            .arg(reason)
            .invoke_async(&mut self.conn())
            .await?;
        match done {
            -1 => Err(StoreError::JobNotFound(id.clone())),
            n => Ok(n == 1),
        }
    }
}

fn field<T: std::str::FromStr>(map: &HashMap<String, Vec<u8>>, name: &str, key: &str) -> Result<T> {
    map.get(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RedisStore::corrupt(key.to_owned(), format!("bad field {name}")))
}

fn text(map: &HashMap<String, Vec<u8>>, name: &str) -> String {
    map.get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn parse_task(key: &str, value: &[u8]) -> Result<TaskId> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RedisStore::corrupt(key.to_owned(), "bad task id"))
}

#[async_trait]
impl Store for RedisStore {
    async fn create_job(&self, job: &NewJob) -> Result<()> {
        let created: i64 = self
            .scripts
            .create_job
            .arg(&self.prefix)
            .arg(job.id.as_str())
            .arg(&job.spec)
            .arg(job.width)
            .arg(job.height)
            .arg(job.num_scales)
            .invoke_async(&mut self.conn())
            .await?;
        if created == 0 {
            return Err(StoreError::JobExists(job.id.clone()));
        }
        Ok(())
    }

    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>> {
        let key = self.key(&format!("job:{id}"));
        let map: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        if map.is_empty() {
            return Ok(None);
        }
        let scale: u32 = field(&map, "scale", &key)?;
        let tiles_done: u32 = redis::cmd("SCARD")
            .arg(format!("{key}:done:{scale}"))
            .query_async(&mut self.conn())
            .await?;
        let state = JobState::parse(&text(&map, "state"))
            .ok_or_else(|| Self::corrupt(key.clone(), "bad state"))?;
        Ok(Some(JobRecord {
            job: NewJob {
                id: id.clone(),
                spec: map.get("spec").cloned().unwrap_or_default(),
                width: field(&map, "width", &key)?,
                height: field(&map, "height", &key)?,
                num_scales: field(&map, "num_scales", &key)?,
            },
            state,
            scale,
            tiles_done,
            tiles_total: field(&map, "tiles_total", &key)?,
            error: text(&map, "error"),
            created_unix_ms: field(&map, "created_ms", &key)?,
            updated_unix_ms: field(&map, "updated_ms", &key)?,
        }))
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(self.key("jobs"))
            .arg(0)
            .arg(limit as i64 - 1)
            .query_async(&mut self.conn())
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id =
                JobId::parse(&id).map_err(|e| Self::corrupt(self.key("jobs"), e.to_string()))?;
            out.extend(self.job(&id).await?);
        }
        Ok(out)
    }

    async fn queue_len(&self) -> Result<u64> {
        Ok(redis::cmd("LLEN")
            .arg(self.key("queue"))
            .query_async(&mut self.conn())
            .await?)
    }

    async fn active_jobs(&self) -> Result<Vec<JobId>> {
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key("active"))
            .query_async(&mut self.conn())
            .await?;
        ids.sort();
        ids.iter()
            .map(|id| {
                JobId::parse(id).map_err(|e| Self::corrupt(self.key("active"), e.to_string()))
            })
            .collect()
    }

    async fn set_progress(&self, id: &JobId, scale: u32, tiles_total: u32) -> Result<()> {
        let done: i64 = self
            .scripts
            .set_progress
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(scale)
            .arg(tiles_total)
            .invoke_async(&mut self.conn())
            .await?;
        if done == -1 {
            return Err(StoreError::JobNotFound(id.clone()));
        }
        Ok(())
    }

    async fn succeed_job(&self, id: &JobId) -> Result<bool> {
        let done: i64 = self
            .scripts
            .succeed_job
            .arg(&self.prefix)
            .arg(id.as_str())
            .invoke_async(&mut self.conn())
            .await?;
        match done {
            -1 => Err(StoreError::JobNotFound(id.clone())),
            n => Ok(n == 1),
        }
    }

    async fn fail_job(&self, id: &JobId, reason: &str) -> Result<bool> {
        self.end_job(id, JobState::Failed, reason).await
    }

    async fn cancel_job(&self, id: &JobId) -> Result<bool> {
        self.end_job(id, JobState::Cancelled, "cancelled by request")
            .await
    }

    async fn enqueue(&self, job: &JobId, tasks: &[NewTask]) -> Result<usize> {
        let mut invocation = self.scripts.enqueue.prepare_invoke();
        invocation.arg(&self.prefix).arg(job.as_str());
        for task in tasks {
            invocation.arg(task.id.to_string()).arg(&task.payload);
        }
        let created: i64 = invocation.invoke_async(&mut self.conn()).await?;
        match created {
            -1 => Err(StoreError::JobNotFound(job.clone())),
            n => Ok(n as usize),
        }
    }

    async fn task_state(&self, task: &TaskId) -> Result<Option<TaskState>> {
        let key = self.key(&format!("task:{task}"));
        let (state, attempt, done_attempt): (Option<String>, Option<u32>, Option<u32>) =
            redis::cmd("HMGET")
                .arg(&key)
                .arg("state")
                .arg("attempt")
                .arg("done_attempt")
                .query_async(&mut self.conn())
                .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let attempt = attempt.unwrap_or(0);
        Ok(Some(match state.as_str() {
            "queued" => TaskState::Queued,
            "leased" => TaskState::Leased { attempt },
            "done" => TaskState::Done {
                attempt: done_attempt.unwrap_or(attempt),
            },
            "failed" => TaskState::Failed,
            "cancelled" => TaskState::Cancelled,
            other => return Err(Self::corrupt(key, format!("bad task state {other}"))),
        }))
    }

    async fn tiles_done(&self, job: &JobId, scale: u32) -> Result<u32> {
        Ok(redis::cmd("SCARD")
            .arg(self.key(&format!("job:{job}:done:{scale}")))
            .query_async(&mut self.conn())
            .await?)
    }

    async fn lease(&self, _worker: &WorkerId) -> Result<Option<Lease>> {
        let reply: Option<(Vec<u8>, u32, i64, Vec<u8>)> = self
            .scripts
            .lease
            .arg(&self.prefix)
            .arg(self.config.lease_ttl_ms())
            .arg(self.config.max_attempts)
            .invoke_async(&mut self.conn())
            .await?;
        let Some((task, attempt, deadline_unix_ms, payload)) = reply else {
            return Ok(None);
        };
        Ok(Some(Lease {
            task: parse_task(&self.key("queue"), &task)?,
            attempt,
            deadline_unix_ms,
            payload,
        }))
    }

    async fn heartbeat(&self, task: &TaskId, attempt: u32) -> Result<Heartbeat> {
        let deadline: i64 = self
            .scripts
            .heartbeat
            .arg(&self.prefix)
            .arg(task.to_string())
            .arg(attempt)
            .arg(self.config.lease_ttl_ms())
            .arg(self.config.max_attempts)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(if deadline == 0 {
            Heartbeat::Stop
        } else {
            Heartbeat::KeepGoing {
                deadline_unix_ms: deadline,
            }
        })
    }

    async fn complete(&self, task: &TaskId, attempt: u32) -> Result<Completion> {
        let scale = match task.tile_id() {
            Some(_) => task.scale.to_string(),
            None => String::new(),
        };
        let outcome: String = self
            .scripts
            .complete
            .arg(&self.prefix)
            .arg(task.to_string())
            .arg(attempt)
            .arg(self.config.max_attempts)
            .arg(scale)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match outcome.as_str() {
            "accepted" => Completion::Accepted,
            "duplicate" => Completion::Duplicate,
            "cancelled" => Completion::Cancelled,
            "unknown" => Completion::Unknown,
            _ => Completion::Stale,
        })
    }

    async fn fail(
        &self,
        task: &TaskId,
        attempt: u32,
        reason: &str,
        why: GiveUp,
    ) -> Result<Failure> {
        let (outcome, reason): (String, String) = self
            .scripts
            .fail
            .arg(&self.prefix)
            .arg(task.to_string())
            .arg(attempt)
            .arg(self.config.max_attempts)
            .arg(reason)
            .arg(match why {
                GiveUp::Fatal => "fatal",
                GiveUp::Retryable => "retry",
                GiveUp::HandedBack => "handback",
            })
            .invoke_async(&mut self.conn())
            .await?;
        Ok(match outcome.as_str() {
            "requeued" => Failure::Requeued,
            "failed" => Failure::JobFailed(reason),
            _ => Failure::Stale,
        })
    }

    async fn expire_leases(&self) -> Result<Vec<Expiry>> {
        let reply: Vec<(Vec<u8>, u32, String)> = self
            .scripts
            .expire
            .arg(&self.prefix)
            .arg(self.config.max_attempts)
            .invoke_async(&mut self.conn())
            .await?;
        reply
            .into_iter()
            .map(|(task, attempt, reason)| {
                Ok(Expiry {
                    task: parse_task(&self.key("leases"), &task)?,
                    attempt,
                    job_failed: (!reason.is_empty()).then_some(reason),
                })
            })
            .collect()
    }

    async fn append_event(&self, job: &JobId, message: &str) -> Result<()> {
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut self.conn()).await?;
        let line = format!("{}\t{message}", secs * 1000 + micros / 1000);
        let _: i64 = redis::cmd("RPUSH")
            .arg(self.key(&format!("job:{job}:events")))
            .arg(line)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn events(&self, job: &JobId) -> Result<Vec<Event>> {
        let key = self.key(&format!("job:{job}:events"));
        let lines: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        lines
            .iter()
            .map(|line| {
                let (ms, message) = line
                    .split_once('\t')
                    .ok_or_else(|| Self::corrupt(key.clone(), "bad event"))?;
                Ok(Event {
                    unix_ms: ms
                        .parse()
                        .map_err(|_| Self::corrupt(key.clone(), "bad event"))?,
                    message: message.to_owned(),
                })
            })
            .collect()
    }

    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()> {
        let _: Value = self
            .scripts
            .touch_worker
            .arg(&self.prefix)
            .arg(worker.id.as_str())
            .arg(0)
            .arg(&worker.device)
            .arg(worker.memory_bytes)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn touch_worker(&self, worker: &WorkerId, tasks_done: u64) -> Result<()> {
        let _: Value = self
            .scripts
            .touch_worker
            .arg(&self.prefix)
            .arg(worker.as_str())
            .arg(tasks_done)
            .arg("")
            .arg("")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>> {
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key("workers"))
            .query_async(&mut self.conn())
            .await?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let key = self.key(&format!("worker:{id}"));
            let map: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut self.conn())
                .await?;
            let Ok(worker) = WorkerId::parse(&id) else {
                continue;
            };
            out.push(WorkerRecord {
                id: worker,
                device: text(&map, "device"),
                memory_bytes: field(&map, "memory_bytes", &key).unwrap_or(0),
                last_seen_unix_ms: field(&map, "last_seen_ms", &key).unwrap_or(0),
                tasks_done: field(&map, "tasks_done", &key).unwrap_or(0),
            });
        }
        Ok(out)
    }
}
