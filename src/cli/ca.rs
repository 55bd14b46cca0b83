//! `hsm-acme ca init | import`.

use std::fs;
use std::io::Write;
use std::path::Path;

use der::EncodePem;
use der::pem::LineEnding;
use x509_cert::Certificate;

use super::{CaCommand, CliError, Report};
use crate::ca::hierarchy::{
    certificate_request, check_ca_certificate, root_certificate, subordinate_certificate,
};
use crate::ca::verify::verify_certificate;
use crate::config::{CaConfig, CaIssuer, Config};
use crate::hsm::{Pkcs11Token, Signer};

pub(super) fn run(out: &mut Report, config: &Config, command: &CaCommand) -> Result<(), CliError> {
    match command {
        CaCommand::Init => init(out, config),
        CaCommand::Import { ca, cert, chain } => import(out, config, ca, cert, chain.as_deref()),
    }
}

/// Reads one PEM certificate.
pub(super) fn read_certificate(path: &Path) -> Result<Certificate, CliError> {
    let pem = fs::read(path).map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    let mut certs = Certificate::load_pem_chain(&pem)
        .map_err(|e| CliError::msg(format!("{}: not a PEM certificate: {e}", path.display())))?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        n => Err(CliError::msg(format!(
            "{}: holds {n} certificates; expected exactly one",
            path.display()
        ))),
    }
}

/// Reads the configured chain of an externally certified CA (issuer first).
pub(super) fn read_chain(ca: &CaConfig) -> Result<Vec<Certificate>, CliError> {
    let Some(path) = &ca.chain else {
        return Ok(Vec::new());
    };
    if !path.exists() {
        return Ok(Vec::new());
    }
    let pem = fs::read(path).map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    Certificate::load_pem_chain(&pem)
        .map_err(|e| CliError::msg(format!("{}: not PEM certificates: {e}", path.display())))
}

/// Writes `contents` to `path` through a temporary file, so a crash never leaves half a file.
pub(super) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| CliError::msg(format!("writing {}: {e}", path.display())))
}

fn pem(cert: &Certificate) -> Result<String, CliError> {
    Ok(cert.to_pem(LineEnding::LF)?)
}

fn init(out: &mut Report, config: &Config) -> Result<(), CliError> {
    if config.cas.is_empty() {
        return Err(CliError::msg("the configuration defines no [[ca]]"));
    }
    let token = Pkcs11Token::open(&config.token)?;
    super::hsm::ensure_keys(out, config, &token)?;
    let mut made: Vec<(String, Certificate)> = Vec::new();
    let mut pending_csr = Vec::new();
    for ca in &config.cas {
        let signer = token.signer(&ca.key_label, ca.rsa_padding)?;
        if ca.certificate.exists() {
            let cert = read_certificate(&ca.certificate)?;
            check_ca_certificate(&cert, signer.public_key()).map_err(|e| {
                CliError::msg(format!(
                    "CA {:?}: existing {} does not fit: {e}",
                    ca.name,
                    ca.certificate.display()
                ))
            })?;
            out.line(format!(
                "CA {:?}: certificate {} already present",
                ca.name,
                ca.certificate.display()
            ));
            made.push((ca.name.clone(), cert));
            continue;
        }
        let cert = match &ca.issuer {
            CaIssuer::SelfSigned => root_certificate(&ca.subject, ca.validity, &signer)?,
            CaIssuer::Ca(parent) => {
                let parent_ca = config
                    .ca(parent)
                    .ok_or_else(|| CliError::msg(format!("CA {parent:?} is not configured")))?;
                let Some((_, parent_cert)) = made.iter().find(|(name, _)| name == parent) else {
                    out.line(format!(
                        "CA {:?}: waiting for its issuer {parent:?} to be certified",
                        ca.name
                    ));
                    continue;
                };
                let parent_signer = token.signer(&parent_ca.key_label, parent_ca.rsa_padding)?;
                subordinate_certificate(
                    &ca.subject,
                    signer.public_key(),
                    ca.validity,
                    ca.path_len,
                    config.distribution(parent),
                    parent_cert,
                    &parent_signer,
                )?
            }
            CaIssuer::External => {
                let csr_path = ca.certificate.with_extension("csr");
                let csr = certificate_request(&ca.subject, &signer)?;
                write_atomically(&csr_path, csr.to_pem(LineEnding::LF)?.as_bytes())?;
                out.line(format!(
                    "CA {:?}: wrote {}; have it certified, then run\n  hsm-acme ca import --ca {} --cert CERT.pem --chain ISSUER-CHAIN.pem",
                    ca.name,
                    csr_path.display(),
                    ca.name
                ));
                pending_csr.push(ca.name.clone());
                continue;
            }
        };
        write_atomically(&ca.certificate, pem(&cert)?.as_bytes())?;
        out.line(format!(
            "CA {:?}: wrote {} ({}, {}, valid until {})",
            ca.name,
            ca.certificate.display(),
            ca.subject_text,
            ca.issuer,
            cert.tbs_certificate().validity().not_after
        ));
        made.push((ca.name.clone(), cert));
    }
    if pending_csr.is_empty() {
        out.line(format!(
            "CA hierarchy complete on token {:?}",
            token.label()
        ));
    }
    Ok(())
}

