//! An in-process coordinator on `127.0.0.1:0` over a real `redis-server` and a temp blob dir,
//! and a FAKE worker (a test double: no tensors) that returns each tile's content crop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deepstyle_coordinator::blob::{BlobStore, LocalBlobStore};
use deepstyle_coordinator::imaging::{self, BitDepth, DecodeLimits};
use deepstyle_coordinator::jobs::{JobManager, RequestLimits};
use deepstyle_coordinator::service::{connect, serve, ServeOptions};
use deepstyle_coordinator::stitch::crop;
use deepstyle_coordinator::store::{RedisStore, StoreConfig};
use deepstyle_coordinator::tiling::Rect;
use deepstyle_proto::v1::job_service_client::JobServiceClient;
use deepstyle_proto::v1::worker_service_client::WorkerServiceClient;
use deepstyle_proto::v1::{self as pb, complete_request::Part, task::Kind};
use deepstyle_proto::{CHUNK_BYTES, MAX_MESSAGE_BYTES};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::redis_server::{unique_prefix, RedisServer};

/// Redis, a key prefix and a blob directory that outlive coordinator restarts.
#[derive(Debug)]
pub struct Farm {
    pub redis: RedisServer,
    pub prefix: String,
    pub blob_dir: tempfile::TempDir,
    /// The blob store, when not a directory in `blob_dir`.
    pub blobs: Option<Arc<dyn BlobStore>>,
    pub lease_ttl: Duration,
}

/// A running coordinator; dropping `stop` (or sending on it) shuts it down.
#[derive(Debug)]
pub struct Coordinator {
    pub addr: SocketAddr,
    /// The CA to trust when the coordinator serves TLS.
    pub tls_ca: Option<Vec<u8>>,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Farm {
    pub fn new(test: &str, lease_ttl: Duration) -> Self {
        Self {
            redis: RedisServer::start(),
            prefix: unique_prefix(test),
            blob_dir: tempfile::tempdir().expect("a temp dir can be made"),
            blobs: None,
            lease_ttl,
        }
    }

    /// Starts a coordinator on a free loopback port.
    pub async fn start(&self) -> Coordinator {
        self.start_with(ServeOptions::default(), RequestLimits::default(), None)
            .await
    }

    /// Starts a coordinator with the given options and limits; `tls_ca` is what clients trust
    /// when `options.tls` is set.
    pub async fn start_with(
        &self,
        options: ServeOptions,
        limits: RequestLimits,
        tls_ca: Option<Vec<u8>>,
    ) -> Coordinator {
        let store = RedisStore::connect(
            self.redis.url(),
            &self.prefix,
            StoreConfig {
                lease_ttl: self.lease_ttl,
                max_attempts: 3,
            },
        )
        .await
        .expect("the test redis accepts connections");
        let blobs = match &self.blobs {
            Some(blobs) => blobs.clone(),
            None => Arc::new(LocalBlobStore::new(self.blob_dir.path()).unwrap()),
        };
        let manager = JobManager::with_request_limits(
            Arc::new(store),
            blobs,
            DecodeLimits::default(),
            limits,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve(listener, manager, options, shutdown)
                .await
                .expect("the coordinator serves until shutdown");
        });
        Coordinator {
            addr,
            tls_ca,
            stop: Some(stop),
            handle,
        }
    }
}

impl Coordinator {
    pub async fn channel(&self) -> Channel {
        let url = match self.tls_ca {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        };
        let endpoint = connect::endpoint(&url, self.tls_ca.as_deref()).unwrap();
        for _ in 0..50 {
            if let Ok(channel) = endpoint.connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("coordinator at {url} does not answer");
    }

    pub async fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel().await)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub async fn workers(&self) -> WorkerServiceClient<Channel> {
        WorkerServiceClient::new(self.channel().await)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Shuts the coordinator down and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.handle).await;
    }
}

/// Uploads bytes in chunks and returns the image ref.
pub async fn upload(jobs: &mut JobServiceClient<Channel>, bytes: &[u8]) -> pb::ImageRef {
    let parts: Vec<pb::UploadImageRequest> = bytes
        .chunks(CHUNK_BYTES)
        .map(|c| pb::UploadImageRequest { data: c.to_vec() })
        .collect();
    jobs.upload_image(tokio_stream::iter(parts))
        .await
        .expect("upload succeeds")
        .into_inner()
        .image
        .expect("upload returns an image ref")
}

/// Downloads a job's output.
/// Submits `spec` and returns the new job, panicking if the coordinator refuses it.
pub async fn submit(jobs: &mut JobServiceClient<Channel>, spec: pb::JobSpec) -> pb::Job {
    jobs.submit_job(pb::SubmitJobRequest { spec: Some(spec) })
        .await
        .expect("the job is accepted")
        .into_inner()
        .job
        .expect("the reply holds the job")
}

pub async fn download(jobs: &mut JobServiceClient<Channel>, job_id: &str) -> Vec<u8> {
    let mut stream = jobs
        .download_result(pb::DownloadResultRequest {
            job_id: job_id.into(),
        })
        .await
        .expect("download starts")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.expect("download chunk").data);
    }
    out
}

