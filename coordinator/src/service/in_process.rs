//! The services over in-memory pipes instead of TCP, for `deepstyle render`: the same gRPC
//! stack, state store and workers as the farm, with no socket anywhere.

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{serve_incoming, ServeError, ServeOptions};
use crate::jobs::JobManager;

/// Bytes buffered in each direction of one in-memory connection.
const PIPE_BUFFER_BYTES: usize = 1 << 20;

/// Connections waiting for the server to accept them.
const BACKLOG: usize = 16;

/// Serves both services in this process until `shutdown` resolves, and returns a channel to
/// them with the server's task; every connection the channel opens is a fresh in-memory pipe.
pub fn serve_in_process(
    manager: Arc<JobManager>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (Channel, JoinHandle<Result<(), ServeError>>) {
    let (connections, accepted) = mpsc::channel::<DuplexStream>(BACKLOG);
    let incoming = futures::StreamExt::map(ReceiverStream::new(accepted), Ok::<_, std::io::Error>);
    let server = tokio::spawn(serve_incoming(incoming, manager, options, shutdown));
    let connector = tower::service_fn(move |_: Uri| {
        let connections = connections.clone();
        async move {
            let (client, server) = tokio::io::duplex(PIPE_BUFFER_BYTES);
            connections.send(server).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the coordinator stopped")
            })?;
            Ok::<_, std::io::Error>(TokioIo::new(client))
        }
    });
    // The URI is never resolved: the connector above ignores it.
    let channel =
        Endpoint::from_static("http://in-process.invalid").connect_with_connector_lazy(connector);
    (channel, server)
}
