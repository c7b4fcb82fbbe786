//! The shutdown signal of the coordinator and worker processes: the future that their servers
//! run until, so that in-flight work is finished or handed back before they exit.

/// Resolves on the first ctrl-c or (on Unix) SIGTERM, the signal Kubernetes and compose send,
/// and logs which one came.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed at startup");
        let name = tokio::select! {
            _ = ctrl_c => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutdown signal received");
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        tracing::info!(signal = "ctrl-c", "shutdown signal received");
    }
}
