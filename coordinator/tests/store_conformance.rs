//! One conformance suite for both stores: each `check_*` function states a rule of the
//! [`Store`] contract and runs against [`MemoryStore`] (paused tokio time) and [`RedisStore`]
//! (a real `redis-server`, real time, short leases).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis_server::{unique_prefix, RedisServer};
use deepstyle_coordinator::ids::{JobId, TaskId, TileId, WorkerId};
use deepstyle_coordinator::store::{
    Completion, Failure, GiveUp, Heartbeat, JobState, MemoryStore, NewJob, NewTask, RedisStore,
    Store, StoreConfig, TaskState,
};

/// Lease time of the suite; Redis tests sleep past it in real time.
const TTL: Duration = Duration::from_millis(300);

/// Sleeps until any lease taken before this call has expired.
async fn sleep_past_ttl() {
    tokio::time::sleep(TTL + Duration::from_millis(150)).await;
}

fn config(max_attempts: u32) -> StoreConfig {
    StoreConfig {
        lease_ttl: TTL,
        max_attempts,
    }
}

async fn new_job(store: &dyn Store, tiles: u32) -> (JobId, Vec<TaskId>) {
    let id = JobId::random();
    store
        .create_job(&NewJob {
            id: id.clone(),
            spec: b"spec".to_vec(),
            width: 64,
            height: 48,
            num_scales: 1,
        })
        .await
        .unwrap();
    let tasks: Vec<TaskId> = (0..tiles)
        .map(|t| TaskId::tile(&id, 0, TileId(t)))
        .collect();
    let new: Vec<NewTask> = tasks
        .iter()
        .map(|t| NewTask {
            id: t.clone(),
            payload: t.to_string().into_bytes(),
        })
        .collect();
    assert_eq!(store.enqueue(&id, &new).await.unwrap(), tiles as usize);
    assert_eq!(
        store.enqueue(&id, &new).await.unwrap(),
        0,
        "enqueue is idempotent"
    );
    (id, tasks)
}

fn worker() -> WorkerId {
    WorkerId::parse("w-test").unwrap()
}

async fn check_lease_complete_flow(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 2).await;
    assert_eq!(
        store.job(&job).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(store.queue_len().await.unwrap(), 2);
    let first = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(store.queue_len().await.unwrap(), 1);
    assert_eq!((first.task.clone(), first.attempt), (tasks[0].clone(), 1));
    assert_eq!(first.payload, tasks[0].to_string().into_bytes());
    assert_eq!(
        store.job(&job).await.unwrap().unwrap().state,
        JobState::Running
    );
    let second = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(second.task, tasks[1]);
    assert!(store.lease(&worker()).await.unwrap().is_none());

    assert_eq!(
        store.complete(&first.task, 1).await.unwrap(),
        Completion::Accepted
    );
    assert_eq!(store.tiles_done(&job, 0).await.unwrap(), 1);
    assert_eq!(
        store.task_state(&first.task).await.unwrap(),
        Some(TaskState::Done { attempt: 1 })
    );
    store.set_progress(&job, 0, 2).await.unwrap();
    let record = store.job(&job).await.unwrap().unwrap();
    assert_eq!((record.tiles_done, record.tiles_total), (1, 2));
    assert!(store.succeed_job(&job).await.unwrap());
    assert!(
        !store.succeed_job(&job).await.unwrap(),
        "a finished job stays finished"
    );
    assert_eq!(store.active_jobs().await.unwrap(), Vec::<JobId>::new());
    let events = store.events(&job).await.unwrap();
    assert_eq!(events.first().unwrap().message, "queued");
    assert_eq!(events.last().unwrap().message, "succeeded");
}

