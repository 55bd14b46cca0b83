//! `hsm-acme revoke` and `hsm-acme crl`: the operator's revocation and an on-demand CRL,
//! signed on the token. While `serve` runs, both go through its admin socket; otherwise
//! they open the state file themselves (redb admits one process at a time).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::pem::LineEnding;

use super::CliError;
use super::ca::read_certificate;
use crate::config::Config;
use crate::hsm::Pkcs11Token;
use crate::ops::admin::{self, AdminRequest};
use crate::publish::{CrlAuthority, sign_offline};
use crate::ra::{Revoker, check_reason, revoke_in};
use crate::store::Store;

/// CRL lifetime when the configuration has no `[publication]`.
const DEFAULT_CRL_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

fn open_store(config: &Config) -> Result<Store, CliError> {
    let path = config
        .storage_path
        .as_deref()
        .ok_or_else(|| CliError::msg("the configuration has no [storage] path"))?;
    Store::open(path).map_err(|e| {
        CliError::msg(format!(
            "{e}\n(is `hsm-acme serve` running on this state file? give it [server] \
             admin_socket for `revoke`, or stop it first)"
        ))
    })
}

fn authority(config: &Config, name: &str) -> Result<CrlAuthority, CliError> {
    let ca = config
        .ca(name)
        .ok_or_else(|| CliError::msg(format!("no [[ca]] named {name:?}")))?;
    let certificate = read_certificate(&ca.certificate)?;
    let token = Pkcs11Token::open(&config.token)?;
    let signer = token.signer(&ca.key_label, ca.rsa_padding)?;
    Ok(CrlAuthority {
        name: ca.name.clone(),
        certificate,
        signer: Arc::new(signer),
    })
}

fn crl_lifetime(config: &Config) -> Duration {
    config
        .publication
        .as_ref()
        .map_or(DEFAULT_CRL_LIFETIME, |p| p.crl_lifetime)
}

/// Revokes `serial` (hex, as in certificate URLs) and signs the CA's next CRL.
pub(super) fn revoke(config: &Config, serial: &str, reason: i64) -> Result<(), CliError> {
    let socket = config
        .server
        .as_ref()
        .and_then(|s| s.admin_socket.as_deref());
    if let Some(socket) = socket {
        let request = AdminRequest::Revoke {
            serial: serial.to_owned(),
            reason,
        };
        if let Some(answer) = admin::send(socket, &request) {
            let answer = answer.map_err(CliError::msg)?;
            return if answer.ok {
                println!("{}", answer.message);
                Ok(())
            } else {
                Err(CliError::msg(answer.message))
            };
        }
    }
    let reason =
        check_reason(Some(reason), &Revoker::Operator).map_err(|e| CliError::msg(e.detail))?;
    let store = open_store(config)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| CliError::msg(e.to_string()))?
        .as_secs();
    let serial = serial.trim().trim_start_matches("0x").replace(':', "");
    let record = store
        .write(|tx| revoke_in(tx, &Revoker::Operator, &serial, None, reason, now))
        .map_err(|e| CliError::msg(e.detail))?;
    println!("revoked certificate {} (reason {reason})", record.serial);
    let ca = authority(config, &record.ca)?;
    let crl = sign_offline(&ca, &store, crl_lifetime(config), SystemTime::now())
        .map_err(|e| CliError::msg(e.detail))?;
    println!("signed CRL number {} of CA {:?}", crl.number, ca.name);
    Ok(())
}

/// Signs the next CRL of `ca` and writes it (PEM) to `out`.
pub(super) fn crl(config: &Config, ca: &str, out: &Path) -> Result<(), CliError> {
    let socket = config
        .server
        .as_ref()
        .and_then(|s| s.admin_socket.as_deref());
    if let Some(answer) =
        socket.and_then(|s| admin::send(s, &AdminRequest::Crl { ca: ca.to_owned() }))
    {
        let answer = answer.map_err(CliError::msg)?;
        if !answer.ok {
            return Err(CliError::msg(answer.message));
        }
        let der = answer
            .crl
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or_else(|| CliError::msg("the server answered without a CRL"))?;
        return write_crl(out, &der, &answer.message);
    }
    let store = open_store(config)?;
    let ca = authority(config, ca)?;
    let record = sign_offline(&ca, &store, crl_lifetime(config), SystemTime::now())
        .map_err(|e| CliError::msg(e.detail))?;
    let message = format!("signed CRL number {} of CA {:?}", record.number, ca.name);
    write_crl(out, &record.der, &message)
}

fn write_crl(out: &Path, der: &[u8], message: &str) -> Result<(), CliError> {
    let pem = der::pem::encode_string("X509 CRL", LineEnding::LF, der)
        .map_err(|e| CliError::msg(e.to_string()))?;
    super::ca::write_atomically(out, pem.as_bytes())?;
    println!("{message}; wrote it to {}", out.display());
    Ok(())
}
