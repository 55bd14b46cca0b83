//! The operator's commands (`revoke`, `crl`, `eab …`, `account …`): sent to the running
//! server's admin socket, or carried out on the state file when the server is stopped, by
//! the same [`Operator`] code, so the answers are the same either way.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::pem::LineEnding;
use serde_json::json;
use zeroize::Zeroizing;

use super::ca::read_certificate;
use super::{AccountCommand, CliError, EabCommand};
use crate::clock::{SystemClock, parse_rfc3339};
use crate::config::Config;
use crate::error::Error;
use crate::hsm::{Pkcs11Token, Sealer};
use crate::ops::admin;
use crate::ops::operator::{
    AdminRequest, AdminResponse, CrlSigning, EabCreateRequest, Operator, wipe_strings,
};
use crate::policy::pattern::parse_patterns;
use crate::publish::{CrlAuthority, sign_offline};
use crate::store::{CrlRecord, Store};

/// CRL lifetime when the configuration has no `[publication]`.
const DEFAULT_CRL_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

/// How the answer is printed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub json: bool,
}

/// The request for an `eab` command, checked as the command line gives it.
pub(super) fn eab_request(command: &EabCommand) -> Result<AdminRequest, CliError> {
    Ok(match command {
        EabCommand::Create {
            profile,
            alg,
            public_key,
            allowed_domains,
            prevalidated_domains,
            expires,
            reusable,
            label,
        } => {
            let public_key_pem = public_key
                .as_deref()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))
                })
                .transpose()?;
            let patterns = |list: &Option<String>, flag: &str| -> Result<Vec<String>, CliError> {
                list.as_deref()
                    .map(|l| {
                        parse_patterns(l)
                            .map(|ps| ps.iter().map(ToString::to_string).collect())
                            .map_err(|e| CliError::msg(format!("{flag}: {e}")))
                    })
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|e| CliError::msg(e.to_string()))?
                .as_secs();
            AdminRequest::EabCreate(EabCreateRequest {
                profile: profile.clone(),
                alg: alg.clone(),
                public_key_pem,
                allowed_domains: patterns(allowed_domains, "--allowed-domains")?,
                prevalidated_domains: patterns(prevalidated_domains, "--prevalidated-domains")?,
                expires: expires
                    .as_deref()
                    .map(|e| parse_expiry(e, now).map_err(CliError::msg))
                    .transpose()?,
                reusable: *reusable,
                label: label.clone(),
            })
        }
        EabCommand::List => AdminRequest::EabList,
        EabCommand::Show { kid } => AdminRequest::EabShow { kid: kid.clone() },
        EabCommand::Revoke { kid } => AdminRequest::EabRevoke { kid: kid.clone() },
    })
}

/// The request for an `account` command.
pub(super) fn account_request(command: &AccountCommand) -> AdminRequest {
    match command {
        AccountCommand::List => AdminRequest::AccountList,
        AccountCommand::Show { id } => AdminRequest::AccountShow { id: id.clone() },
        AccountCommand::Deactivate { id } => AdminRequest::AccountDeactivate { id: id.clone() },
        AccountCommand::Approve { id } => AdminRequest::AccountApprove { id: id.clone() },
        AccountCommand::Reject { id } => AdminRequest::AccountReject { id: id.clone() },
    }
}

/// `--expires`: an RFC 3339 time, a date (midnight UTC), or a duration from now such as
/// `90d`, `12h`, `2w`, `30m`.
pub(super) fn parse_expiry(text: &str, now: u64) -> Result<u64, String> {
    let text = text.trim();
    if let Some(at) = parse_rfc3339(text) {
        return Ok(at);
    }
    if let Some(at) = parse_rfc3339(&format!("{text}T00:00:00Z")) {
        return Ok(at);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if unit_seconds > 0 && n > 0 => n
            .checked_mul(unit_seconds)
            .and_then(|s| now.checked_add(s))
            .ok_or_else(|| format!("--expires {text:?} is too far away")),
        _ => Err(format!(
            "--expires {text:?}: give a date (2027-06-30), an RFC 3339 time, or a duration \
             such as 90d, 12h, 2w"
        )),
    }
}

/// Sends `request` to the running server, or carries it out on the state file; prints the
/// answer. `crl_out` is where `crl` writes the CRL.
pub(super) fn run(
    config: &Config,
    request: AdminRequest,
    output: Output,
    crl_out: Option<&Path>,
) -> Result<(), CliError> {
    let socket = config
        .server
        .as_ref()
        .and_then(|s| s.admin_socket.as_deref());
    let response = match socket.and_then(|s| admin::send(s, &request)) {
        Some(answer) => answer.map_err(CliError::msg)?,
        None => offline_operator(config, request.needs_token())?.execute(request),
    };
    print(response, output, crl_out)
}

