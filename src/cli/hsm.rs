//! `hsm-acme hsm info | keygen | check`.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{CliError, HsmCommand, Report};
use crate::ca::verify::{verify_certificate, verify_signature};
use crate::config::{CaIssuer, Config};
use crate::hsm::{KeyReport, KeyType, Pkcs11Token, Sealer, Signer};

/// Key type name for the AES sealing key on the command line.
const AES_256: &str = "aes-256";

pub(super) fn run(out: &mut Report, config: &Config, command: &HsmCommand) -> Result<(), CliError> {
    match command {
        HsmCommand::Info => info(out, config),
        HsmCommand::Keygen { label, key_type } => {
            let token = Pkcs11Token::open(&config.token)?;
            match (label, key_type) {
                (Some(label), Some(key_type)) => keygen_one(out, &token, label, key_type),
                _ => {
                    let made = ensure_keys(out, config, &token)?;
                    if made == 0 {
                        out.line(format!(
                            "every configured key already exists on token {:?}",
                            token.label()
                        ));
                    }
                    Ok(())
                }
            }
        }
        HsmCommand::Check => check(out, config),
    }
}

fn info(out: &mut Report, config: &Config) -> Result<(), CliError> {
    let report = Pkcs11Token::report(&config.token)?;
    let profile = &config.token.profile.module;
    out.line(format!(
        "profile:   {} ({:?}, {})",
        profile.name, profile.status, profile.description
    ));
    out.line(format!("module:    {}", report.library));
    out.line(format!("cryptoki:  {}", report.cryptoki_version));
    out.line(format!("token:     {}", report.token));
    out.line(format!("sessions:  {}", report.sessions));
    out.line(format!("flags:     {}", report.flags.join(", ")));
    out.line(format!("mechanisms ({}):", report.mechanisms.len()));
    for m in &report.mechanisms {
        out.line(format!(
            "  {:<32} keys {:>5}..{:<6} {}",
            m.name, m.key_sizes.0, m.key_sizes.1, m.usage
        ));
    }
    if report.missing.is_empty() {
        out.line(format!(
            "every mechanism profile {} relies on is present",
            profile.name
        ));
        Ok(())
    } else {
        Err(CliError::msg(format!(
            "the token lacks mechanisms profile {} relies on: {}",
            profile.name,
            report.missing.join(", ")
        )))
    }
}

fn keygen_one(
    out: &mut Report,
    token: &Pkcs11Token,
    label: &str,
    key_type: &str,
) -> Result<(), CliError> {
    if key_type == AES_256 {
        token.generate_sealing_key(label)?;
    } else {
        let key_type: KeyType = key_type
            .parse()
            .map_err(|e: String| CliError::msg(format!("{e}, or {AES_256} for a sealing key")))?;
        token.generate_key_pair(label, key_type)?;
    }
    out.line(format!(
        "generated {key_type} key {label:?} on token {:?} (sensitive, not extractable)",
        token.label()
    ));
    Ok(())
}

/// Generates every configured key that does not exist yet; returns how many it made.
pub(super) fn ensure_keys(
    out: &mut Report,
    config: &Config,
    token: &Pkcs11Token,
) -> Result<usize, CliError> {
    let mut made = 0;
    for ca in &config.cas {
        if !token.has_label(&ca.key_label)? {
            token.generate_key_pair(&ca.key_label, ca.key_type)?;
            out.line(format!(
                "generated {} key {:?} for CA {:?}",
                ca.key_type, ca.key_label, ca.name
            ));
            made += 1;
        }
    }
    if let Some(label) = &config.sealing_key
        && !token.has_label(label)?
    {
        token.generate_sealing_key(label)?;
        out.line(format!("generated {AES_256} sealing key {label:?}"));
        made += 1;
    }
    Ok(made)
}

fn print_report(out: &mut Report, report: &KeyReport) {
    let attrs: Vec<String> = report
        .attributes
        .iter()
        .map(|a| match a.value {
            Some(v) => format!("{}={v}", a.name),
            None => format!("{}=?", a.name),
        })
        .collect();
    out.line(format!("  CKA_ID {}", report.id_hex));
    out.line(format!("  {}", attrs.join(" ")));
    for warning in &report.warnings {
        out.line(format!("  warning: {warning}"));
    }
}

