//! `deepstyle-coordinator`: serves JobService and WorkerService until SIGTERM or ctrl-c.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use deepstyle_coordinator::blob;
use deepstyle_coordinator::config::CoordinatorConfig;
use deepstyle_coordinator::imaging::DecodeLimits;
use deepstyle_coordinator::jobs::JobManager;
use deepstyle_coordinator::metrics;
use deepstyle_coordinator::service::{self, ServeOptions, TlsFiles};
use deepstyle_coordinator::shutdown;
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
    /// Object store for blobs instead of --blob-dir, e.g. s3://bucket/prefix (AWS_* variables
    /// give credentials, region and endpoint).
    #[arg(long)]
    blob_url: Option<String>,
    /// Lease time-to-live in seconds.
    #[arg(long)]
    lease_ttl_secs: Option<u64>,
    /// Leases per task before its job fails.
    #[arg(long)]
    max_attempts: Option<u32>,
    /// PEM certificate chain to serve TLS with.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint, e.g. 0.0.0.0:9090.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log JSON lines.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    deepstyle_coordinator::exit::report(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = CoordinatorConfig::load(args.config.as_deref())?;
    config.listen = args.listen.unwrap_or(config.listen);
    config.redis_url = args.redis_url.or(config.redis_url);
    config.blob_dir = args.blob_dir.unwrap_or(config.blob_dir);
    config.blob_url = args.blob_url.or(config.blob_url);
    config.lease_ttl_secs = args.lease_ttl_secs.unwrap_or(config.lease_ttl_secs);
    config.max_attempts = args.max_attempts.unwrap_or(config.max_attempts);
    config.tls_cert = args.tls_cert.or(config.tls_cert);
    config.tls_key = args.tls_key.or(config.tls_key);
    config.metrics_listen = args.metrics_listen.or(config.metrics_listen);
    config.log_json |= args.log_json;
    config.validate()?;

    deepstyle_coordinator::logging::init(config.log_json);

    let store: Arc<dyn Store> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisStore::connect(url, &config.key_prefix, config.store_config())
                .await
                .with_context(|| format!("failed to connect to redis at {}", redacted(url)))?,
        ),
        None => Arc::new(MemoryStore::new(config.store_config())),
    };
    let blobs = blob::open(config.blob_url.as_deref(), &config.blob_dir)
        .await
        .context("failed to open the blob store")?;
    let manager = JobManager::with_request_limits(
        store,
        blobs,
        DecodeLimits::default(),
        config.request_limits(),
    );
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert_pem: std::fs::read(cert)
                .with_context(|| format!("failed to read tls_cert {}", cert.display()))?,
            key_pem: std::fs::read(key)
                .with_context(|| format!("failed to read tls_key {}", key.display()))?,
        }),
        _ => None,
    };
    if let Some(addr) = config.metrics_listen {
        metrics::serve(addr).context("failed to start the metrics endpoint")?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let options = ServeOptions {
        max_upload_bytes: config.max_upload_bytes,
        token: config.token.clone(),
        tls,
        ..ServeOptions::default()
    };
    service::serve(listener, manager, options, shutdown::signal()).await?;
    Ok(())
}

/// Returns `url` with any password replaced, for error messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
