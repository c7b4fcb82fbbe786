//! WorkerService: registration, leases with long-poll, heartbeats, results and blob fetches.

use std::sync::Arc;
use std::time::Duration;

use deepstyle_proto::v1::{
    self as pb, complete_request::Part, worker_service_server::WorkerService,
};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info_span, Instrument};

use super::error::status;
use super::job_api::chunks;
use super::{ServeOptions, ServiceError};
use crate::ids::{TaskId, WorkerId};
use crate::jobs::{CompleteOutcome, JobError, JobManager};
use crate::store::GiveUp;

/// Longest long-poll a Lease may ask for, in milliseconds.
const MAX_LEASE_WAIT_MS: u32 = 60_000;

/// The WorkerService implementation over a [`JobManager`].
#[derive(Debug, Clone)]
pub struct WorkerApi {
    manager: Arc<JobManager>,
    options: ServeOptions,
}

impl WorkerApi {
    /// Creates the service.
    pub fn new(manager: Arc<JobManager>, options: ServeOptions) -> Self {
        Self { manager, options }
    }
}

fn task_id(value: &str) -> Result<TaskId, Status> {
    value.parse().map_err(status)
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        let id = self
            .manager
            .register_worker(&request.device, request.memory_bytes)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RegisterResponse {
            worker_id: id.to_string(),
            heartbeat_interval_ms: self.options.heartbeat_interval_ms,
        }))
    }

    async fn lease(
        &self,
        request: Request<pb::LeaseRequest>,
    ) -> Result<Response<pb::LeaseResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id).map_err(status)?;
        let wait = Duration::from_millis(u64::from(request.wait_ms.min(MAX_LEASE_WAIT_MS)));
        let task = self
            .manager
            .lease(&worker, wait)
            .instrument(info_span!("lease", worker_id = %worker))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LeaseResponse { task }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id).map_err(status)?;
        let task = task_id(&request.task_id)?;
        let deadline = self
            .manager
            .heartbeat(&worker, &task, request.attempt)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::HeartbeatResponse {
            keep_going: deadline.is_some(),
            deadline_unix_ms: deadline.unwrap_or(0),
        }))
    }

    async fn complete(
        &self,
        request: Request<Streaming<pb::CompleteRequest>>,
    ) -> Result<Response<pb::CompleteResponse>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.next().await {
            Some(Ok(pb::CompleteRequest {
                part: Some(Part::Header(header)),
            })) => header,
            Some(Err(e)) => return Err(status(ServiceError::Transport(e))),
            _ => {
                return Err(status(ServiceError::BadStream(
                    "the first message must be the header",
                )))
            }
        };
        let worker = WorkerId::parse(&header.worker_id).map_err(status)?;
        let task = task_id(&header.task_id)?;
        let mut bytes = Vec::new();
        while let Some(part) = stream.next().await {
            match part.map_err(|e| status(ServiceError::Transport(e)))?.part {
                Some(Part::Data(data)) => {
                    if bytes.len() + data.len() > self.options.max_upload_bytes {
                        return Err(status(ServiceError::TooLarge {
                            what: "task result",
                            limit_bytes: self.options.max_upload_bytes,
                        }));
                    }
                    bytes.extend_from_slice(&data);
                }
                _ => {
                    return Err(status(ServiceError::BadStream(
                        "only one header is allowed",
                    )))
                }
            }
        }
        let span = info_span!("complete", job_id = %task.job, task = %task, tile = ?task.tile_id(),
            worker_id = %worker, attempt = header.attempt);
        let outcome = self
            .manager
            .complete(&worker, &task, header.attempt, bytes)
            .instrument(span)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CompleteResponse {
            accepted: outcome == CompleteOutcome::Accepted,
        }))
    }

    async fn fail(
        &self,
        request: Request<pb::FailRequest>,
    ) -> Result<Response<pb::FailResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id).map_err(status)?;
        let task = task_id(&request.task_id)?;
        self.manager
            .fail(
                &worker,
                &task,
                request.attempt,
                &request.reason,
                match (request.handed_back, request.retryable) {
                    (true, _) => GiveUp::HandedBack,
                    (false, true) => GiveUp::Retryable,
                    (false, false) => GiveUp::Fatal,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::FailResponse {}))
    }

    type FetchBlobStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::Chunk, Status>> + Send + 'static>>;

    async fn fetch_blob(
        &self,
        request: Request<pb::FetchBlobRequest>,
    ) -> Result<Response<Self::FetchBlobStream>, Status> {
        let key = request.into_inner().key;
        let bytes = self
            .manager
            .blobs()
            .get(&key)
            .await
            .map_err(|e| status(JobError::from(e)))?
            .ok_or_else(|| status(JobError::Corrupt(format!("no blob {key}"))))?;
        Ok(Response::new(chunks(bytes)))
    }
}