fn check(out: &mut Report, config: &Config) -> Result<(), CliError> {
    let token = Pkcs11Token::open(&config.token)?;
    out.line(format!(
        "token {:?} via profile {} ({} sessions)",
        token.label(),
        config.token.profile.module.name,
        token.session_capacity()
    ));
    let mut failures = Vec::new();
    let mut checked = 0;
    for ca in &config.cas {
        checked += 1;
        out.line(format!(
            "key {:?} (CA {:?}, {}):",
            ca.key_label, ca.name, ca.key_type
        ));
        match check_ca_key(out, config, &token, ca) {
            Ok(()) => out.line("  OK"),
            Err(e) => {
                out.line(format!("  FAILED: {}", e.0));
                failures.push(format!("{}: {}", ca.key_label, e.0));
            }
        }
    }
    if let Some(label) = &config.sealing_key {
        checked += 1;
        out.line(format!("key {label:?} (sealing, {AES_256}):"));
        match check_sealing_key(out, &token, label) {
            Ok(()) => out.line("  OK"),
            Err(e) => {
                out.line(format!("  FAILED: {}", e.0));
                failures.push(format!("{label}: {}", e.0));
            }
        }
    }
    if failures.is_empty() {
        out.line(format!("all {checked} keys OK"));
        Ok(())
    } else {
        Err(CliError::msg(format!(
            "{} of {checked} keys failed the check: {}",
            failures.len(),
            failures.join("; ")
        )))
    }
}

fn check_ca_key(
    out: &mut Report,
    config: &Config,
    token: &Pkcs11Token,
    ca: &crate::config::CaConfig,
) -> Result<(), CliError> {
    let report = token.inspect(&ca.key_label, false)?;
    print_report(out, &report);
    if let Some(reason) = report.refusals.first() {
        return Err(CliError::msg(reason.clone()));
    }
    if report.key_type != Some(ca.key_type) {
        return Err(CliError::msg(format!(
            "the key on the token is {}, the configuration says {}",
            report
                .key_type
                .map_or("of an unknown type".into(), |k| k.to_string()),
            ca.key_type
        )));
    }
    let signer = token.signer(&ca.key_label, ca.rsa_padding)?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let message = format!("hsm-acme self-test {} {nonce}", ca.key_label);
    let signature = signer.sign(message.as_bytes())?;
    verify_signature(
        signer.public_key(),
        &signer.algorithm(),
        message.as_bytes(),
        &signature,
    )
    .map_err(|e| CliError::msg(format!("test signature: {e}")))?;
    out.line(format!(
        "  test signature ({:?}) verified in software",
        signer.scheme()
    ));

    if !ca.certificate.exists() {
        out.line(format!(
            "  certificate {}: not created yet (run `hsm-acme ca init`)",
            ca.certificate.display()
        ));
        return Ok(());
    }
    let cert = super::ca::read_certificate(&ca.certificate)?;
    crate::ca::hierarchy::check_ca_certificate(&cert, signer.public_key())
        .map_err(|e| CliError::msg(format!("certificate {}: {e}", ca.certificate.display())))?;
    let issuer_key = match &ca.issuer {
        CaIssuer::SelfSigned => Some(signer.public_key().clone()),
        CaIssuer::Ca(parent) => config
            .ca(parent)
            .filter(|p| p.certificate.exists())
            .map(|p| super::ca::read_certificate(&p.certificate))
            .transpose()?
            .map(|p| p.tbs_certificate().subject_public_key_info().clone()),
        CaIssuer::External => super::ca::read_chain(ca)?
            .first()
            .map(|p| p.tbs_certificate().subject_public_key_info().clone()),
    };
    if let Some(issuer_key) = issuer_key {
        verify_certificate(&cert, &issuer_key).map_err(|e| {
            CliError::msg(format!(
                "certificate {}: issuer signature: {e}",
                ca.certificate.display()
            ))
        })?;
    }
    let not_after = cert.tbs_certificate().validity().not_after;
    out.line(format!(
        "  certificate {}: matches the key, {}, valid until {not_after}",
        ca.certificate.display(),
        ca.issuer
    ));
    Ok(())
}

fn check_sealing_key(out: &mut Report, token: &Pkcs11Token, label: &str) -> Result<(), CliError> {
    let report = token.inspect(label, true)?;
    print_report(out, &report);
    if let Some(reason) = report.refusals.first() {
        return Err(CliError::msg(reason.clone()));
    }
    let sealer = token.sealer(label)?;
    let secret = b"hsm-acme sealing self-test";
    let sealed = sealer.seal(secret, b"self-test")?;
    let opened = sealer.unseal(&sealed, b"self-test")?;
    if opened.as_slice() != secret {
        return Err(CliError::msg("unsealed data differs from what was sealed"));
    }
    if sealer.unseal(&sealed, b"other").is_ok() {
        return Err(CliError::msg(
            "unsealing with other associated data succeeded",
        ));
    }
    out.line("  AES-GCM seal/unseal round trip OK; wrong associated data refused");
    Ok(())
}
