//! The worker's side of WorkerService: one typed call per RPC.

use std::time::Duration;

use deepstyle_coordinator::service::connect::{self, BearerToken};
use deepstyle_proto::v1::worker_service_client::WorkerServiceClient;
use deepstyle_proto::v1::{self as pb, complete_request::Part};
use deepstyle_proto::{CHUNK_BYTES, MAX_MESSAGE_BYTES};
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::error::{FarmError, Result};

/// Margin added to a long-poll's wait for the RPC deadline, in milliseconds.
const LEASE_MARGIN_MS: u64 = 5_000;

/// Deadline of the short calls, in seconds.
const CALL_TIMEOUT_SECS: u64 = 30;

/// A connection to the coordinator's WorkerService; reconnects by itself.
#[derive(Debug, Clone)]
pub struct CoordinatorClient {
    client: WorkerServiceClient<InterceptedService<Channel, BearerToken>>,
}

impl CoordinatorClient {
    /// Makes a lazy connection to `address` (e.g. `http://127.0.0.1:50051`, or `https://`
    /// trusting `ca_pem`), sending `token` with every call.
    pub fn connect(address: &str, token: Option<&str>, ca_pem: Option<&[u8]>) -> Result<Self> {
        let bad = |e: connect::ConnectError| FarmError::Address {
            address: address.to_owned(),
            reason: e.to_string(),
        };
        let endpoint = connect::endpoint(address, ca_pem)
            .map_err(bad)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let token = BearerToken::new(token).map_err(bad)?;
        Ok(Self::from_channel(endpoint.connect_lazy(), token))
    }

    /// Talks to the coordinator over an existing channel (e.g. an in-process one).
    pub fn from_channel(channel: Channel, token: BearerToken) -> Self {
        let client = WorkerServiceClient::with_interceptor(channel, token)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { client }
    }

    fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        request
    }

    /// Registers this worker and returns its id and the heartbeat interval in milliseconds.
    pub async fn register(&mut self, device: &str, memory_bytes: u64) -> Result<(String, u32)> {
        let hostname = std::env::var("HOSTNAME").unwrap_or_default();
        let message = pb::RegisterRequest {
            device: device.to_owned(),
            memory_bytes,
            hostname,
        };
        let response = self
            .client
            .register(Self::request(message, short()))
            .await
            .map_err(FarmError::rpc("Register"))?
            .into_inner();
        Ok((response.worker_id, response.heartbeat_interval_ms))
    }

    /// Long-polls for a task for up to `wait_ms`.
    pub async fn lease(&mut self, worker_id: &str, wait_ms: u32) -> Result<Option<pb::Task>> {
        let message = pb::LeaseRequest {
            worker_id: worker_id.to_owned(),
            wait_ms,
        };
        let timeout = Duration::from_millis(u64::from(wait_ms) + LEASE_MARGIN_MS);
        Ok(self
            .client
            .lease(Self::request(message, timeout))
            .await
            .map_err(FarmError::rpc("Lease"))?
            .into_inner()
            .task)
    }

    /// Extends a lease; returns false when the worker must stop.
    pub async fn heartbeat(
        &mut self,
        worker_id: &str,
        task: &pb::Task,
        iteration: u32,
    ) -> Result<bool> {
        let message = pb::HeartbeatRequest {
            worker_id: worker_id.to_owned(),
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            iteration,
        };
        Ok(self
            .client
            .heartbeat(Self::request(message, short()))
            .await
            .map_err(FarmError::rpc("Heartbeat"))?
            .into_inner()
            .keep_going)
    }

    /// Downloads a blob.
    pub async fn fetch_blob(&mut self, key: &str) -> Result<Vec<u8>> {
        let message = pb::FetchBlobRequest {
            key: key.to_owned(),
        };
        let mut stream = self
            .client
            .fetch_blob(Self::request(message, short()))
            .await
            .map_err(FarmError::rpc("FetchBlob"))?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend(chunk.map_err(FarmError::rpc("FetchBlob"))?.data);
        }
        Ok(bytes)
    }

    /// Uploads a task's result; returns false if the same attempt was already accepted.
    pub async fn complete(
        &mut self,
        worker_id: &str,
        task: &pb::Task,
        bytes: &[u8],
    ) -> Result<bool> {
        let mut parts = vec![pb::CompleteRequest {
            part: Some(Part::Header(pb::CompleteHeader {
                worker_id: worker_id.to_owned(),
                task_id: task.task_id.clone(),
                attempt: task.attempt,
            })),
        }];
        parts.extend(bytes.chunks(CHUNK_BYTES).map(|c| pb::CompleteRequest {
            part: Some(Part::Data(c.to_vec())),
        }));
        Ok(self
            .client
            .complete(Self::request(tokio_stream::iter(parts), short()))
            .await
            .map_err(FarmError::rpc("Complete"))?
            .into_inner()
            .accepted)
    }

    /// Reports that a task failed (`retryable` when it may succeed elsewhere), or with
    /// `handed_back` that this worker is stopping and gives it back unfinished.
    pub async fn fail(
        &mut self,
        worker_id: &str,
        task: &pb::Task,
        reason: &str,
        retryable: bool,
        handed_back: bool,
    ) -> Result<()> {
        let message = pb::FailRequest {
            worker_id: worker_id.to_owned(),
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            reason: reason.to_owned(),
            retryable,
            handed_back,
        };
        self.client
            .fail(Self::request(message, short()))
            .await
            .map_err(FarmError::rpc("Fail"))?;
        Ok(())
    }
}

fn short() -> Duration {
    Duration::from_secs(CALL_TIMEOUT_SECS)
}