/// Fetches a blob through WorkerService.
pub async fn fetch(workers: &mut WorkerServiceClient<Channel>, key: &str) -> Vec<u8> {
    let mut stream = workers
        .fetch_blob(pb::FetchBlobRequest { key: key.into() })
        .await
        .expect("blob exists")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.expect("blob chunk").data);
    }
    out
}

/// FAKE WORKER (test double, no tensors): the result a worker would send for `task`.
///
/// A style target is a dummy byte string; a tile result is the content crop's inner rect as a
/// 16-bit PNG, so a job's output equals its content resized through the farm's steps.
pub async fn fake_result(workers: &mut WorkerServiceClient<Channel>, task: &pb::Task) -> Vec<u8> {
    match task.kind.as_ref().expect("a task has a kind") {
        Kind::StyleTarget(_) => b"dummy style target".to_vec(),
        Kind::Tile(tile) => {
            let content = fetch(workers, &tile.content_blob).await;
            let image = imaging::decode(&content, &DecodeLimits::default())
                .unwrap()
                .rgb;
            let r = tile.inner.expect("a tile task has an inner rect");
            let inner = crop(&image, Rect::new(r.x, r.y, r.width, r.height));
            imaging::encode_png(&inner, None, BitDepth::Sixteen).unwrap()
        }
    }
}

/// Sends a result in a Complete stream.
pub async fn complete(
    workers: &mut WorkerServiceClient<Channel>,
    worker_id: &str,
    task: &pb::Task,
    attempt: u32,
    bytes: Vec<u8>,
) -> Result<bool, tonic::Status> {
    let mut parts = vec![pb::CompleteRequest {
        part: Some(Part::Header(pb::CompleteHeader {
            worker_id: worker_id.into(),
            task_id: task.task_id.clone(),
            attempt,
        })),
    }];
    parts.extend(bytes.chunks(CHUNK_BYTES).map(|c| pb::CompleteRequest {
        part: Some(Part::Data(c.to_vec())),
    }));
    Ok(workers
        .complete(tokio_stream::iter(parts))
        .await?
        .into_inner()
        .accepted)
}

pub async fn register(workers: &mut WorkerServiceClient<Channel>) -> String {
    workers
        .register(pb::RegisterRequest {
            device: "fake".into(),
            memory_bytes: 0,
            hostname: "test".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .worker_id
}

pub async fn lease(
    workers: &mut WorkerServiceClient<Channel>,
    worker_id: &str,
    wait_ms: u32,
) -> Option<pb::Task> {
    workers
        .lease(pb::LeaseRequest {
            worker_id: worker_id.into(),
            wait_ms,
        })
        .await
        .expect("lease answers")
        .into_inner()
        .task
}

/// Runs the fake worker until no task comes within `idle_ms` or `max_tasks` are done.
pub async fn run_fake_worker(coordinator: &Coordinator, idle_ms: u32, max_tasks: usize) -> usize {
    let mut workers = coordinator.workers().await;
    let id = register(&mut workers).await;
    let mut done = 0;
    while done < max_tasks {
        let Some(task) = lease(&mut workers, &id, idle_ms).await else {
            break;
        };
        let bytes = fake_result(&mut workers, &task).await;
        assert!(complete(&mut workers, &id, &task, task.attempt, bytes)
            .await
            .unwrap());
        done += 1;
    }
    done
}

/// Waits until the job leaves the active states and returns it.
pub async fn wait_done(
    jobs: &mut JobServiceClient<Channel>,
    job_id: &str,
    timeout: Duration,
) -> pb::Job {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let job = jobs
            .get_job(pb::GetJobRequest {
                job_id: job_id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let state = job.state();
        if !matches!(state, pb::JobState::Queued | pb::JobState::Running) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {job_id} still {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns a deterministic, incompressible RGB noise image as an 8-bit PNG.
pub fn noise_png(width: u32, height: u32, seed: u64) -> (Vec<u8>, image::Rgb32FImage) {
    let mut state = seed;
    let image = image::Rgb32FImage::from_fn(width, height, |x, y| {
        let mut c = [0.0f32; 3];
        for v in &mut c {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            // Noise on a smooth gradient, so resizing is meaningful.
            let smooth = (x as f32 / width as f32 + y as f32 / height as f32) / 2.0;
            *v = (0.7 * smooth + 0.3 * ((z >> 40) as f32 / (1u64 << 24) as f32)).min(1.0);
        }
        image::Rgb(c)
    });
    let bytes = imaging::encode_png(&image, None, BitDepth::Eight).unwrap();
    let decoded = imaging::decode(&bytes, &DecodeLimits::default())
        .unwrap()
        .rgb;
    (bytes, decoded)
}

/// A spec for the content and style refs with small, tiled scales.
pub fn spec(content: &pb::ImageRef, style: &pb::ImageRef, size: u32) -> pb::JobSpec {
    pb::JobSpec {
        content_sha256: content.sha256.clone(),
        styles: vec![pb::StyleInput {
            image_sha256: style.sha256.clone(),
            weight: 1.0,
        }],
        size,
        iterations: 10,
        tile_size: 256,
        overlap: 32,
        halo: Some(48),
        base_size: 128,
        sixteen_bit: true,
        ..Default::default()
    }
}
