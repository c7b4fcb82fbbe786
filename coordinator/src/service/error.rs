//! The errors of the gRPC services and their one mapping to `tonic::Code`.

use tonic_types::{ErrorDetails, StatusExt};

use crate::ids::InvalidId;
use crate::jobs::JobError;
use crate::store::StoreError;

/// Errors raised while serving an RPC.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The job manager refused or failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// An id in the request is malformed.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The request stream is malformed (e.g. a Complete stream without its header).
    #[error("bad request stream: {0}")]
    BadStream(&'static str),
    /// An upload or result is larger than allowed.
    #[error("{what} exceeds {limit_bytes} bytes")]
    TooLarge {
        /// What was being received.
        what: &'static str,
        /// The limit.
        limit_bytes: usize,
    },
    /// The client's stream broke.
    #[error("stream error: {0}")]
    Transport(#[from] tonic::Status),
}

/// Returns the gRPC code for an error; the only place where codes are chosen.
pub fn status_code(err: &ServiceError) -> tonic::Code {
    use tonic::Code;
    match err {
        ServiceError::InvalidId(_) | ServiceError::BadStream(_) => Code::InvalidArgument,
        ServiceError::TooLarge { .. } => Code::ResourceExhausted,
        ServiceError::Transport(status) => status.code(),
        ServiceError::Job(job) => match job {
            JobError::InvalidArgument { .. } | JobError::InvalidId(_) | JobError::Image { .. } => {
                Code::InvalidArgument
            }
            JobError::JobNotFound(_) | JobError::TaskNotFound(_) => Code::NotFound,
            JobError::LimitExceeded { .. } => Code::ResourceExhausted,
            JobError::StaleAttempt { .. } | JobError::NotReady { .. } => Code::FailedPrecondition,
            JobError::JobOver(_) => Code::Aborted,
            JobError::Store(StoreError::JobNotFound(_)) => Code::NotFound,
            JobError::Store(StoreError::JobExists(_)) => Code::AlreadyExists,
            JobError::Store(_) | JobError::Blob(_) => Code::Unavailable,
            JobError::Stitch(_) | JobError::Corrupt(_) | JobError::Internal(_) => Code::Internal,
        },
    }
}

impl From<ServiceError> for tonic::Status {
    /// The status of an error; a refused spec field also travels as a `google.rpc.BadRequest`
    /// field violation, so that clients can tell which field (the CLI names its flag).
    fn from(err: ServiceError) -> Self {
        let code = status_code(&err);
        match &err {
            ServiceError::Job(JobError::InvalidArgument { field, reason }) => {
                let details = ErrorDetails::with_bad_request_violation(field, reason);
                tonic::Status::with_error_details(code, err.to_string(), details)
            }
            _ => tonic::Status::new(code, err.to_string()),
        }
    }
}

/// Converts a job-manager error straight to a status.
pub(super) fn status(err: impl Into<ServiceError>) -> tonic::Status {
    err.into().into()
}