fn print(
    mut response: AdminResponse,
    output: Output,
    crl_out: Option<&Path>,
) -> Result<(), CliError> {
    if !response.ok {
        return Err(CliError::msg(response.take_message()));
    }
    let mut data = response.take_data();
    let mut message = Zeroizing::new(response.take_message());
    if let Some(out) = crl_out {
        let der = data["crl"]
            .as_str()
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or_else(|| CliError::msg("the answer carries no CRL"))?;
        let pem = der::pem::encode_string("X509 CRL", LineEnding::LF, &der)
            .map_err(|e| CliError::msg(e.to_string()))?;
        super::ca::write_atomically(out, pem.as_bytes())?;
        *message = format!("{}; wrote it to {}", message.as_str(), out.display());
        data =
            json!({"ca": data["ca"], "number": data["number"], "out": out.display().to_string()});
    }
    // The answer may hold a new HMAC key: printed once, then wiped.
    let text = Zeroizing::new(if output.json {
        serde_json::to_string(&data).map_err(|e| CliError::msg(e.to_string()))?
    } else {
        message.to_string()
    });
    println!("{}", text.as_str());
    wipe_strings(&mut data);
    Ok(())
}

/// An operator on the state file, with the token opened only for commands that seal or
/// sign.
fn offline_operator(config: &Config, needs_token: bool) -> Result<Operator, CliError> {
    let path = config
        .storage_path
        .as_deref()
        .ok_or_else(|| CliError::msg("the configuration has no [storage] path"))?;
    let store = Store::open(path).map_err(|e| {
        CliError::msg(format!(
            "{e}\n(is `hsm-acme serve` running on this state file? give it [server] \
             admin_socket, or stop it first)"
        ))
    })?;
    let (sealer, crls) = if needs_token {
        let token = Pkcs11Token::open(&config.token)?;
        let sealer = config
            .sealing_key
            .as_deref()
            .map(|label| token.sealer(label).map(|s| Arc::new(s) as Arc<dyn Sealer>))
            .transpose()?;
        let crls: Arc<dyn CrlSigning> = Arc::new(OfflineCrls {
            config: config.clone(),
            token,
            store: store.clone(),
        });
        (sealer, Some(crls))
    } else {
        (None, None)
    };
    Ok(Operator {
        store,
        profiles: Arc::new(std::sync::RwLock::new(
            config
                .acme
                .iter()
                .chain(&config.endpoints)
                .map(|a| a.name.clone())
                .collect(),
        )),
        account_url_prefix: config
            .server
            .as_ref()
            .map(|s| crate::wfe::Urls::new(&s.base_url()).account_prefix())
            .unwrap_or_default(),
        sealer,
        crls,
        clock: Arc::new(SystemClock),
        running_config: None,
    })
}

/// CRLs signed on the token directly, with the server stopped.
#[derive(Debug)]
struct OfflineCrls {
    config: Config,
    token: Pkcs11Token,
    store: Store,
}

impl CrlSigning for OfflineCrls {
    fn resign(&self, name: &str) -> Result<CrlRecord, Error> {
        let ca = self
            .config
            .ca(name)
            .ok_or_else(|| Error::malformed(format!("no [[ca]] named {name:?}")))?;
        let certificate = read_certificate(&ca.certificate).map_err(|e| Error::internal(e.0))?;
        let signer = self.token.signer(&ca.key_label, ca.rsa_padding)?;
        let authority = CrlAuthority {
            name: ca.name.clone(),
            certificate,
            signer: Arc::new(signer),
        };
        let lifetime = self
            .config
            .publication
            .as_ref()
            .map_or(DEFAULT_CRL_LIFETIME, |p| p.crl_lifetime);
        sign_offline(&authority, &self.store, lifetime, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_dates_times_and_durations() {
        let now = 1_800_000_000;
        assert_eq!(parse_expiry("90d", now).unwrap(), now + 90 * 86_400);
        assert_eq!(parse_expiry("12h", now).unwrap(), now + 12 * 3600);
        assert_eq!(parse_expiry("2w", now).unwrap(), now + 14 * 86_400);
        assert_eq!(
            parse_expiry("2027-06-30", now).unwrap(),
            parse_rfc3339("2027-06-30T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_expiry("2027-06-30T12:00:00Z", now).unwrap(),
            parse_rfc3339("2027-06-30T12:00:00Z").unwrap()
        );
        for bad in [
            "",
            "d",
            "0d",
            "10y",
            "tomorrow",
            "-5d",
            "99999999999999999999d",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad:?}");
        }
    }
}
