//! The admin socket: a Unix socket on which `serve` takes operator commands while it runs
//! (redb admits one process per state file, so the command line cannot open it then). One
//! JSON [`AdminRequest`] per connection, one JSON [`AdminResponse`] back.
//!
//! Two locks on the door: the socket file is mode 0600, and every connection's peer
//! credentials (SO_PEERCRED) are checked, so only root and the service's own user get in
//! even if the file's mode or directory is loosened. Refusals are logged.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::operator::{AdminRequest, AdminResponse, Operator};

/// Longest request accepted (a public key or certificate in PEM fits).
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The user this process runs as (the owner of `/proc/self`, its effective uid).
fn own_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// Binds the socket at `path`. A socket left by a previous run (kill -9) is replaced; a
/// socket another server answers on, or any other kind of file, makes this fail: the
/// server does not start rather than delete what it did not make.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    ErrorKind::AddrInUse,
                    format!(
                        "{}: another process answers on this admin socket",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it (check [server] \
                     admin_socket)",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `listener` (bound at `path`) until `shutdown`; commands run on blocking threads.
pub async fn serve(
    listener: UnixListener,
    path: &Path,
    operator: Arc<Operator>,
    shutdown: impl Future<Output = ()>,
) {
    let own = match own_uid() {
        Ok(uid) => uid,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell this process's uid; the admin socket stays closed");
            return;
        }
    };
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let operator = Arc::clone(&operator);
        tokio::spawn(async move { connection(stream, own, operator).await });
    }
    let _ = std::fs::remove_file(path);
}

async fn connection(stream: UnixStream, own: u32, operator: Arc<Operator>) {
    let peer = stream.peer_cred();
    let response = match peer {
        Ok(cred) if cred.uid() == 0 || cred.uid() == own => {
            let (read, mut write) = stream.into_split();
            let response = answer(read, cred.uid(), operator).await;
            respond(&mut write, &response).await;
            return;
        }
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), pid = ?cred.pid(),
                "admin socket: connection from a user other than root or the service's refused");
            AdminResponse::error(format!(
                "uid {} may not use the admin socket (only root and uid {own})",
                cred.uid()
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin socket: no peer credentials; connection refused");
            AdminResponse::error("no peer credentials")
        }
    };
    let (_, mut write) = stream.into_split();
    respond(&mut write, &response).await;
}

async fn answer(
    read: tokio::net::unix::OwnedReadHalf,
    uid: u32,
    operator: Arc<Operator>,
) -> AdminResponse {
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
    match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return AdminResponse::error(format!("reading the request: {e}")),
        Err(_) => return AdminResponse::error("no request within 10 s"),
    }
    let request = match serde_json::from_str::<AdminRequest>(&line) {
        Ok(request) => request,
        Err(e) => return AdminResponse::error(format!("bad request: {e}")),
    };
    // Requests carry no secrets (a public key at most); answers may, and are not logged.
    tracing::info!(uid, ?request, "admin command");
    tokio::task::spawn_blocking(move || operator.execute(request))
        .await
        .unwrap_or_else(|e| AdminResponse::error(format!("the command failed: {e}")))
}

async fn respond(write: &mut tokio::net::unix::OwnedWriteHalf, response: &AdminResponse) {
    if let Ok(out) = serde_json::to_vec(response) {
        let out = Zeroizing::new(out);
        if write.write_all(&out).await.is_ok() {
            let _ = write.write_all(b"\n").await;
        }
    }
}

/// Sends `request` to a running server's admin socket. `None` if no server listens there
/// (then the state file may be opened directly).
pub fn send(path: &Path, request: &AdminRequest) -> Option<Result<AdminResponse, String>> {
    let mut stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return None;
        }
        Err(e) => {
            return Some(Err(format!(
                "admin socket {}: {e} (run as root or as the service's user)",
                path.display()
            )));
        }
    };
    Some((|| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
        let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        // A refusal (another user) may come back before the request is written, and
        // the server closes: its answer, not the broken pipe, is what to report.
        let written = stream.write_all(&line);
        // The answer may hold a new HMAC key.
        let mut answer = Zeroizing::new(String::new());
        let read = BufReader::new(stream).read_line(&mut answer);
        match (written, read) {
            (_, Ok(n)) if n > 0 => {}
            (Err(e), _) | (Ok(()), Err(e)) => return Err(e.to_string()),
            (Ok(()), Ok(_)) => {
                return Err("the server closed the admin socket without an answer".into());
            }
        }
        serde_json::from_str(&answer).map_err(|e| format!("the server's answer is not JSON: {e}"))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        std::fs::write(&path, b"precious").unwrap();
        let err = bind(&path).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");

        // A stale socket (nobody answers) is replaced; a live one is not.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let live = bind(&stale).unwrap();
        let err = bind(&stale).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        drop(live);
        let mode = std::fs::metadata(&stale).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn nothing_listening_means_no_server() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send(&dir.path().join("none.sock"), &AdminRequest::EabList).is_none());
    }
}
