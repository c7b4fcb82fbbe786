//! `deepstyle-worker`: leases tasks from a coordinator and runs them until SIGTERM or ctrl-c.

use std::path::PathBuf;

use clap::Parser;
use deepstyle_coordinator::shutdown;
use deepstyle_worker::farm::{self, WorkerConfig};

/// Command-line flags; each overrides the file and the `DEEPSTYLE_WORKER_*` environment.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "DeepStyle worker: runs style tasks for a coordinator"
)]
struct Args {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The coordinator's URL, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    coordinator: Option<String>,
    /// Device: auto, cpu or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// CPU threads for tensor work.
    #[arg(long)]
    threads: Option<i32>,
    /// The converted VGG19 weights.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Heartbeat interval in milliseconds (default: the coordinator's).
    #[arg(long)]
    heartbeat_ms: Option<u32>,
    /// Bearer token sent with every call.
    #[arg(long, env = "DEEPSTYLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate to trust for an https:// coordinator.
    #[arg(long, env = "DEEPSTYLE_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint, e.g. 0.0.0.0:9091.
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
    let mut config = WorkerConfig::load(args.config.as_deref())?;
    config.coordinator = args.coordinator.unwrap_or(config.coordinator);
    config.device = args.device.unwrap_or(config.device);
    config.threads = args.threads.or(config.threads);
    config.weights = args.weights.or(config.weights);
    config.heartbeat_ms = args.heartbeat_ms.or(config.heartbeat_ms);
    config.token = args.token.or(config.token);
    config.tls_ca = args.tls_ca.or(config.tls_ca);
    config.metrics_listen = args.metrics_listen.or(config.metrics_listen);
    config.log_json |= args.log_json;
    config.validate()?;

    deepstyle_coordinator::logging::init(config.log_json);
    farm::run(config, shutdown::signal()).await
}
