//! Bearer-token checks on JobService and WorkerService; health and reflection stay open so
//! probes and grpcurl work without the secret.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Refuses calls whose `authorization` header is not `Bearer <token>`, when a token is set.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("enabled", &self.expected.is_some())
            .finish()
    }
}

impl BearerAuth {
    /// Checks calls against `token`, or lets every call through when it is `None`.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            expected: token.map(|t| format!("Bearer {t}").into_bytes().into()),
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if bool::from(presented.ct_eq(expected)) {
            Ok(request)
        } else if presented.is_empty() {
            Err(Status::unauthenticated("missing bearer token"))
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(auth: &mut BearerAuth, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        auth.call(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn only_the_configured_token_passes() {
        let mut auth = BearerAuth::new(Some("s3cret"));
        assert_eq!(call(&mut auth, Some("Bearer s3cret")), Ok(()));
        let refused = Err(tonic::Code::Unauthenticated);
        assert_eq!(call(&mut auth, None), refused);
        assert_eq!(call(&mut auth, Some("Bearer wrong")), refused);
        assert_eq!(call(&mut auth, Some("s3cret")), refused);
        assert_eq!(call(&mut auth, Some("Bearer s3cret2")), refused);
    }

    #[test]
    fn no_token_configured_lets_calls_through() {
        let mut auth = BearerAuth::new(None);
        assert_eq!(call(&mut auth, None), Ok(()));
        assert_eq!(call(&mut auth, Some("Bearer anything")), Ok(()));
    }
}
