//! JobService: uploads, submissions, status, watching, cancelling and downloads.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deepstyle_proto::v1::{self as pb, job_service_server::JobService};
use deepstyle_proto::CHUNK_BYTES;
use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info_span, Instrument};

use super::error::status;
use super::{ServeOptions, ServiceError};
use crate::ids::JobId;
use crate::jobs::{to_proto, JobManager};

/// How often WatchJob re-reads a job when no change was announced, in milliseconds.
const WATCH_POLL_MS: u64 = 1_000;

/// Most jobs one ListJobs returns.
const MAX_LIST_JOBS: usize = 1_000;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The JobService implementation over a [`JobManager`].
#[derive(Debug, Clone)]
pub struct JobApi {
    manager: Arc<JobManager>,
    options: ServeOptions,
}

impl JobApi {
    /// Creates the service.
    pub fn new(manager: Arc<JobManager>, options: ServeOptions) -> Self {
        Self { manager, options }
    }
}

/// Splits bytes into a stream of chunks.
pub(super) fn chunks(bytes: Vec<u8>) -> BoxStream<pb::Chunk> {
    let parts: Vec<Result<pb::Chunk, Status>> = bytes
        .chunks(CHUNK_BYTES)
        .map(|c| Ok(pb::Chunk { data: c.to_vec() }))
        .collect();
    Box::pin(tokio_stream::iter(parts))
}

#[tonic::async_trait]
impl JobService for JobApi {
    async fn upload_image(
        &self,
        request: Request<Streaming<pb::UploadImageRequest>>,
    ) -> Result<Response<pb::UploadImageResponse>, Status> {
        let mut stream = request.into_inner();
        let mut bytes = Vec::new();
        while let Some(part) = stream.next().await {
            let part = part.map_err(|e| status(ServiceError::Transport(e)))?;
            if bytes.len() + part.data.len() > self.options.max_upload_bytes {
                return Err(status(ServiceError::TooLarge {
                    what: "image upload",
                    limit_bytes: self.options.max_upload_bytes,
                }));
            }
            bytes.extend_from_slice(&part.data);
        }
        let image = self
            .manager
            .upload_image(bytes)
            .instrument(info_span!("upload_image"))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UploadImageResponse {
            image: Some(pb::ImageRef {
                sha256: image.sha256,
                width: image.width,
                height: image.height,
            }),
        }))
    }

    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmitJobResponse>, Status> {
        let client = request
            .remote_addr()
            .map_or_else(|| "local".to_owned(), |addr| addr.ip().to_string());
        let spec = request.into_inner().spec.ok_or_else(|| {
            status(crate::jobs::JobError::InvalidArgument {
                field: "spec".into(),
                reason: "missing".into(),
            })
        })?;
        let job = self
            .manager
            .submit(spec, &client)
            .instrument(info_span!("submit_job"))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SubmitJobResponse {
            job: Some(to_proto(&job)),
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let id = JobId::parse(&request.into_inner().job_id).map_err(status)?;
        let job = self.manager.job(&id).await.map_err(status)?;
        Ok(Response::new(to_proto(&job)))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let limit = match request.into_inner().limit as usize {
            0 => 100,
            n => n.min(MAX_LIST_JOBS),
        };
        let jobs = self.manager.list(limit).await.map_err(status)?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.iter().map(to_proto).collect(),
        }))
    }

    type WatchJobStream = BoxStream<pb::JobEvent>;

    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = JobId::parse(&request.into_inner().job_id).map_err(status)?;
        let mut changes = self.manager.subscribe();
        let first = self.manager.job(&id).await.map_err(status)?;
        let manager = self.manager.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut last: Option<pb::Job> = None;
            let mut record = first;
            loop {
                let mut job = to_proto(&record);
                job.updated_unix_ms = 0;
                if last.as_ref() != Some(&job) {
                    let message = manager
                        .store()
                        .events(&id)
                        .await
                        .ok()
                        .and_then(|e| e.last().map(|e| e.message.clone()))
                        .unwrap_or_default();
                    let event = pb::JobEvent {
                        job: Some(to_proto(&record)),
                        message,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                    last = Some(job);
                }
                if !record.state.is_active() {
                    return;
                }
                let poll = tokio::time::sleep(Duration::from_millis(WATCH_POLL_MS));
                tokio::select! {
                    _ = poll => {}
                    _ = async {
                        while let Ok(changed) = changes.recv().await {
                            if changed == id { break; }
                        }
                    } => {}
                    _ = tx.closed() => return,
                }
                record = match manager.job(&id).await {
                    Ok(record) => record,
                    Err(e) => {
                        let _ = tx.send(Err(status(e))).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let id = JobId::parse(&request.into_inner().job_id).map_err(status)?;
        let job = self.manager.cancel(&id).await.map_err(status)?;
        Ok(Response::new(to_proto(&job)))
    }

    type DownloadResultStream = BoxStream<pb::Chunk>;

    async fn download_result(
        &self,
        request: Request<pb::DownloadResultRequest>,
    ) -> Result<Response<Self::DownloadResultStream>, Status> {
        let id = JobId::parse(&request.into_inner().job_id).map_err(status)?;
        let bytes = self.manager.result(&id).await.map_err(status)?;
        Ok(Response::new(chunks(bytes)))
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers = self.manager.workers().await.map_err(status)?;
        Ok(Response::new(pb::ListWorkersResponse {
            workers: workers
                .into_iter()
                .map(|w| pb::WorkerInfo {
                    worker_id: w.id.to_string(),
                    device: w.device,
                    memory_bytes: w.memory_bytes,
                    last_seen_unix_ms: w.last_seen_unix_ms,
                    tasks_done: w.tasks_done,
                })
                .collect(),
        }))
    }
}
