//! A minimal ACME client that shows the wire: status, headers and body of every answer,
//! for resources and headers instant-acme does not expose (newAuthz, alternate chains,
//! 409 on keyChange). JWS with ES256 keys made by josekit; HTTP/1.1 over rustls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use josekit::jws::{ES256, JwsSigner};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Every `Link` value with `rel="<rel>"`, as URLs.
    pub fn links(&self, rel: &str) -> Vec<String> {
        self.headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .filter(|v| v.contains(&format!("rel=\"{rel}\"")))
            .map(|v| v.split(['<', '>']).nth(1).unwrap().to_owned())
            .collect()
    }
}

/// An account key and, once registered, its account URL.
pub struct RawClient {
    connector: TlsConnector,
    port: u16,
    signer: Box<dyn JwsSigner>,
    pub jwk: Value,
    pub kid: Option<String>,
}

impl RawClient {
    /// A client for the server on 127.0.0.1:`port` whose chain ends at `root`.
    pub fn new(root: &Path, port: u16) -> Self {
        Self::with_client_certificate(root, port, None)
    }

    /// As [`RawClient::new`], presenting a TLS client certificate (chain, key) if given.
    pub fn with_client_certificate(
        root: &Path,
        port: u16,
        client: Option<(
            Vec<CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        )>,
    ) -> Self {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(root).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match client {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
            None => builder.with_no_client_auth(),
        };
        let pair = ES256.generate_key_pair().unwrap();
        let signer = Box::new(ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap());
        Self {
            connector: TlsConnector::from(Arc::new(config)),
            port,
            signer,
            jwk: Value::Object(pair.to_jwk_public_key().as_ref().clone()),
            kid: None,
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Sends one request with a body of `content_type` on a fresh connection.
    pub async fn send_as(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Answer {
        self.exchange(method, url, Some((body, content_type))).await
    }

    /// Sends one request on a fresh connection; a body goes as `application/jose+json`.
    pub async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> Answer {
        let body = body.map(|b| (b, "application/jose+json"));
        self.exchange(method, url, body).await
    }

    async fn exchange(&self, method: Method, url: &str, body: Option<(Vec<u8>, &str)>) -> Answer {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = self.connector.connect(name, tcp).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header("host", format!("127.0.0.1:{}", self.port));
        let body = match body {
            Some((body, content_type)) => {
                builder = builder.header("content-type", content_type);
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body)).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    /// A fresh nonce (RFC 8555 §7.2).
    pub async fn nonce(&self) -> String {
        let answer = self
            .send(Method::HEAD, &self.url("/acme/new-nonce"), None)
            .await;
        answer.header("replay-nonce").unwrap()
    }

    /// A flattened JWS over `payload` (None: POST-as-GET) for `url`, signed with this key
    /// and carrying `kid` once registered, `jwk` before.
    pub async fn jws(&self, url: &str, payload: Option<&Value>) -> Vec<u8> {
        let mut header = json!({"alg": "ES256", "nonce": self.nonce().await, "url": url});
        match &self.kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.jwk.clone(),
        }
        self.sign(
            &header,
            payload.map(Value::to_string).unwrap_or_default().as_bytes(),
        )
    }

    /// POSTs a JWS carrying `jwk` even once registered (newAccount's onlyReturnExisting).
    pub async fn post_jwk(&self, url: &str, payload: Option<&Value>) -> Answer {
        let header = json!({"alg": "ES256", "nonce": self.nonce().await, "url": url,
            "jwk": self.jwk});
        let body = self.sign(
            &header,
            payload.map(Value::to_string).unwrap_or_default().as_bytes(),
        );
        self.send(Method::POST, url, Some(body)).await
    }

    /// Signs `payload` under `header` (flattened JSON serialization).
    pub fn sign(&self, header: &Value, payload: &[u8]) -> Vec<u8> {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let signature = self
            .signer
            .sign(format!("{protected}.{payload}").as_bytes())
            .unwrap();
        json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(signature),
        })
        .to_string()
        .into_bytes()
    }

    /// POSTs a JWS to `url`.
    pub async fn post(&self, url: &str, payload: Option<&Value>) -> Answer {
        let body = self.jws(url, payload).await;
        self.send(Method::POST, url, Some(body)).await
    }

    /// newAccount at the default endpoint; remembers the account URL.
    pub async fn register(&mut self) -> Answer {
        self.register_at("/acme").await
    }

    /// newAccount below `prefix` (`/acme`, or `/acme/<endpoint>`), agreeing to the terms;
    /// remembers the account URL.
    pub async fn register_at(&mut self, prefix: &str) -> Answer {
        let url = self.url(&format!("{prefix}/new-account"));
        let answer = self
            .post(
                &url,
                Some(&json!({"termsOfServiceAgreed": true, "contact": ["mailto:raw@example.org"]})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        self.kid = answer.header("location");
        answer
    }

    /// Serves the key authorization of `authz`'s http-01 challenge through `tokens` and
    /// answers the challenge; returns the answer to that POST.
    pub async fn answer_http01(&self, authz: &Value, tokens: &super::net::Tokens) -> Answer {
        let challenge = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .unwrap();
        let token = challenge["token"].as_str().unwrap();
        tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), format!("{token}.{}", self.thumbprint()));
        self.post(challenge["url"].as_str().unwrap(), Some(&json!({})))
            .await
    }

    /// RFC 7638 thumbprint of this key.
    pub fn thumbprint(&self) -> String {
        hsm_acme::acme::jwk::thumbprint(&self.jwk).unwrap()
    }
}
