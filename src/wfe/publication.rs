//! The plain-HTTP listener for CRLs and CA certificates (RFC 5280 §4.2.1.13, §4.2.2.1):
//! relying parties fetch these without TLS, so they need no PKI to check the PKI. GET and
//! HEAD only; nothing here reads a request body or touches ACME state.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::publish::Publisher;

/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn answer<B>(publisher: &Publisher, request: &Request<B>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    if request.method() != Method::GET && request.method() != Method::HEAD {
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(file) = publisher.get(request.uri().path()) else {
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.body.len()));
    // CRLs change with every revocation; caches may hold them only briefly.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if request.method() == Method::GET {
        *response.body_mut() = Full::new(file.body);
    }
    response
}

/// Serves `publisher` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    publisher: Arc<Publisher>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    while let Some((stream, peer)) = super::server::next_connection(&listener, &mut shutdown).await
    {
        let publisher = Arc::clone(&publisher);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let response = answer(&publisher, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "publication connection ended with an error");
            }
        });
    }
}