async fn check_expiry_releases_with_next_attempt(store: Arc<dyn Store>) {
    let (_, tasks) = new_job(&*store, 1).await;
    let first = store.lease(&worker()).await.unwrap().unwrap();
    assert!(matches!(
        store.heartbeat(&tasks[0], 1).await.unwrap(),
        Heartbeat::KeepGoing { deadline_unix_ms } if deadline_unix_ms >= first.deadline_unix_ms
    ));
    sleep_past_ttl().await;
    let expired = store.expire_leases().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].attempt, expired[0].job_failed.clone()),
        (1, None)
    );
    let again = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!((again.task.clone(), again.attempt), (tasks[0].clone(), 2));
    assert!(again.deadline_unix_ms > first.deadline_unix_ms);
    assert_eq!(
        store.heartbeat(&tasks[0], 1).await.unwrap(),
        Heartbeat::Stop
    );
}

async fn check_stale_completion_refused(store: Arc<dyn Store>) {
    let (_, tasks) = new_job(&*store, 1).await;
    store.lease(&worker()).await.unwrap().unwrap();
    sleep_past_ttl().await;
    // The lease expires inside the next lease call, which hands out attempt 2.
    let again = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(again.attempt, 2);
    assert_eq!(
        store.complete(&tasks[0], 1).await.unwrap(),
        Completion::Stale
    );
    assert_eq!(
        store.complete(&tasks[0], 2).await.unwrap(),
        Completion::Accepted
    );
    assert_eq!(
        store.complete(&tasks[0], 1).await.unwrap(),
        Completion::Stale
    );
    assert_eq!(
        store.complete(&tasks[0], 3).await.unwrap(),
        Completion::Stale
    );
}

async fn check_duplicate_completion_idempotent(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 1).await;
    store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(
        store.complete(&tasks[0], 1).await.unwrap(),
        Completion::Accepted
    );
    assert_eq!(
        store.complete(&tasks[0], 1).await.unwrap(),
        Completion::Duplicate
    );
    assert_eq!(store.tiles_done(&job, 0).await.unwrap(), 1, "counted once");
    let unknown = TaskId::tile(&job, 5, TileId(9));
    assert_eq!(
        store.complete(&unknown, 1).await.unwrap(),
        Completion::Unknown
    );
}

async fn check_retry_limit_fails_job(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 2).await;
    for attempt in 1..=2 {
        let lease = store.lease(&worker()).await.unwrap().unwrap();
        assert_eq!(
            (lease.task.clone(), lease.attempt),
            (tasks[0].clone(), attempt)
        );
        sleep_past_ttl().await;
    }
    let expired = store.expire_leases().await.unwrap();
    assert_eq!(expired.len(), 1);
    let reason = expired[0]
        .job_failed
        .clone()
        .expect("the second expiry fails the job");
    assert!(
        reason.contains("lease expired after 2 attempts"),
        "{reason}"
    );
    let record = store.job(&job).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.error, reason);
    assert!(
        store.lease(&worker()).await.unwrap().is_none(),
        "the job's other tile is dropped"
    );
    assert_eq!(
        store.task_state(&tasks[0]).await.unwrap(),
        Some(TaskState::Failed)
    );
    assert_eq!(
        store.task_state(&tasks[1]).await.unwrap(),
        Some(TaskState::Cancelled)
    );
}

async fn check_worker_failure(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 1).await;
    store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(
        store
            .fail(&tasks[0], 1, "oom", GiveUp::Retryable)
            .await
            .unwrap(),
        Failure::Requeued
    );
    assert_eq!(
        store
            .fail(&tasks[0], 1, "oom", GiveUp::Retryable)
            .await
            .unwrap(),
        Failure::Stale
    );
    let again = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(again.attempt, 2);
    let Failure::JobFailed(reason) = store
        .fail(&tasks[0], 2, "bad input", GiveUp::Fatal)
        .await
        .unwrap()
    else {
        panic!("a non-retryable failure fails the job");
    };
    assert!(reason.contains("bad input"));
    assert_eq!(
        store.job(&job).await.unwrap().unwrap().state,
        JobState::Failed
    );
}

