//! Web front end: HTTP ↔ ACME only. Routes requests, verifies JWS, calls the RA, renders
//! resources, and puts the headers RFC 8555 wants on every response (a fresh
//! `Replay-Nonce`, `Link: rel="index"`). No business rules live here.

pub mod client_auth;
pub mod endpoints;
mod handlers;
pub mod jws;
pub mod nonce;
pub mod problem;
pub mod publication;
pub mod server;
pub mod server_cert;
pub mod tls;
mod urls;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

pub use urls::Urls;

use crate::acme::DirectoryMeta;
use crate::error::{Error, ErrorKind};
use crate::ra::Ra;
pub use endpoints::Endpoints;
use nonce::NonceStore;

/// Largest request body accepted; a JWS with a CSR for 100 names fits well within it.
const BODY_LIMIT: usize = 64 * 1024;
/// Redeemed nonces remembered at most (issuing one stores nothing).
const NONCE_CAPACITY: usize = 200_000;
/// How long a nonce stays redeemable.
const NONCE_LIFETIME: Duration = Duration::from_secs(3600);

/// Front-end settings from the configuration.
#[derive(Debug, Clone)]
pub struct WfeSettings {
    /// The endpoint's URLs.
    pub urls: Urls,
    /// Whether the endpoint serves; a disabled one refuses every request with a problem.
    pub enabled: bool,
    /// Directory metadata.
    pub meta: DirectoryMeta,
    /// Longest a request body may take to arrive, in all.
    pub body_timeout: Duration,
    /// Nonces, shared by every endpoint of the server ([`shared_nonces`]).
    pub nonces: Arc<NonceStore>,
    /// mTLS: the CAs a client certificate must chain to; `None`: none is needed.
    pub client_cas: Option<Arc<client_auth::ClientCas>>,
    /// `Retry-After` on orders and challenges still processing, seconds.
    pub retry_after: u64,
}

/// One nonce store for the whole server: a nonce from any endpoint's newNonce is good,
/// once, at every endpoint.
pub fn shared_nonces() -> Arc<NonceStore> {
    Arc::new(NonceStore::new(NONCE_CAPACITY, NONCE_LIFETIME))
}

/// The ACME front end.
pub struct Wfe {
    ra: Ra,
    nonces: Arc<NonceStore>,
    verifiers: jws::VerifierCache,
    urls: Urls,
    enabled: bool,
    client_cas: Option<Arc<client_auth::ClientCas>>,
    retry_after: u64,
    meta: DirectoryMeta,
    body_timeout: Duration,
    requests: AtomicU64,
}

/// A successful response, before the common headers are added.
pub(crate) struct Reply {
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    location: Option<String>,
    links: Vec<String>,
    retry_after: Option<u64>,
}

impl Reply {
    fn json(status: StatusCode, value: &impl serde::Serialize) -> Result<Self, Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::internal(e.to_string()))?;
        Ok(Self {
            status,
            body: Bytes::from(body),
            content_type: "application/json",
            location: None,
            links: Vec::new(),
            retry_after: None,
        })
    }

    fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: Bytes::new(),
            content_type: "",
            location: None,
            links: Vec::new(),
            retry_after: None,
        }
    }

    fn location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }

    fn link(mut self, url: &str, rel: &str) -> Self {
        self.links.push(format!("<{url}>;rel=\"{rel}\""));
        self
    }
}

impl Wfe {
    /// A front end for `ra`.
    pub fn new(ra: Ra, settings: WfeSettings) -> Arc<Self> {
        Arc::new(Self {
            ra,
            nonces: settings.nonces,
            verifiers: jws::VerifierCache::default(),
            urls: settings.urls,
            enabled: settings.enabled,
            client_cas: settings.client_cas,
            retry_after: settings.retry_after,
            meta: settings.meta,
            body_timeout: settings.body_timeout,
            requests: AtomicU64::new(0),
        })
    }