fn import(
    out: &mut Report,
    config: &Config,
    name: &str,
    cert_path: &Path,
    chain: Option<&Path>,
) -> Result<(), CliError> {
    let ca = config
        .ca(name)
        .ok_or_else(|| CliError::msg(format!("no [[ca]] named {name:?} in the configuration")))?;
    if ca.issuer != CaIssuer::External {
        return Err(CliError::msg(format!(
            "CA {name:?} is {}; only a CA with issuer = \"external\" is imported",
            ca.issuer
        )));
    }
    let chain_target = ca.chain.as_ref().ok_or_else(|| {
        CliError::msg(format!(
            "CA {name:?} needs `chain = \"…\"` in its [[ca]] section"
        ))
    })?;
    let token = Pkcs11Token::open(&config.token)?;
    let signer = token.signer(&ca.key_label, ca.rsa_padding)?;
    let cert = read_certificate(cert_path)?;
    check_ca_certificate(&cert, signer.public_key())
        .map_err(|e| CliError::msg(format!("{}: {e}", cert_path.display())))?;
    let chain_pem = match chain {
        Some(path) => {
            fs::read(path).map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?
        }
        None => fs::read(chain_target).map_err(|e| {
            CliError::msg(format!("{}: {e} (give --chain)", chain_target.display()))
        })?,
    };
    let issuers = Certificate::load_pem_chain(&chain_pem)
        .map_err(|e| CliError::msg(format!("chain: not PEM certificates: {e}")))?;
    // Each certificate must be signed by the next; the last must be self-signed.
    let mut child = &cert;
    for issuer in &issuers {
        if child.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
            return Err(CliError::msg(format!(
                "chain: {} is not the issuer of {}",
                issuer.tbs_certificate().subject(),
                child.tbs_certificate().subject()
            )));
        }
        verify_certificate(child, issuer.tbs_certificate().subject_public_key_info()).map_err(
            |e| CliError::msg(format!("chain: {}: {e}", child.tbs_certificate().subject())),
        )?;
        child = issuer;
    }
    let root = issuers.last().unwrap_or(&cert);
    verify_certificate(root, root.tbs_certificate().subject_public_key_info()).map_err(|_| {
        CliError::msg("chain: does not end in a self-signed root certificate".to_owned())
    })?;
    let mut chain_out = String::new();
    for issuer in &issuers {
        chain_out.push_str(&pem(issuer)?);
    }
    write_atomically(chain_target, chain_out.as_bytes())?;
    write_atomically(&ca.certificate, pem(&cert)?.as_bytes())?;
    out.line(format!(
        "CA {name:?}: imported {} (chain of {} up to {}) into {}",
        cert.tbs_certificate().subject(),
        issuers.len(),
        root.tbs_certificate().subject(),
        ca.certificate.display()
    ));
    Ok(())
}
