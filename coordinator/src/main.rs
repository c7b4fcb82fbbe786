//! `deepstyle-coordinator`: serves JobService and WorkerService until SIGTERM or ctrl-c.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use deepstyle_coordinator::blob::LocalBlobStore;
use deepstyle_coordinator::config::CoordinatorConfig;
use deepstyle_coordinator::imaging::DecodeLimits;
use deepstyle_coordinator::jobs::JobManager;
use deepstyle_coordinator::service::{self, ServeOptions};
use deepstyle_coordinator::store::{MemoryStore, RedisStore, Store};

/// Command-line flags; each overrides the file and the environment.
#[derive(Debug, Parser)]
#[command(version, about = "DeepStyle coordinator")]
struct Args {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Redis URL (omit for the in-memory store).
    #[arg(long)]
    redis_url: Option<String>,
    /// Blob store directory.
    #[arg(long)]
    blob_dir: Option<PathBuf>,
    /// Lease time-to-live in seconds.
    #[arg(long)]
    lease_ttl_secs: Option<u64>,
    /// Leases per task before its job fails.
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Log JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = CoordinatorConfig::load(args.config.as_deref())?;
    config.listen = args.listen.unwrap_or(config.listen);
    config.redis_url = args.redis_url.or(config.redis_url);
    config.blob_dir = args.blob_dir.unwrap_or(config.blob_dir);
    config.lease_ttl_secs = args.lease_ttl_secs.unwrap_or(config.lease_ttl_secs);
    config.max_attempts = args.max_attempts.unwrap_or(config.max_attempts);
    config.log_json |= args.log_json;
    config.validate()?;

    deepstyle_coordinator::logging::init(config.log_json);

    let store: Arc<dyn Store> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisStore::connect(url, &config.key_prefix, config.store_config())
                .await
                .context("failed to connect to redis")?,
        ),
        None => Arc::new(MemoryStore::new(config.store_config())),
    };
    let blobs = Arc::new(LocalBlobStore::new(&config.blob_dir).context("failed to open blob dir")?);
    let manager = JobManager::new(store, blobs, DecodeLimits::default());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let options = ServeOptions {
        max_upload_bytes: config.max_upload_bytes,
        ..ServeOptions::default()
    };
    service::serve(listener, manager, options, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed at startup");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}
