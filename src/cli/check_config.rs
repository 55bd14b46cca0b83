//! `hsm-acme check-config`: everything that can be checked without the token.

use std::path::Path;

use super::CliError;
use crate::config::Config;

pub(super) fn run(path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    let mut problems = Vec::new();
    let token = &config.token;
    println!("configuration {} parses", path.display());
    println!(
        "profile {} ({:?}): {}",
        token.profile.module.name, token.profile.module.status, token.profile.module.description
    );
    if token.module.exists() {
        println!("module {} exists", token.module.display());
    } else {
        problems.push(format!("module {} does not exist", token.module.display()));
    }
    println!("token selected by {}", token.selector);
    match &token.pin_file {
        Some(pin) if pin.contains("${") => {
            println!("PIN from {pin} (expanded at start-up)");
        }
        Some(pin) => check_pin_file(Path::new(pin), &mut problems),
        None => println!("no PIN file (the profile must need no login)"),
    }
    for ca in &config.cas {
        let state = if ca.certificate.exists() {
            "certificate present"
        } else {
            "certificate missing: `hsm-acme ca init` creates it"
        };
        println!(
            "CA {:?}: key {:?} ({}), {}, {} ({})",
            ca.name,
            ca.key_label,
            ca.key_type,
            ca.issuer,
            ca.certificate.display(),
            state
        );
    }
    if let Some(label) = &config.sealing_key {
        println!("sealing key {label:?}");
    }
    if let Some(storage) = &config.storage_path {
        match storage.parent() {
            Some(dir) if dir.as_os_str().is_empty() || dir.is_dir() => {
                println!("state file {}", storage.display());
            }
            _ => problems.push(format!(
                "directory of state file {} does not exist",
                storage.display()
            )),
        }
    }
    if let Some(server) = &config.server {
        println!(
            "ACME at {}/directory (listening on {}){}",
            server.base_url(),
            server.listen,
            server
                .admin_socket
                .as_ref()
                .map(|p| format!(", admin socket {}", p.display()))
                .unwrap_or_default()
        );
    }
    if let Some(acme) = &config.acme {
        println!(
            "ACME profile {:?}: issuing CA {:?}, certificates of up to {} days, {}",
            acme.name,
            acme.ca,
            acme.validity_days,
            if acme.eab_required {
                "external account binding required"
            } else {
                "open registration (no external account binding required)"
            }
        );
        if acme.eab_required && config.sealing_key.is_none() {
            println!(
                "  no [sealing] key: only public-key EAB keys can be created (HMAC keys are \
                 sealed on the token)"
            );
        }
    }
    match &config.publication {
        Some(publication) => println!(
            "CRLs and CA certificates under {} (served on {}), CRLs valid {} h",
            publication.base_url,
            publication
                .listen
                .map_or_else(|| "another web server".to_owned(), |l| l.to_string()),
            publication.crl_lifetime.as_secs() / 3600
        ),
        None => println!(
            "no [publication]: certificates carry no CRL distribution point or caIssuers URL"
        ),
    }
    if problems.is_empty() {
        println!("configuration OK");
        Ok(())
    } else {
        Err(CliError::msg(problems.join("; ")))
    }
}

fn check_pin_file(pin: &Path, problems: &mut Vec<String>) {
    match std::fs::metadata(pin) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o077 != 0 {
                    problems.push(format!(
                        "PIN file {} is readable by group or others",
                        pin.display()
                    ));
                    return;
                }
            }
            let _ = meta;
            println!("PIN file {} present, mode OK", pin.display());
        }
        Err(e) => problems.push(format!("PIN file {}: {e}", pin.display())),
    }
}
