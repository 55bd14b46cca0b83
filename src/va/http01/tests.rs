//! Against real local HTTP servers, with a scripted resolver.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::policy::network::NetworkPolicy;
use crate::va::resolver::LookupFuture;

const TOKEN: &str = "tok_en-123";
const KEY_AUTH: &str = "tok_en-123.thumbprint";

/// Answers every name with fixed addresses.
#[derive(Debug)]
struct Scripted(Vec<IpAddr>);

impl Resolver for Scripted {
    fn lookup_ip<'a>(&'a self, _name: &'a str) -> LookupFuture<'a> {
        let answer = self.0.clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// A server answering each path with a canned raw HTTP response; unknown paths 404.
async fn server(routes: HashMap<&'static str, String>) -> u16 {
    server_with_delay(routes, Duration::ZERO).await
}

async fn server_with_delay(routes: HashMap<&'static str, String>, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(m) => n += m,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                tokio::time::sleep(delay).await;
                let response = routes.get(path.as_str()).cloned().unwrap_or_else(|| {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()
                });
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
}

fn config(port: u16) -> VaConfig {
    VaConfig {
        caa_identities: Vec::new(),
        http01_port: port,
        tls_alpn01_port: 443,
        redirect_ports: vec![port],
        max_redirects: 3,
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        body_limit: 256,
        network: NetworkPolicy::parse(&["127.0.0.1/32".into(), "::1/128".into()], &[]).unwrap(),
    }
}

const PATH: &str = "/.well-known/acme-challenge/tok_en-123";

fn localhost() -> Scripted {
    Scripted(vec!["127.0.0.1".parse().unwrap()])
}

async fn run(port: u16, cfg: &VaConfig) -> Result<(), ValidationFailure> {
    validate_http01(cfg, &localhost(), "www.example.test", TOKEN, KEY_AUTH)
        .await
        .map(|()| {
            let _ = port;
        })
}

#[tokio::test]
async fn the_key_authorization_validates_with_trailing_whitespace() {
    let port = server(HashMap::from([(PATH, ok(&format!("{KEY_AUTH}\r\n \n")))])).await;
    run(port, &config(port)).await.unwrap();
}

#[tokio::test]
async fn a_wrong_body_or_status_or_size_fails_with_the_right_type() {
    let port = server(HashMap::from([(PATH, ok("something else"))])).await;
    let err = run(port, &config(port)).await.unwrap_err();
    assert!(
        matches!(err, ValidationFailure::IncorrectResponse(_)),
        "{err:?}"
    );
    // What the server sent never comes back to the client.
    assert!(!err.to_string().contains("something else"), "{err}");

    let port = server(HashMap::new()).await;
    let err = run(port, &config(port)).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Unauthorized(m) if m.contains("error status") && !m.contains("404")),
        "{err:?}"
    );

    let port = server(HashMap::from([(PATH, ok(&"x".repeat(1000)))])).await;
    let err = run(port, &config(port)).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::IncorrectResponse(m) if m.contains("larger")),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connection_problem_and_other_addresses_are_tried() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = run(closed, &config(closed)).await.unwrap_err();
    assert!(matches!(err, ValidationFailure::Connection(_)), "{err:?}");

    // An unreachable IPv6 address first, then IPv4 that answers.
    let port = server(HashMap::from([(PATH, ok(KEY_AUTH))])).await;
    let both = Scripted(vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()]);
    validate_http01(&config(port), &both, "www.example.test", TOKEN, KEY_AUTH)
        .await
        .unwrap();
}

#[tokio::test]
async fn redirects_are_followed_only_to_allowed_ports_and_not_forever() {
    let port = server(HashMap::from([
        (PATH, redirect("/moved")),
        ("/moved", ok(KEY_AUTH)),
        ("/loop", redirect("/loop")),
    ]))
    .await;
    run(port, &config(port)).await.unwrap();

    let mut strict = config(port);
    strict.redirect_ports = vec![80, 443];
    let err = run(port, &strict).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Unauthorized(m) if m.contains("redirect")),
        "{err:?}"
    );

    let looping = server(HashMap::from([
        (PATH, redirect("/loop")),
        ("/loop", redirect("/loop")),
    ]))
    .await;
    let err = run(looping, &config(looping)).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Unauthorized(m) if m.contains("redirects")),
        "{err:?}"
    );

    let ftp = server(HashMap::from([(PATH, redirect("ftp://example.test/x"))])).await;
    assert!(run(ftp, &config(ftp)).await.is_err());
}

#[tokio::test]
async fn a_slow_server_hits_the_deadline() {
    let port = server_with_delay(
        HashMap::from([(PATH, ok(KEY_AUTH))]),
        Duration::from_secs(5),
    )
    .await;
    let mut cfg = config(port);
    cfg.request_timeout = Duration::from_millis(300);
    let err = run(port, &cfg).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Connection(m) if m.contains("no answer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn tokens_outside_base64url_never_reach_a_url() {
    let err = validate_http01(&config(80), &localhost(), "a.test", "../etc", KEY_AUTH)
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationFailure::IncorrectResponse(_)));
}

/// A server on `ip` counting the connections it accepts.
async fn counting_server(ip: &str, response: String) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, count)
}

#[tokio::test]
async fn a_redirect_out_of_the_permitted_networks_is_refused_before_any_connection() {
    // 127.0.0.2 is loopback too, but only 127.0.0.1 is permitted.
    let (other, contacted) = counting_server("127.0.0.2", ok(KEY_AUTH)).await;
    let port = server(HashMap::from([(
        PATH,
        redirect(&format!("http://127.0.0.2:{other}{PATH}")),
    )]))
    .await;
    let mut cfg = config(port);
    cfg.redirect_ports = vec![port, other];
    let err = run(port, &cfg).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Connection(m) if m.contains("not in a network this CA validates")),
        "{err:?}"
    );
    assert_eq!(contacted.load(Ordering::SeqCst), 0);

    // Permitted, the same redirect works.
    cfg.network = NetworkPolicy::parse(&["127.0.0.0/30".into()], &[]).unwrap();
    run(port, &cfg).await.unwrap();
    assert_eq!(contacted.load(Ordering::SeqCst), 1);

    // A name that resolves only to refused addresses is not contacted either (loopback
    // addresses outside the permit: a regression here must not reach any other network).
    let nowhere = Scripted(vec![
        "127.0.0.9".parse().unwrap(),
        "127.0.0.10".parse().unwrap(),
    ]);
    let err = validate_http01(&config(port), &nowhere, "metadata.test", TOKEN, KEY_AUTH)
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationFailure::Connection(_)), "{err:?}");
    assert!(!err.to_string().contains("127.0.0.9"), "{err}");
}
