//! The coordinator's configuration: defaults, then a TOML file, then `DEEPSTYLE_COORDINATOR_*`
//! environment variables, then command-line flags, validated once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::jobs::RequestLimits;
use crate::store::{StoreConfig, LEASE_TTL_SECS, MAX_ATTEMPTS};

/// Prefix of the environment variables that override the file (e.g. `..._REDIS_URL`).
pub const ENV_PREFIX: &str = "DEEPSTYLE_COORDINATOR";

/// Everything the coordinator process needs to start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Redis URL, or `None` for the in-memory store (state lost on restart).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several farms can share one Redis.
    pub key_prefix: String,
    /// Directory of the blob store, unless `blob_url` is set.
    pub blob_dir: PathBuf,
    /// Object store for blobs instead of `blob_dir`, e.g. `s3://bucket/prefix`; credentials,
    /// region and endpoint come from the `AWS_*` environment variables.
    pub blob_url: Option<String>,
    /// Lease time-to-live without a heartbeat, in seconds.
    pub lease_ttl_secs: u64,
    /// Leases a task gets before it fails its job.
    pub max_attempts: u32,
    /// Largest upload or task result, in bytes.
    pub max_upload_bytes: usize,
    /// Largest uploaded image, in pixels.
    pub max_image_pixels: u64,
    /// Most iterations a job may ask for.
    pub max_iterations: u32,
    /// Most style images in one job.
    pub max_styles: u32,
    /// Most queued or running jobs per client address.
    pub max_active_jobs_per_client: u32,
    /// Bearer token required on every JobService and WorkerService call, if set.
    pub token: Option<String>,
    /// PEM certificate chain to serve TLS with (needs `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint (`/metrics`), if set.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether logs are JSON lines.
    pub log_json: bool,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        let limits = RequestLimits::default();
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 50051)),
            redis_url: None,
            key_prefix: "deepstyle".into(),
            blob_dir: PathBuf::from("blobs"),
            blob_url: None,
            lease_ttl_secs: LEASE_TTL_SECS,
            max_attempts: MAX_ATTEMPTS,
            max_upload_bytes: crate::service::MAX_UPLOAD_BYTES,
            max_image_pixels: limits.max_image_pixels,
            max_iterations: limits.max_iterations,
            max_styles: limits.max_styles,
            max_active_jobs_per_client: limits.max_active_jobs_per_client,
            token: None,
            tls_cert: None,
            tls_key: None,
            metrics_listen: None,
            log_json: false,
        }
    }
}

/// A configuration that cannot be used, with the setting named; the worker's too.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or parsed.
    #[error("cannot load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Names `setting` as out of range for `reason`.
    pub fn invalid(setting: &'static str, reason: &str) -> Self {
        Self::Invalid {
            setting,
            reason: reason.to_owned(),
        }
    }
}

/// Loads `T` from its serde defaults, then `file` (if given), then `<env_prefix>_*` variables,
/// the layering every DeepStyle binary uses before its flags.
pub fn load_layered<T: DeserializeOwned>(
    file: Option<&std::path::Path>,
    env_prefix: &str,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    builder = builder.add_source(config::Environment::with_prefix(env_prefix).try_parsing(true));
    Ok(builder.build()?.try_deserialize()?)
}

impl CoordinatorConfig {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        load_layered(file, ENV_PREFIX)
    }

    /// Checks ranges that the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason| Err(ConfigError::invalid(setting, reason));
        if self.lease_ttl_secs == 0 || self.lease_ttl_secs > 3600 {
            return invalid("lease_ttl_secs", "must be in 1..=3600");
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return invalid("max_attempts", "must be in 1..=100");
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return invalid("key_prefix", "must be non-empty without spaces");
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return invalid(
                    "redis_url",
                    "must start with redis://, rediss:// or unix://",
                );
            }
        }
        if self.max_upload_bytes < 1024 {
            return invalid("max_upload_bytes", "must be at least 1024");
        }
        for (setting, value) in [
            ("max_image_pixels", self.max_image_pixels),
            ("max_iterations", u64::from(self.max_iterations)),
            ("max_styles", u64::from(self.max_styles)),
            (
                "max_active_jobs_per_client",
                u64::from(self.max_active_jobs_per_client),
            ),
        ] {
            if value == 0 {
                return invalid(setting, "must be at least 1");
            }
        }
        if let Some(token) = &self.token {
            let printable = token.bytes().all(|b| b.is_ascii_graphic());
            if token.is_empty() || !printable {
                return invalid("token", "must be non-empty printable ASCII without spaces");
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert", "tls_cert and tls_key go together");
        }
        Ok(())
    }

    /// Returns the limits on client requests.
    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            max_image_pixels: self.max_image_pixels,
            max_iterations: self.max_iterations,
            max_styles: self.max_styles,
            max_active_jobs_per_client: self.max_active_jobs_per_client,
        }
    }

    /// Returns the lease rules.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            lease_ttl: Duration::from_secs(self.lease_ttl_secs),
            max_attempts: self.max_attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        CoordinatorConfig::default().validate().unwrap();
        let bad = CoordinatorConfig {
            max_attempts: 0,
            ..Default::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("max_attempts"), "{err}");
        let bad = CoordinatorConfig {
            redis_url: Some("localhost:6379".into()),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis_url"));
        let bad = CoordinatorConfig {
            token: Some("two words".into()),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("token"));
        let bad = CoordinatorConfig {
            tls_key: Some("key.pem".into()),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("tls_cert"));
    }
}
