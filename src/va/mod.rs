//! Validation authority: proves control of identifiers (RFC 8555 §8) with http-01, dns-01
//! and tls-alpn-01, and checks CAA (RFC 8659) for the RA. Outbound requests go through the
//! [`resolver::Resolver`] seam; the RA sees only [`Validator`] and [`caa::check_caa`].

pub mod caa;
pub mod dns01;
pub mod http01;
pub mod resolver;
pub mod tls_alpn01;

#[cfg(test)]
mod testing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::acme::Identifier;

/// Why a validation failed; each maps to an RFC 8555 §6.7 problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationFailure {
    /// `dns`: the name did not resolve.
    #[error("{0}")]
    Dns(String),
    /// `connection`: no connection, or no answer in time.
    #[error("{0}")]
    Connection(String),
    /// `unauthorized`: the server refused, or redirected somewhere forbidden.
    #[error("{0}")]
    Unauthorized(String),
    /// `incorrectResponse`: the answer was not the key authorization.
    #[error("{0}")]
    IncorrectResponse(String),
    /// `tls`: a TLS handshake failed.
    #[error("{0}")]
    Tls(String),
    /// `caa`: CAA records forbid issuance (RFC 8555 §6.7, RFC 8659).
    #[error("{0}")]
    Caa(String),
}

impl ValidationFailure {
    /// The RFC 8555 §6.7 problem type name.
    pub fn problem_type(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dns",
            Self::Connection(_) => "connection",
            Self::Unauthorized(_) => "unauthorized",
            Self::IncorrectResponse(_) => "incorrectResponse",
            Self::Tls(_) => "tls",
            Self::Caa(_) => "caa",
        }
    }
}

/// Settings for outbound validation requests.
#[derive(Debug, Clone)]
pub struct VaConfig {
    /// This CA's CAA issuer domain names (RFC 8659 §4.2); with none, any name whose CAA
    /// records restrict issuance is refused.
    pub caa_identities: Vec<String>,
    /// Port http-01 connects to (80 in production).
    pub http01_port: u16,
    /// Port tls-alpn-01 connects to (443 in production, RFC 8737 §3).
    pub tls_alpn01_port: u16,
    /// Ports a redirect may lead to.
    pub redirect_ports: Vec<u16>,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Deadline for one TCP connection.
    pub connect_timeout: Duration,
    /// Deadline for the whole validation, redirects included.
    pub request_timeout: Duration,
    /// Largest response body read.
    pub body_limit: usize,
    /// Addresses the validator may connect to.
    pub network: crate::policy::network::NetworkPolicy,
}

impl Default for VaConfig {
    fn default() -> Self {
        Self {
            caa_identities: Vec::new(),
            http01_port: 80,
            tls_alpn01_port: 443,
            redirect_ports: vec![80, 443],
            max_redirects: 10,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            body_limit: 8192,
            network: crate::policy::network::NetworkPolicy::default(),
        }
    }
}

/// Why no connection was made.
#[derive(Debug)]
enum ConnectError {
    /// No address is in a network the validator may reach; none was contacted.
    Refused,
    /// No permitted address answered; the detail is for the log, not the client.
    Unreachable(String),
}

impl ConnectError {
    /// The failure the client sees for `what` (a URL or a name and port): whether the
    /// target was refused or unreachable, nothing about the network behind it.
    fn failure(self, what: &str) -> ValidationFailure {
        match self {
            Self::Refused => ValidationFailure::Connection(format!(
                "{what}: the address is not in a network this CA validates"
            )),
            Self::Unreachable(detail) => {
                tracing::debug!(target = %what, %detail, "validation connection failed");
                ValidationFailure::Connection(format!("{what}: cannot connect"))
            }
        }
    }
}

