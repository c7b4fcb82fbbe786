//! Talking to a coordinator: address and token from flags, environment or a config file, and
//! the exit codes scripts can rely on.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use deepstyle_coordinator::service::connect;
use deepstyle_proto::v1::job_service_client::JobServiceClient;
use deepstyle_proto::MAX_MESSAGE_BYTES;
use serde::Deserialize;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Exit code of a command that worked.
pub const EXIT_OK: u8 = 0;
/// Exit code of any other error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error (from clap).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the job failed.
pub const EXIT_JOB_FAILED: u8 = 3;
/// Exit code when the job was cancelled.
pub const EXIT_JOB_CANCELLED: u8 = 4;
/// Exit code when the job does not exist.
pub const EXIT_NOT_FOUND: u8 = 5;

/// Exit code of a render stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit codes, for the commands' `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 ok, 1 error, 2 usage, 3 job failed, \
                                   4 job cancelled, 5 job not found, 130 interrupted.";

/// Default coordinator address.
pub const DEFAULT_COORDINATOR: &str = "http://127.0.0.1:50051";

/// An error that ends the command with a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// The process exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl ExitError {
    /// Creates an error with an exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Returns the exit code for a command's error.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(exit) = error.downcast_ref::<ExitError>() {
        return exit.code;
    }
    match error.downcast_ref::<tonic::Status>() {
        Some(status) if status.code() == tonic::Code::NotFound => EXIT_NOT_FOUND,
        _ => EXIT_ERROR,
    }
}

/// Describes a refused call for people: the coordinator's message, led by the flag of the spec
/// field it names in a `google.rpc.BadRequest` detail (`--tile: invalid tile_size: ...`), else
/// followed by the gRPC code.
pub fn refusal(status: &tonic::Status) -> String {
    let flags: Vec<&str> = status
        .get_details_bad_request()
        .map(|bad| bad.field_violations)
        .unwrap_or_default()
        .iter()
        .filter_map(|violation| crate::style_args::flag_of_field(&violation.field))
        .collect();
    match flags.as_slice() {
        [] => format!("{} ({:?})", status.message(), status.code()),
        flags => format!("{}: {}", flags.join(", "), status.message()),
    }
}

/// Where the coordinator is; flags override the environment, which overrides the config file.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Coordinator URL [default: http://127.0.0.1:50051].
    #[arg(long, env = "DEEPSTYLE_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Bearer token sent with every call.
    #[arg(long, env = "DEEPSTYLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificate to trust for an https:// coordinator (default: public roots).
    #[arg(long, env = "DEEPSTYLE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// TOML file with `coordinator`, `token` and `tls_ca` keys.
    #[arg(long = "client-config", env = "DEEPSTYLE_CLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    coordinator: Option<String>,
    token: Option<String>,
    tls_ca: Option<PathBuf>,
}

/// A JobService client that sends the token with every call.
#[derive(Debug, Clone)]
pub struct Client {
    /// The generated client.
    pub jobs: JobServiceClient<Channel>,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Client {
    /// Connects as the flags, environment and config file say.
    pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.client_config {
            Some(path) => config::Config::builder()
                .add_source(config::File::from(path.as_path()).required(true))
                .build()
                .and_then(|c| c.try_deserialize())
                .with_context(|| format!("failed to read client config {}", path.display()))?,
            None => FileConfig::default(),
        };
        let address = args
            .coordinator
            .clone()
            .or(file.coordinator)
            .unwrap_or_else(|| DEFAULT_COORDINATOR.to_owned());
        let token = match args.token.clone().or(file.token) {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse()
                    .context("the token is not valid header text")?,
            ),
            None => None,
        };
        let ca_pem = match args.tls_ca.clone().or(file.tls_ca) {
            Some(path) => Some(
                std::fs::read(&path)
                    .with_context(|| format!("failed to read the CA file {}", path.display()))?,
            ),
            None => None,
        };
        let channel = connect::endpoint(&address, ca_pem.as_deref())?
            .connect()
            .await
            .with_context(|| format!("failed to connect to coordinator {address}"))?;
        Ok(Self::from_channel(channel, token))
    }

    /// Talks to a coordinator over an existing channel (e.g. an in-process one).
    pub fn from_channel(
        channel: Channel,
        token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Self {
        let jobs = JobServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { jobs, token }
    }

    /// Wraps a message in a request carrying the token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }
}

/// Returns a tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