    /// URLs of this server.
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// Handles one HTTP request from `client` for `resource`, the path below the endpoint
    /// (`directory`, `new-order`, `order/<id>`, …); never fails (errors become problem
    /// documents).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: std::net::IpAddr,
        resource: &str,
        chain: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let id = format!("{:x}", self.requests.fetch_add(1, Ordering::Relaxed));
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let result = match &self.client_cas {
            Some(cas) => match cas.check(chain) {
                Ok(()) => self.route(request, client, resource).await,
                Err(e) => Err(e),
            },
            None => self.route(request, client, resource).await,
        };
        let response = match result {
            Ok(reply) => self.respond(reply),
            Err(error) => {
                match error.kind {
                    ErrorKind::Internal | ErrorKind::Unavailable => {
                        tracing::error!(request = %id, %method, %path, error = %error.detail, "request failed");
                    }
                    _ => {
                        tracing::debug!(request = %id, %method, %path, error = %error, "request refused");
                    }
                }
                self.respond_error(&error, &id, &method)
            }
        };
        Ok(response)
    }

    async fn route(
        &self,
        request: Request<Incoming>,
        client: std::net::IpAddr,
        resource: &str,
    ) -> Result<Reply, Error> {
        if !self.enabled {
            return Err(Error::unauthorized(format!(
                "the ACME endpoint {:?} is disabled by the CA's operator",
                self.ra.endpoint()
            )));
        }
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = resource.split('/').collect();
        match segments.as_slice() {
            // RFC 8555 §6.3: GET, and POST-as-GET (below), for the directory and newNonce.
            ["directory"] if method != Method::POST => {
                only(&method, &[Method::GET], || self.directory())
            }
            // RFC 9773 §4.1: renewalInfo is read with a plain GET.
            ["renewal-info", cert_id] => {
                let cert_id = (*cert_id).to_owned();
                if method != Method::GET && method != Method::HEAD {
                    return Err(not_allowed("GET"));
                }
                self.renewal_info(&cert_id).await
            }
            ["new-nonce"] if method != Method::POST => match method {
                // RFC 8555 §7.2: HEAD answers 200, GET 204.
                Method::HEAD => Ok(Reply::empty(StatusCode::OK)),
                Method::GET => Ok(Reply::empty(StatusCode::NO_CONTENT)),
                _ => Err(not_allowed("HEAD, GET, POST")),
            },
            _ => {
                if !handlers::is_posted_resource(&segments) {
                    return Err(Error::not_found(format!("no resource at {path}")));
                }
                if method != Method::POST {
                    return Err(not_allowed("POST"));
                }
                // §6.4: the JWS "url" is the whole request URL, query included.
                let path_and_query = request
                    .uri()
                    .path_and_query()
                    .map_or(path.as_str(), |p| p.as_str())
                    .to_owned();
                let url = format!("{}{}", self.urls.base(), path_and_query);
                let query = request.uri().query().map(str::to_owned);
                let body = read_body(request, self.body_timeout).await?;
                self.post(&segments, &url, query.as_deref(), &body, client)
                    .await
            }
        }
    }

    fn respond(&self, reply: Reply) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(reply.body));
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        if !reply.content_type.is_empty() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            );
        }
        if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        for link in reply.links {
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.append(header::LINK, value);
            }
        }
        if let Some(seconds) = reply.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        self.common_headers(headers);
        response
    }

    fn respond_error(&self, error: &Error, id: &str, method: &Method) -> Response<Full<Bytes>> {
        let (status, problem) = problem::problem_for(error, id);
        let body = if *method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(serde_json::to_vec(&problem).unwrap_or_default())
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry) = error.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs()));
        }
        if let Some(location) = error
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            headers.insert(header::LOCATION, location);
        }
        if let Some(value) = error
            .action
            .as_ref()
            .and_then(|a| HeaderValue::from_str(&a.link).ok())
        {
            headers.append(header::LINK, value);
        }
        if error.kind == ErrorKind::MethodNotAllowed
            && let Ok(allow) = HeaderValue::from_str(&error.detail.replace("use ", ""))
        {
            headers.insert(header::ALLOW, allow);
        }
        self.common_headers(headers);
        response
    }

    /// RFC 8555 §6.5: every response carries a fresh nonce; §7.1: and a link to the
    /// directory. Nonces must not be cached.
    fn common_headers(&self, headers: &mut hyper::HeaderMap) {
        if let Ok(nonce) = HeaderValue::from_str(&self.nonces.issue()) {
            headers.insert("replay-nonce", nonce);
        }
        if let Ok(link) =
            HeaderValue::from_str(&format!("<{}>;rel=\"index\"", self.urls.directory()))
        {
            headers.append(header::LINK, link);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn only(
    method: &Method,
    allowed: &[Method],
    f: impl FnOnce() -> Result<Reply, Error>,
) -> Result<Reply, Error> {
    if allowed.contains(method) {
        f()
    } else {
        let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        Err(not_allowed(&names.join(", ")))
    }
}

fn not_allowed(allowed: &str) -> Error {
    Error::new(ErrorKind::MethodNotAllowed, format!("use {allowed}"))
}

/// Reads a POST body: `application/jose+json` (RFC 8555 §6.2), at most [`BODY_LIMIT`],
/// all of it within `deadline` (a trickled body does not hold a connection).
async fn read_body(request: Request<Incoming>, deadline: Duration) -> Result<Bytes, Error> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if content_type.as_deref() != Some("application/jose+json") {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            "POST bodies must be application/jose+json",
        ));
    }
    let limited = Limited::new(request.into_body(), BODY_LIMIT);
    let Ok(collected) = tokio::time::timeout(deadline, limited.collect()).await else {
        return Err(Error::malformed(format!(
            "the request body did not arrive within {} s",
            deadline.as_secs()
        )));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        )),
        Err(e) => Err(Error::malformed(format!("reading the request body: {e}"))),
    }
}
