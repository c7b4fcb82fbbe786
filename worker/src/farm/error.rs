//! Errors of the worker process, and which of them a retry could cure.

use crate::error::EngineError;

/// Errors raised while serving tasks.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    /// The coordinator address is unusable.
    #[error("invalid coordinator address {address}: {reason}")]
    Address {
        /// The address as configured.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// A call to the coordinator failed.
    #[error("coordinator call {call} failed: {status}")]
    Rpc {
        /// The RPC's name.
        call: &'static str,
        /// What the coordinator or transport said.
        status: tonic::Status,
    },
    /// A task's input cannot be used (bad image, bad option, unknown layer).
    #[error("bad task input {what}: {reason}")]
    BadInput {
        /// The input, e.g. the blob key.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The style engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine thread exited.
    #[error("the engine thread is gone")]
    EngineGone,
}

impl FarmError {
    /// Returns whether another attempt (maybe on another worker) could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FarmError::BadInput { .. } => false,
            // The same inputs and seed diverge again on any worker.
            FarmError::Engine(e) => !matches!(
                e,
                EngineError::InvalidOption { .. }
                    | EngineError::UnknownLayer { .. }
                    | EngineError::ImageTooSmall { .. }
                    | EngineError::Diverged { .. }
            ),
            _ => true,
        }
    }

    pub(crate) fn rpc(call: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| FarmError::Rpc { call, status }
    }

    /// Returns the gRPC code when the error is a failed call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            FarmError::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

/// Result alias of the worker process.
pub type Result<T, E = FarmError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_final_and_transport_retryable() {
        let bad = FarmError::BadInput {
            what: "tile content".into(),
            reason: "not a png".into(),
        };
        assert!(!bad.is_retryable());
        let unknown = FarmError::Engine(EngineError::UnknownLayer {
            name: "relu9_9".into(),
        });
        assert!(!unknown.is_retryable());
        let diverged = FarmError::Engine(EngineError::Diverged {
            iteration: 3,
            loss: f64::NAN,
        });
        assert!(!diverged.is_retryable());
        let rpc = FarmError::Rpc {
            call: "FetchBlob",
            status: tonic::Status::unavailable("down"),
        };
        assert!(rpc.is_retryable());
        assert_eq!(rpc.code(), Some(tonic::Code::Unavailable));
    }
}
