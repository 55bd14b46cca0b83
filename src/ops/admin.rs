//! The admin socket: a Unix socket, readable and writable by the service user only, on
//! which `serve` takes operator commands while it runs (redb admits one process per state
//! file, so `hsm-acme revoke` cannot open it then). One JSON request per line, one JSON
//! answer per line. Access is the socket file's permission: whoever may open it is the
//! operator.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::publish::Publisher;
use crate::ra::{Ra, Revoker, check_reason};

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

/// An operator command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminRequest {
    /// Revoke the certificate with this serial (hex).
    Revoke {
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason code.
        reason: i64,
    },
    /// Sign the next CRL of a CA now and return it.
    Crl {
        /// The CA's name.
        ca: String,
    },
}

/// The answer to an [`AdminRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminResponse {
    /// Whether the command was carried out.
    pub ok: bool,
    /// What happened, for the operator.
    pub message: String,
    /// For `crl`: the CRL, DER in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<String>,
}

impl AdminResponse {
    fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
            crl: None,
        }
    }
}

async fn execute(ra: &Ra, publisher: Option<&Publisher>, request: AdminRequest) -> AdminResponse {
    match request {
        AdminRequest::Revoke { serial, reason } => {
            let reason = match check_reason(Some(reason), &Revoker::Operator) {
                Ok(reason) => reason,
                Err(e) => return AdminResponse::error(e.detail),
            };
            let serial = serial.trim().trim_start_matches("0x").replace(':', "");
            match ra
                .revoke_serial(Revoker::Operator, &serial, None, reason)
                .await
            {
                Ok(record) => {
                    // Publish at once rather than after the debounce: the operator waits.
                    let crl = match publisher {
                        Some(p) => match p.resign(&record.ca).await {
                            Ok(crl) => format!("; CRL number {} is published", crl.number),
                            Err(e) => format!("; re-signing the CRL failed: {}", e.detail),
                        },
                        None => String::new(),
                    };
                    AdminResponse {
                        ok: true,
                        message: format!(
                            "revoked certificate {} (reason {reason}){crl}",
                            record.serial
                        ),
                        crl: None,
                    }
                }
                Err(e) => AdminResponse::error(e.detail),
            }
        }
        AdminRequest::Crl { ca } => {
            let Some(publisher) = publisher else {
                return AdminResponse::error("this server has no [publication]: it signs no CRLs");
            };
            match publisher.resign(&ca).await {
                Ok(record) => AdminResponse {
                    ok: true,
                    message: format!("signed CRL number {} of CA {ca:?}", record.number),
                    crl: Some(STANDARD.encode(&record.der)),
                },
                Err(e) => AdminResponse::error(e.detail),
            }
        }
    }
}

/// Serves the admin socket at `path` until `shutdown`.
pub async fn serve(
    path: &Path,
    ra: Ra,
    publisher: Option<Arc<Publisher>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // A socket left by a previous run (kill -9) would make bind fail.
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
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
        let ra = ra.clone();
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(read.take(MAX_LINE as u64));
            let response = match reader.read_line(&mut line).await {
                Ok(_) => match serde_json::from_str::<AdminRequest>(&line) {
                    Ok(request) => {
                        tracing::info!(?request, "admin command");
                        execute(&ra, publisher.as_deref(), request).await
                    }
                    Err(e) => AdminResponse::error(format!("bad request: {e}")),
                },
                Err(e) => AdminResponse::error(format!("reading the request: {e}")),
            };
            if let Ok(mut out) = serde_json::to_vec(&response) {
                out.push(b'\n');
                let _ = write.write_all(&out).await;
            }
        });
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Sends `request` to a running server's admin socket. `None` if nothing listens there.
pub fn send(path: &Path, request: &AdminRequest) -> Option<Result<AdminResponse, String>> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).ok()?;
    Some((|| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        stream.write_all(&line).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&answer).map_err(|e| format!("bad answer {answer:?}: {e}"))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let request = AdminRequest::Revoke {
            serial: "0abc".into(),
            reason: 4,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"op":"revoke","serial":"0abc","reason":4}"#);
        assert_eq!(
            serde_json::from_str::<AdminRequest>(&json).unwrap(),
            request
        );
        assert!(serde_json::from_str::<AdminRequest>(r#"{"op":"drop-tables"}"#).is_err());
        let crl: AdminRequest = serde_json::from_str(r#"{"op":"crl","ca":"issuing"}"#).unwrap();
        assert_eq!(
            crl,
            AdminRequest::Crl {
                ca: "issuing".into()
            }
        );
    }
}
