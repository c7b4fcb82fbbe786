//! The farm in one process, for `deepstyle render`: the coordinator's job manager over the
//! in-memory state store and a blob directory in a temporary folder, one worker on the local
//! engine, and the client, all talking gRPC over in-memory pipes.
//!
//! A render is therefore the very job a farm would run: the same planning, tile tasks,
//! stitching and encoding, the same engine code on each task. Only the transport and the
//! number of workers differ; the end-to-end tests hold the two outputs to 2/255.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use deepstyle_coordinator::blob::LocalBlobStore;
use deepstyle_coordinator::imaging::{self, DecodeLimits};
use deepstyle_coordinator::jobs::plan::{self, JobPlan};
use deepstyle_coordinator::jobs::JobManager;
use deepstyle_coordinator::service::connect::BearerToken;
use deepstyle_coordinator::service::in_process::serve_in_process;
use deepstyle_coordinator::service::{ServeError, ServeOptions};
use deepstyle_coordinator::store::{MemoryStore, StoreConfig};
use deepstyle_proto::v1 as pb;
use deepstyle_worker::farm::client::CoordinatorClient;
use deepstyle_worker::farm::engine::Engine;
use deepstyle_worker::farm::{runner, WorkerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{refusal, Client};
use crate::jobs_cmd::{check_outcome, download_bytes, watch as watch_job};
use crate::style_args::StyleArgs;
use crate::submit::upload_bytes;

/// A coordinator and one worker running in this process.
#[derive(Debug)]
pub struct EmbeddedFarm {
    client: Client,
    stop_worker: watch::Sender<bool>,
    stop_server: watch::Sender<bool>,
    server: JoinHandle<Result<(), ServeError>>,
    worker: JoinHandle<deepstyle_worker::farm::Result<()>>,
    _blobs: tempfile::TempDir,
}

impl EmbeddedFarm {
    /// Starts the coordinator and a worker on `engine`.
    pub fn start(engine: Engine) -> anyhow::Result<Self> {
        let blob_dir = tempfile::Builder::new()
            .prefix("deepstyle-render-")
            .tempdir()
            .context("failed to make a temporary blob directory")?;
        let blobs = LocalBlobStore::new(blob_dir.path()).context("failed to open the blob dir")?;
        let store = MemoryStore::new(StoreConfig::default());
        let manager = JobManager::new(Arc::new(store), Arc::new(blobs), DecodeLimits::default());

        let (stop_worker, worker_stopped) = watch::channel(false);
        let (stop_server, server_stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let (channel, server) = serve_in_process(
            manager,
            ServeOptions::default(),
            until_stopped(server_stopped),
        );
        let worker = tokio::spawn(runner::serve(
            WorkerConfig::default(),
            CoordinatorClient::from_channel(channel.clone(), BearerToken::default()),
            engine,
            until_stopped(worker_stopped),
        ));
        Ok(Self {
            client: Client::from_channel(channel, None),
            stop_worker,
            stop_server,
            server,
            worker,
            _blobs: blob_dir,
        })
    }

    /// Returns a client of the farm's JobService.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Stops the worker (which hands back a task it is running), then the coordinator.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_worker.send(true);
        self.worker
            .await
            .context("the worker task failed")?
            .context("the in-process worker was refused")?;
        let _ = self.stop_server.send(true);
        self.server
            .await
            .context("the coordinator task failed")?
            .context("the coordinator failed")?;
        Ok(())
    }
}

/// A finished render.
#[derive(Debug)]
pub struct Rendered {
    /// The job as it ended.
    pub job: pb::Job,
    /// The scales and tiles it ran.
    pub plan: JobPlan,
    /// The encoded output (PNG, at the spec's bit depth).
    pub png: Vec<u8>,
}

/// Reads an image file and checks that it decodes, naming its role and path when not.
fn read_image(path: &Path, role: &str) -> anyhow::Result<Vec<u8>> {
    let context = || format!("failed to read {role} image {}", path.display());
    let bytes = std::fs::read(path).with_context(context)?;
    imaging::decode(&bytes, &DecodeLimits::default()).with_context(context)?;
    Ok(bytes)
}

/// Renders `args` as a job on `farm`; `on_plan` receives the plan once the job is accepted.
pub async fn render(
    farm: &mut EmbeddedFarm,
    args: &StyleArgs,
    on_plan: impl FnOnce(&JobPlan),
) -> anyhow::Result<Rendered> {
    let content = read_image(&args.content, "content")?;
    let mut styles = Vec::with_capacity(args.styles.len());
    for path in &args.styles {
        styles.push((read_image(path, "style")?, path));
    }
    let init = match &args.init_image {
        Some(path) => Some(read_image(path, "init")?),
        None => None,
    };

    let client = farm.client();
    let content = upload_bytes(client, content, &args.content, "content").await?;
    let mut style_shas = Vec::with_capacity(styles.len());
    for (bytes, path) in styles {
        style_shas.push(upload_bytes(client, bytes, path, "style").await?);
    }
    let init = match (init, &args.init_image) {
        (Some(bytes), Some(path)) => Some(upload_bytes(client, bytes, path, "init").await?),
        _ => None,
    };
    let spec = args.spec(content, style_shas, init, "")?;
    let request = client.request(pb::SubmitJobRequest {
        spec: Some(spec.clone()),
    });
    let job = client
        .jobs
        .submit_job(request)
        .await
        .map_err(|status| anyhow::anyhow!(refusal(&status)))
        .context("the job was refused")?
        .into_inner()
        .job
        .context("the coordinator returned no job")?;
    let plan = plan::plan(&plan::with_defaults(spec), job.width, job.height)
        .context("the accepted job cannot be planned")?;
    on_plan(&plan);

    let job = watch_job(client, &job.job_id, false).await?;
    check_outcome(&job)?;
    let png = download_bytes(client, &job.job_id).await?;
    Ok(Rendered { job, plan, png })
}
