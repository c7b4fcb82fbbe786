//! The client side of the services' security, shared by the worker and the CLI: an endpoint
//! that speaks TLS for `https://` addresses and an interceptor that adds the bearer token.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// Errors making a client endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address is not a URL tonic accepts.
    #[error("invalid coordinator address {address}: {reason}")]
    Address {
        /// The address given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// The token cannot be sent as a header.
    #[error("the token is not valid header text")]
    Token,
}

/// Returns an endpoint for `address`; `https://` addresses use TLS, trusting `ca_pem` when
/// given and the public web roots otherwise.
pub fn endpoint(address: &str, ca_pem: Option<&[u8]>) -> Result<Endpoint, ConnectError> {
    let refused = |e: tonic::transport::Error| ConnectError::Address {
        address: address.to_owned(),
        reason: e.to_string(),
    };
    let endpoint = Endpoint::from_shared(address.to_owned()).map_err(refused)?;
    if !address.starts_with("https://") {
        return Ok(endpoint);
    }
    let tls = match ca_pem {
        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    endpoint.tls_config(tls).map_err(refused)
}

/// Adds `authorization: Bearer <token>` to every call, when a token is set.
#[derive(Debug, Clone, Default)]
pub struct BearerToken {
    header: Option<MetadataValue<Ascii>>,
}

impl BearerToken {
    /// Sends `token` with every call, or nothing when it is `None`.
    pub fn new(token: Option<&str>) -> Result<Self, ConnectError> {
        let header = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| ConnectError::Token)
            })
            .transpose()?;
        Ok(Self { header })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}
