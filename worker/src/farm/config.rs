//! The worker's configuration: defaults, then a TOML file, then `DEEPSTYLE_WORKER_*`
//! environment variables, then command-line flags, validated once.

use std::path::PathBuf;

use deepstyle_coordinator::config::{load_layered, ConfigError};
use serde::Deserialize;

/// Prefix of the environment variables that override the file (e.g. `..._COORDINATOR`).
pub const ENV_PREFIX: &str = "DEEPSTYLE_WORKER";

/// Default long-poll of one Lease call, in milliseconds.
pub const LEASE_WAIT_MS: u32 = 10_000;

/// Default number of style targets kept in memory.
pub const STYLE_CACHE_ENTRIES: usize = 8;

/// Everything the worker process needs to start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// The coordinator's URL, e.g. `http://127.0.0.1:50051`.
    pub coordinator: String,
    /// Device: `auto`, `cpu` or `cuda:N`.
    pub device: String,
    /// CPU threads for tensor work, or `None` for libtorch's choice.
    pub threads: Option<i32>,
    /// The converted VGG19 weights, or `None` for the default lookup.
    pub weights: Option<PathBuf>,
    /// Heartbeat interval in milliseconds, or `None` for the coordinator's.
    pub heartbeat_ms: Option<u32>,
    /// How long one Lease call waits for work, in milliseconds.
    pub lease_wait_ms: u32,
    /// Style targets kept in memory, by blob key.
    pub style_cache_entries: usize,
    /// Device memory reported at registration, or `None` to detect it.
    pub memory_bytes: Option<u64>,
    /// Bearer token sent with every call, if the coordinator wants one.
    pub token: Option<String>,
    /// PEM CA certificate to trust for an `https://` coordinator (default: public roots).
    pub tls_ca: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint, if set.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Whether logs are JSON lines.
    pub log_json: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            coordinator: "http://127.0.0.1:50051".into(),
            device: "auto".into(),
            threads: None,
            weights: None,
            heartbeat_ms: None,
            lease_wait_ms: LEASE_WAIT_MS,
            style_cache_entries: STYLE_CACHE_ENTRIES,
            memory_bytes: None,
            token: None,
            tls_ca: None,
            metrics_listen: None,
            log_json: false,
        }
    }
}

impl WorkerConfig {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        load_layered(file, ENV_PREFIX)
    }

    /// Checks ranges that the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason| Err(ConfigError::invalid(setting, reason));
        if !(self.coordinator.starts_with("http://") || self.coordinator.starts_with("https://")) {
            return invalid("coordinator", "must start with http:// or https://");
        }
        if let Some(Err(reason)) = self.threads.map(crate::device::check_threads) {
            return Err(ConfigError::invalid("threads", &reason));
        }
        if self.heartbeat_ms.is_some_and(|h| h < 10) {
            return invalid("heartbeat_ms", "must be at least 10");
        }
        if self.lease_wait_ms == 0 || self.lease_wait_ms > 60_000 {
            return invalid("lease_wait_ms", "must be in 1..=60000");
        }
        if self.style_cache_entries == 0 {
            return invalid("style_cache_entries", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        WorkerConfig::default().validate().unwrap();
        let bad = WorkerConfig {
            coordinator: "127.0.0.1:50051".into(),
            ..Default::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("coordinator"), "{err}");
        let bad = WorkerConfig {
            threads: Some(0),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("threads"));
    }
}