/// Stopping workers (scale-in, rolling updates) may hand a task back any number of times;
/// only failures and expiries use up its attempts (max_attempts 2 here).
async fn check_hand_back_uses_no_attempt(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 1).await;
    for attempt in 1..=3 {
        let lease = store.lease(&worker()).await.unwrap().unwrap();
        assert_eq!(lease.attempt, attempt);
        let handed = store
            .fail(
                &tasks[0],
                attempt,
                "worker shutting down",
                GiveUp::HandedBack,
            )
            .await
            .unwrap();
        assert_eq!(handed, Failure::Requeued, "hand-back {attempt}");
    }
    let lease = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(lease.attempt, 4);
    let failed = store.fail(&tasks[0], 4, "oom", GiveUp::Retryable).await;
    assert_eq!(
        failed.unwrap(),
        Failure::Requeued,
        "the first failed attempt"
    );
    assert_eq!(store.lease(&worker()).await.unwrap().unwrap().attempt, 5);
    sleep_past_ttl().await;
    let expired = store.expire_leases().await.unwrap();
    let reason = expired[0]
        .job_failed
        .clone()
        .expect("the second failed attempt (an expiry) fails the job");
    assert!(reason.contains("after 5 attempts"), "{reason}");
    assert_eq!(
        store.job(&job).await.unwrap().unwrap().state,
        JobState::Failed
    );
}

async fn check_cancel_mid_job(store: Arc<dyn Store>) {
    let (job, tasks) = new_job(&*store, 3).await;
    let (other, other_tasks) = new_job(&*store, 1).await;
    let leased = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(leased.task, tasks[0]);
    assert!(store.cancel_job(&job).await.unwrap());
    assert!(!store.cancel_job(&job).await.unwrap());
    assert_eq!(
        store.heartbeat(&tasks[0], 1).await.unwrap(),
        Heartbeat::Stop
    );
    assert_eq!(
        store.complete(&tasks[0], 1).await.unwrap(),
        Completion::Cancelled
    );
    let next = store.lease(&worker()).await.unwrap().unwrap();
    assert_eq!(
        next.task, other_tasks[0],
        "no more tiles of the cancelled job"
    );
    assert!(store.lease(&worker()).await.unwrap().is_none());
    assert_eq!(
        store.job(&job).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(store.enqueue(&job, &[]).await.unwrap(), 0);
    assert_eq!(store.active_jobs().await.unwrap(), vec![other]);
}

async fn check_workers_and_listing(store: Arc<dyn Store>) {
    let (a, _) = new_job(&*store, 0).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (b, _) = new_job(&*store, 0).await;
    let ids: Vec<JobId> = store
        .list_jobs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job.id)
        .collect();
    assert_eq!(ids, vec![b, a]);
    store
        .register_worker(&deepstyle_coordinator::store::WorkerRecord {
            id: worker(),
            device: "cuda:0".into(),
            memory_bytes: 42,
            last_seen_unix_ms: 0,
            tasks_done: 0,
        })
        .await
        .unwrap();
    store.touch_worker(&worker(), 2).await.unwrap();
    let workers = store.list_workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (workers[0].device.as_str(), workers[0].memory_bytes),
        ("cuda:0", 42)
    );
    assert_eq!(workers[0].tasks_done, 2);
    assert!(workers[0].last_seen_unix_ms > 0);
}

macro_rules! conformance {
    ($($name:ident: $check:ident, $attempts:expr;)*) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(start_paused = true)]
                async fn $name() {
                    $check(Arc::new(MemoryStore::new(config($attempts)))).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let server = RedisServer::start();
                    let store = RedisStore::connect(
                        server.url(),
                        &unique_prefix(stringify!($name)),
                        config($attempts),
                    )
                    .await
                    .expect("the test redis accepts connections");
                    $check(Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance! {
    lease_complete_flow: check_lease_complete_flow, 3;
    expiry_releases_with_next_attempt: check_expiry_releases_with_next_attempt, 3;
    stale_completion_refused: check_stale_completion_refused, 3;
    duplicate_completion_idempotent: check_duplicate_completion_idempotent, 3;
    retry_limit_fails_job: check_retry_limit_fails_job, 2;
    worker_failure: check_worker_failure, 3;
    hand_back_uses_no_attempt: check_hand_back_uses_no_attempt, 2;
    cancel_mid_job: check_cancel_mid_job, 3;
    workers_and_listing: check_workers_and_listing, 3;
}
