//! The gRPC services: JobService for clients and WorkerService for workers, on one port, with
//! grpc.health.v1 and server reflection.

use std::future::Future;
use std::sync::Arc;

use deepstyle_proto::v1::job_service_server::JobServiceServer;
use deepstyle_proto::v1::worker_service_server::WorkerServiceServer;
use deepstyle_proto::{FILE_DESCRIPTOR_SET, MAX_MESSAGE_BYTES};
use futures::{FutureExt, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Connected;
use tonic::transport::{Identity, ServerTlsConfig};
use tracing::info;

use crate::jobs::JobManager;

mod auth;
pub mod connect;
mod error;
pub mod in_process;
mod job_api;
mod worker_api;

pub use auth::BearerAuth;
pub use error::{status_code, ServiceError};
pub use job_api::JobApi;
pub use worker_api::WorkerApi;

/// Default largest image upload or task result, in bytes (1 GiB).
pub const MAX_UPLOAD_BYTES: usize = 1 << 30;

/// Default heartbeat interval told to workers, in milliseconds.
pub const HEARTBEAT_INTERVAL_MS: u32 = 5_000;

/// Knobs of the services.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest upload or result accepted, in bytes.
    pub max_upload_bytes: usize,
    /// Heartbeat interval told to workers, in milliseconds.
    pub heartbeat_interval_ms: u32,
    /// Bearer token every JobService and WorkerService call must carry, if set.
    pub token: Option<String>,
    /// Certificate chain and private key (PEM) to serve TLS with, if set.
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_upload_bytes: MAX_UPLOAD_BYTES,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            token: None,
            tls: None,
        }
    }
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error(transparent)]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Resuming jobs at startup failed.
    #[error("cannot resume jobs: {0}")]
    Reconcile(#[from] crate::jobs::JobError),
}

/// Resumes active jobs, then serves both services on `listener` until `shutdown` resolves,
/// running lease expiry in the background.
pub async fn serve(
    listener: TcpListener,
    manager: Arc<JobManager>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    info!(addr = ?listener.local_addr().ok(), "listening");
    let incoming = TcpListenerStream::new(listener);
    serve_incoming(incoming, manager, options, shutdown).await
}

/// Resumes active jobs, then serves both services on the connections `incoming` yields until
/// `shutdown` resolves, running lease expiry in the background.
pub async fn serve_incoming<IO, IE>(
    incoming: impl Stream<Item = Result<IO, IE>> + Send + 'static,
    manager: Arc<JobManager>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    manager.reconcile().await?;
    let shutdown = shutdown.shared();

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<JobServiceServer<JobApi>>().await;
    health.set_serving::<WorkerServiceServer<WorkerApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let auth = BearerAuth::new(options.token.as_deref());
    let jobs = JobServiceServer::new(JobApi::new(manager.clone(), options.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let workers = WorkerServiceServer::new(WorkerApi::new(manager.clone(), options.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let jobs = InterceptedService::new(jobs, auth.clone());
    let workers = InterceptedService::new(workers, auth);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }

    let maintenance = tokio::spawn(manager.run_maintenance(shutdown.clone()));
    let result = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(jobs)
        .add_service(workers)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    maintenance.abort();
    info!("shut down");
    Ok(result?)
}