/// Connects to the first of `addresses` that the network policy permits and that answers
/// on `port` within the connect timeout (they come IPv6 first, so an unreachable IPv6
/// address falls back to the next). The addresses checked are the addresses connected to:
/// nothing is resolved again in between.
async fn connect_first(
    config: &VaConfig,
    addresses: Vec<std::net::IpAddr>,
    port: u16,
) -> Result<tokio::net::TcpStream, ConnectError> {
    let permitted: Vec<std::net::IpAddr> = addresses
        .into_iter()
        .filter(|ip| config.network.permits(*ip))
        .collect();
    if permitted.is_empty() {
        return Err(ConnectError::Refused);
    }
    let mut last = String::new();
    for ip in permitted {
        let addr = std::net::SocketAddr::new(ip, port);
        match tokio::time::timeout(config.connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no connection within {:?}", config.connect_timeout),
        }
    }
    Err(ConnectError::Unreachable(last))
}

/// What validating one challenge needs.
#[derive(Debug, Clone)]
pub struct ValidationRequest {
    /// The identifier.
    pub identifier: Identifier,
    /// The challenge type.
    pub challenge: String,
    /// The challenge token.
    pub token: String,
    /// token || '.' || account key thumbprint (RFC 8555 §8.1).
    pub key_authorization: String,
    /// Whether the authorization is for a wildcard (CAA `issuewild`, RFC 8659 §4.3).
    pub wildcard: bool,
    /// The account URL (CAA `accounturi`, RFC 8657 §3).
    pub account_uri: String,
}

/// A boxed validation future.
pub type ValidationFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), ValidationFailure>> + Send + 'a>>;

/// The RA's view of validation; tests give scripted outcomes.
pub trait Validator: Send + Sync {
    /// Validates one challenge, CAA included.
    fn validate<'a>(&'a self, request: &'a ValidationRequest) -> ValidationFuture<'a>;
    /// Checks CAA alone, for an authorization validated some time ago (RFC 8659 §3:
    /// CAA is checked close to issuance).
    fn check_caa<'a>(&'a self, request: &'a ValidationRequest) -> ValidationFuture<'a>;
}

/// The real validator.
#[derive(Debug)]
pub struct Va {
    config: VaConfig,
    resolver: Arc<dyn resolver::Resolver>,
}

impl Va {
    /// A validator with `config`, resolving through `resolver`.
    pub fn new(config: VaConfig, resolver: Arc<dyn resolver::Resolver>) -> Self {
        Self { config, resolver }
    }
}

impl Validator for Va {
    fn validate<'a>(&'a self, request: &'a ValidationRequest) -> ValidationFuture<'a> {
        Box::pin(async move {
            // CAA does not depend on the challenge: both run at once, and a failed
            // challenge is reported before a CAA refusal.
            let (challenge, caa) =
                tokio::join!(self.validate_challenge(request), self.caa(request));
            challenge?;
            caa
        })
    }

    fn check_caa<'a>(&'a self, request: &'a ValidationRequest) -> ValidationFuture<'a> {
        Box::pin(self.caa(request))
    }
}

impl Va {
    /// RFC 8659 for `dns` identifiers; addresses have no CAA.
    async fn caa(&self, request: &ValidationRequest) -> Result<(), ValidationFailure> {
        if request.identifier.kind != "dns" {
            return Ok(());
        }
        caa::check_caa(
            self.resolver.as_ref(),
            &caa::CaaRequest {
                name: &request.identifier.value,
                wildcard: request.wildcard,
                identities: &self.config.caa_identities,
                account_uri: &request.account_uri,
                method: &request.challenge,
            },
        )
        .await
    }

    async fn validate_challenge(
        &self,
        request: &ValidationRequest,
    ) -> Result<(), ValidationFailure> {
        {
            match request.challenge.as_str() {
                "http-01" => {
                    http01::validate_http01(
                        &self.config,
                        self.resolver.as_ref(),
                        &request.identifier.value,
                        &request.token,
                        &request.key_authorization,
                    )
                    .await
                }
                "dns-01" => {
                    dns01::validate_dns01(
                        &self.config,
                        self.resolver.as_ref(),
                        &request.identifier,
                        &request.key_authorization,
                    )
                    .await
                }
                "tls-alpn-01" => {
                    tls_alpn01::validate_tls_alpn01(
                        &self.config,
                        self.resolver.as_ref(),
                        &request.identifier,
                        &request.key_authorization,
                    )
                    .await
                }
                other => Err(ValidationFailure::Unauthorized(format!(
                    "challenge type {other} is not offered"
                ))),
            }
        }
    }
}
