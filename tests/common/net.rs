//! Network helpers for end-to-end tests: a mock DNS that answers every A query with
//! 127.0.0.1 (plus TXT and CAA records a test sets), an http-01 responder, and the server as a
//! child process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CAA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the mock DNS serves beyond its defaults; names are lower case, without the final dot.
#[derive(Debug, Default)]
pub struct Zone {
    /// TXT values by name.
    pub txt: HashMap<String, Vec<String>>,
    /// Names whose CAA says `0 issue "other-ca.example"`.
    pub caa_other_ca: std::collections::HashSet<String>,
}

/// The mock DNS's zone, changed by tests while the server runs.
pub type SharedZone = Arc<Mutex<Zone>>;

/// A DNS server on 127.0.0.1 (UDP) that answers every A query with 127.0.0.1 and every
/// other query with no records, like pebble-challtestsrv's default; except that names
/// starting `caa-forbidden.` carry `CAA 0 issue "other-ca.example"`, and the returned zone
/// adds TXT and CAA records.
pub async fn mock_dns() -> (SocketAddr, SharedZone) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let zone = SharedZone::default();
    let records = Arc::clone(&zone);
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(answer) = dns_answer(&buf[..len], &records) {
                let _ = socket.send_to(&answer, peer).await;
            }
        }
    });
    (addr, zone)
}

fn dns_answer(query: &[u8], zone: &SharedZone) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
    answer.metadata.recursion_desired = true;
    answer.metadata.recursion_available = true;
    answer.add_query(question.clone());
    let name = question.name().to_ascii().to_ascii_lowercase();
    let data = match question.query_type() {
        RecordType::A => vec![RData::A(A::new(127, 0, 0, 1))],
        RecordType::CAA
            if name.starts_with("caa-forbidden.")
                || zone
                    .lock()
                    .unwrap()
                    .caa_other_ca
                    .contains(name.trim_end_matches('.')) =>
        {
            vec![RData::CAA(CAA::new_issue(
                false,
                Some(Name::from_ascii("other-ca.example").ok()?),
                Vec::new(),
            ))]
        }
        RecordType::TXT => zone
            .lock()
            .unwrap()
            .txt
            .get(name.trim_end_matches('.'))
            .map(|values| {
                values
                    .iter()
                    .map(|v| RData::TXT(TXT::new(vec![v.clone()])))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for data in data {
        answer.add_answer(Record::from_rdata(question.name().clone(), 0, data));
    }
    answer.metadata.response_code = ResponseCode::NoError;
    answer.to_vec().ok()
}

/// Tokens the http-01 responder serves: token → body.
pub type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// A minimal HTTP/1.0-style server answering `/.well-known/acme-challenge/TOKEN`.
pub async fn http01_responder() -> (u16, Tokens) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tokens: Tokens = Arc::new(Mutex::new(HashMap::new()));
    let served = Arc::clone(&tokens);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tokens = Arc::clone(&served);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..read]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                let token = path
                    .strip_prefix("/.well-known/acme-challenge/")
                    .unwrap_or("");
                let body = tokens.lock().unwrap().get(token).cloned();
                let response = match body {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .into()
                    }
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, tokens)
}

/// `hsm-acme serve` as a child process, killed (SIGKILL) on drop.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
}

impl ServerProcess {
    /// Starts the server and waits until it accepts connections.
    pub fn start(softhsm_conf: &Path, config: &Path, port: u16, extra: &[String]) -> Self {
        Self::start_with_env(softhsm_conf, config, port, extra, &[])
    }

    /// As [`ServerProcess::start`], with extra environment variables.
    pub fn start_with_env(
        softhsm_conf: &Path,
        config: &Path,
        port: u16,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let log =
            std::fs::File::create(config.with_file_name(format!("serve-{port}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hsm-acme"))
            .env("SOFTHSM2_CONF", softhsm_conf)
            .env("HSM_ACME_LOG", "info")
            .envs(env.iter().copied())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Self { child, port };
        server.wait_ready(config);
        server
    }

    fn wait_ready(&mut self, config: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(
                    config.with_file_name(format!("serve-{}.log", self.port)),
                )
                .unwrap_or_default();
                panic!("hsm-acme serve exited with {status}:\n{log}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hsm-acme serve did not start listening on {}", self.port);
    }

    /// SIGHUP: the server reads its configuration again.
    pub fn hangup(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(sent, "kill -HUP failed");
    }

    /// kill -9, as a crash would.
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS connection to the server offering `alpn`.
pub async fn connect(root: &Path, port: u16, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}
