//! Lease throughput of the coordinator alone: a HARNESS, not a worker (no tensors, no images).
//!
//! Starts a coordinator on `127.0.0.1:0` over the in-memory store (or Redis with
//! `--redis-url`), plants one job with `--tiles` tile tasks straight in the store, and runs
//! `--clients` simulated workers over loopback gRPC that lease and complete tasks with a tiny
//! style-target payload until the queue is empty. Reports tiles per second and the lease
//! round-trip latency (p50, p99). Run with `cargo run --release --example bench_leases`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use deepstyle_coordinator::blob::LocalBlobStore;
use deepstyle_coordinator::ids::{JobId, TaskId};
use deepstyle_coordinator::imaging::DecodeLimits;
use deepstyle_coordinator::jobs::JobManager;
use deepstyle_coordinator::service::{serve, ServeOptions};
use deepstyle_coordinator::store::{MemoryStore, NewJob, NewTask, RedisStore, Store, StoreConfig};
use deepstyle_proto::v1::worker_service_client::WorkerServiceClient;
use deepstyle_proto::v1::{self as pb, complete_request::Part};

/// Flags of the benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Simulated workers.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Tile tasks to run.
    #[arg(long, default_value_t = 20_000)]
    tiles: u32,
    /// Redis to use instead of the in-memory store (a fresh key prefix is used).
    #[arg(long)]
    redis_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = StoreConfig::default();
    let store: Arc<dyn Store> = match &args.redis_url {
        Some(url) => {
            let prefix = format!("bench-{}", std::process::id());
            Arc::new(
                RedisStore::connect(url, &prefix, config)
                    .await
                    .context("redis")?,
            )
        }
        None => Arc::new(MemoryStore::new(config)),
    };
    // Tasks are "style targets" of scales 1..=N so that a completion needs no image check.
    // The planted job is a 1x1 one-scale job: each completion advances it for real, which only
    // queues its own scale-0 style target behind the benchmark's tasks.
    let job = JobId::random();
    let spec = deepstyle_coordinator::jobs::plan::with_defaults(pb::JobSpec::default());
    store
        .create_job(&NewJob {
            id: job.clone(),
            spec: prost::Message::encode_to_vec(&spec),
            width: 1,
            height: 1,
            num_scales: 1,
        })
        .await?;
    let tasks: Vec<NewTask> = (0..args.tiles)
        .map(|i| {
            let id = TaskId::style(&job, i + 1);
            let task = pb::Task {
                task_id: id.to_string(),
                job_id: job.to_string(),
                scale: i + 1,
                ..Default::default()
            };
            NewTask {
                id,
                payload: prost::Message::encode_to_vec(&task),
            }
        })
        .collect();
    for batch in tasks.chunks(1000) {
        store.enqueue(&job, batch).await?;
    }

    let blob_dir = tempfile::tempdir()?;
    let blobs = Arc::new(LocalBlobStore::new(blob_dir.path())?);
    let manager = JobManager::new(store, blobs, DecodeLimits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, manager, ServeOptions::default(), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let url = format!("http://{addr}");
        clients.push(tokio::spawn(async move {
            let mut client = WorkerServiceClient::connect(url).await?;
            let worker_id = client
                .register(pb::RegisterRequest::default())
                .await?
                .into_inner()
                .worker_id;
            let (mut latencies, mut accepted) = (Vec::new(), 0u32);
            loop {
                let t = Instant::now();
                let lease = client
                    .lease(pb::LeaseRequest {
                        worker_id: worker_id.clone(),
                        wait_ms: 0,
                    })
                    .await?
                    .into_inner();
                latencies.push(t.elapsed());
                let Some(task) = lease.task else {
                    return anyhow::Ok((latencies, accepted));
                };
                let parts = vec![
                    pb::CompleteRequest {
                        part: Some(Part::Header(pb::CompleteHeader {
                            worker_id: worker_id.clone(),
                            task_id: task.task_id,
                            attempt: task.attempt,
                        })),
                    },
                    pb::CompleteRequest {
                        part: Some(Part::Data(vec![0; 64])),
                    },
                ];
                if client
                    .complete(tokio_stream::iter(parts))
                    .await?
                    .into_inner()
                    .accepted
                {
                    accepted += 1;
                }
            }
        }));
    }
    let (mut latencies, mut accepted) = (Vec::new(), 0);
    for client in clients {
        let (l, a) = client.await??;
        latencies.extend(l);
        accepted += a;
    }
    anyhow::ensure!(
        accepted >= args.tiles,
        "only {accepted} of {} tasks completed",
        args.tiles
    );
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{} tiles, {} clients, {}: {:.0} tiles/s, lease p50 {:?}, p99 {:?}",
        accepted,
        args.clients,
        if args.redis_url.is_some() {
            "redis"
        } else {
            "memory"
        },
        f64::from(accepted) / secs,
        pct(0.5),
        pct(0.99)
    );
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
