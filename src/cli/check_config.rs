//! `hsm-acme check-config`: everything that can be checked without the token.

use std::path::Path;

use super::{CliError, Report};
use crate::config::{Config, ServerConfig};
use crate::ops::operator::AdminRequest;

pub(super) fn run(out: &mut Report, path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    let mut problems = Vec::new();
    let token = &config.token;
    out.line(format!("configuration {} parses", path.display()));
    out.line(format!(
        "profile {} ({:?}): {}",
        token.profile.module.name, token.profile.module.status, token.profile.module.description
    ));
    if token.module.exists() {
        out.line(format!("module {} exists", token.module.display()));
    } else {
        problems.push(format!("module {} does not exist", token.module.display()));
    }
    out.line(format!("token selected by {}", token.selector));
    match &token.pin_file {
        Some(pin) if pin.contains("${") => {
            out.line(format!("PIN from {pin} (expanded at start-up)"));
        }
        Some(pin) => check_pin_file(out, Path::new(pin), &mut problems),
        None => out.line("no PIN file (the profile must need no login)"),
    }
    for ca in &config.cas {
        let state = if ca.certificate.exists() {
            "certificate present"
        } else {
            "certificate missing: `hsm-acme ca init` creates it"
        };
        out.line(format!(
            "CA {:?}: key {:?} ({}), {}, {} ({})",
            ca.name,
            ca.key_label,
            ca.key_type,
            ca.issuer,
            ca.certificate.display(),
            state
        ));
    }
    if let Some(label) = &config.sealing_key {
        out.line(format!("sealing key {label:?}"));
    }
    if let Some(storage) = &config.storage_path {
        match storage.parent() {
            Some(dir) if dir.as_os_str().is_empty() || dir.is_dir() => {
                out.line(format!("state file {}", storage.display()));
            }
            _ => problems.push(format!(
                "directory of state file {} does not exist",
                storage.display()
            )),
        }
    }
    if let Some(server) = &config.server {
        out.line(format!(
            "ACME at {}/directory (listening on {}){}",
            server.base_url(),
            server.listen,
            server
                .admin_socket
                .as_ref()
                .map(|p| format!(", admin socket {}", p.display()))
                .unwrap_or_default()
        ));
    }
    let base = config
        .server
        .as_ref()
        .map(ServerConfig::base_url)
        .unwrap_or_default();
    for (acme, default) in config
        .acme
        .iter()
        .map(|a| (a, true))
        .chain(config.endpoints.iter().map(|e| (e, false)))
    {
        out.line(format!(
            "ACME endpoint {:?} at {base}/acme/{}/directory{}: issuing CA {:?}, certificates \
             of up to {} days, {}{}",
            acme.name,
            acme.name,
            if default { " and /directory" } else { "" },
            acme.ca,
            acme.validity_days,
            if acme.eab_required {
                "external account binding required"
            } else {
                "open registration (no external account binding required)"
            },
            if acme.enabled { "" } else { "; DISABLED" }
        ));
        if acme.eab_required && config.sealing_key.is_none() {
            out.line(
                "  no [sealing] key: only public-key EAB keys can be created (HMAC keys are \
                 sealed on the token)",
            );
        }
    }
    match &config.publication {
        Some(publication) => out.line(format!(
            "CRLs and CA certificates under {} (served on {}), CRLs valid {} h",
            publication.base_url,
            publication
                .listen
                .map_or_else(|| "another web server".to_owned(), |l| l.to_string()),
            publication.crl_lifetime.as_secs() / 3600
        )),
        None => out.line(
            "no [publication]: certificates carry no CRL distribution point or caIssuers URL",
        ),
    }
    reload_preview(out, &config);
    if problems.is_empty() {
        out.line("configuration OK");
        Ok(())
    } else {
        Err(CliError::msg(problems.join("; ")))
    }
}

fn check_pin_file(out: &mut Report, pin: &Path, problems: &mut Vec<String>) {
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
            out.line(format!("PIN file {} present, mode OK", pin.display()));
        }
        Err(e) => problems.push(format!("PIN file {}: {e}", pin.display())),
    }
}

/// With a server running on this configuration's admin socket: what `systemctl reload`
/// (SIGHUP) would change, and what would wait for a restart.
fn reload_preview(out: &mut Report, config: &Config) {
    let Some(socket) = config
        .server
        .as_ref()
        .and_then(|s| s.admin_socket.as_deref())
    else {
        return;
    };
    let Some(Ok(mut answer)) = crate::ops::admin::send(socket, &AdminRequest::RunningConfig) else {
        out.line("no server answers on the admin socket: nothing to compare a reload with");
        return;
    };
    let text = answer.take_data()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let running = match Config::parse(&config.path, &text) {
        Ok(running) => running,
        Err(e) => {
            out.line(format!(
                "the running server's configuration no longer parses here: {e}"
            ));
            return;
        }
    };
    for change in crate::config::reload_changes(&running, config) {
        out.line(format!("a reload would apply: {change}"));
    }
    for section in crate::config::restart_sections(&running, config) {
        out.line(format!(
            "{section} changed: takes effect only after a restart"
        ));
    }
}
