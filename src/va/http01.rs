//! http-01 validation (RFC 8555 §8.3): fetch the key authorization from
//! `http://NAME:PORT/.well-known/acme-challenge/TOKEN` and compare.
//!
//! Redirects are followed only to http/https on the configured ports and to addresses the
//! network policy permits, checked at every hop, at most `max_redirects` times; every
//! connection has a deadline and the whole validation another; bodies are capped.
//! Failure details are shown to the client, so they name the URL and the kind of failure
//! but never what came back from it (no body bytes, no status code, no socket error):
//! the validator must not become a probe into anyone's network. The log keeps the detail.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper::header::{HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use super::resolver::Resolver;
use super::{VaConfig, ValidationFailure};

/// Validates an http-01 challenge for `host` (a DNS name or an IP address).
pub async fn validate_http01(
    config: &VaConfig,
    resolver: &dyn Resolver,
    host: &str,
    token: &str,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    // RFC 8555 §8.1: tokens are base64url; anything else must not reach a URL.
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ValidationFailure::IncorrectResponse("invalid token".into()));
    }
    let authority = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    };
    let start = format!(
        "http://{authority}:{}/.well-known/acme-challenge/{token}",
        config.http01_port
    );
    let start = Url::parse(&start).map_err(|e| {
        ValidationFailure::Unauthorized(format!("{host:?} does not form a URL: {e}"))
    })?;
    let run = follow(config, resolver, start.clone(), key_authorization);
    tokio::time::timeout(config.request_timeout, run)
        .await
        .map_err(|_| {
            ValidationFailure::Connection(format!(
                "fetching {start}: no answer within {:?}",
                config.request_timeout
            ))
        })?
}

async fn follow(
    config: &VaConfig,
    resolver: &dyn Resolver,
    mut url: Url,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    for _ in 0..=config.max_redirects {
        let (status, location, body) = fetch(config, resolver, &url).await?;
        if status.is_redirection() {
            let location = location.ok_or_else(|| {
                ValidationFailure::Unauthorized(format!(
                    "fetching {url}: HTTP {status} without Location"
                ))
            })?;
            let next = url.join(&location).map_err(|e| {
                ValidationFailure::Unauthorized(format!(
                    "fetching {url}: bad redirect {location:?}: {e}"
                ))
            })?;
            check_redirect(config, &url, &next)?;
            url = next;
            continue;
        }
        if !status.is_success() {
            tracing::debug!(%url, %status, "http-01: not a success status");
            return Err(ValidationFailure::Unauthorized(format!(
                "fetching {url}: the server did not answer with the key authorization \
                 (an error status)"
            )));
        }
        // RFC 8555 §8.3: trailing whitespace in the body is ignored.
        let text = String::from_utf8_lossy(&body);
        let got = text.trim_end();
        if got == key_authorization {
            return Ok(());
        }
        tracing::debug!(%url, bytes = body.len(), "http-01: the body is not the key authorization");
        return Err(ValidationFailure::IncorrectResponse(format!(
            "fetching {url}: the body is not the key authorization {key_authorization:?}"
        )));
    }
    Err(ValidationFailure::Unauthorized(format!(
        "fetching {url}: more than {} redirects",
        config.max_redirects
    )))
}

fn check_redirect(config: &VaConfig, from: &Url, to: &Url) -> Result<(), ValidationFailure> {
    let refuse = |why: String| {
        ValidationFailure::Unauthorized(format!("fetching {from}: redirect to {to} refused: {why}"))
    };
    if to.scheme() != "http" && to.scheme() != "https" {
        return Err(refuse("only http and https are followed".into()));
    }
    if to.host().is_none() {
        return Err(refuse("no host".into()));
    }
    let port = to.port_or_known_default().unwrap_or(0);
    if !config.redirect_ports.contains(&port) {
        return Err(refuse(format!(
            "port {port} is not one of {:?}",
            config.redirect_ports
        )));
    }
    Ok(())
}

/// One GET: resolve, connect (trying each address), speak HTTP/1.1, read a capped body.
async fn fetch(
    config: &VaConfig,
    resolver: &dyn Resolver,
    url: &Url,
) -> Result<(StatusCode, Option<String>, Bytes), ValidationFailure> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => resolver.lookup_ip(&host).await?,
    };
    let stream = super::connect_first(config, addresses, port)
        .await
        .map_err(|e| e.failure(&format!("fetching {url}")))?;
    if url.scheme() == "https" {
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| ValidationFailure::Tls(format!("fetching {url}: bad TLS name: {e}")))?;
        let tls = connector.connect(name, stream).await.map_err(|e| {
            tracing::debug!(%url, error = %e, "http-01: TLS handshake failed");
            ValidationFailure::Tls(format!("fetching {url}: the TLS handshake failed"))
        })?;
        get(config, url, tls).await
    } else {
        get(config, url, stream).await
    }
}

async fn get<S>(
    config: &VaConfig,
    url: &Url,
    stream: S,
) -> Result<(StatusCode, Option<String>, Bytes), ValidationFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection_error = |e: hyper::Error| {
        tracing::debug!(%url, error = %e, "http-01: the HTTP exchange failed");
        ValidationFailure::Connection(format!("fetching {url}: the HTTP exchange failed"))
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(connection_error)?;
    tokio::spawn(connection);
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = hyper::Request::get(path)
        .header(HOST, host)
        .header(USER_AGENT, "hsm-acme-va")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ValidationFailure::Connection(format!("fetching {url}: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(connection_error)?;
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(response.into_body(), config.body_limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ValidationFailure::IncorrectResponse(format!(
                    "fetching {url}: the response is larger than {} bytes",
                    config.body_limit
                ))
            } else {
                tracing::debug!(%url, error = %e, "http-01: reading the body failed");
                ValidationFailure::Connection(format!("fetching {url}: reading the body failed"))
            }
        })?
        .to_bytes();
    Ok((status, location, body))
}

/// RFC 8555 §8.3 validates control of the name, not the certificate on a redirected https
/// URL: like other CAs, any certificate is accepted there.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ValidationFailure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ValidationFailure::Tls(format!("TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
