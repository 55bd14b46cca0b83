//! `hsm-acme endpoint list|show`: the ACME endpoints the configuration defines, read from
//! the file alone (no token, no state file).

use serde_json::{Value, json};

use super::{CliError, EndpointCommand};
use crate::config::{AcmeConfig, Config};

/// Prints the endpoints, or one in full; JSON with `--json`.
pub(super) fn run(config: &Config, command: &EndpointCommand, json: bool) -> Result<(), CliError> {
    let base = config
        .server
        .as_ref()
        .map(crate::config::ServerConfig::base_url)
        .unwrap_or_default();
    let endpoints: Vec<(&AcmeConfig, bool)> = config
        .acme
        .iter()
        .map(|a| (a, true))
        .chain(config.endpoints.iter().map(|e| (e, false)))
        .collect();
    match command {
        EndpointCommand::List => {
            let described: Vec<Value> = endpoints
                .iter()
                .map(|(e, default)| describe(config, e, *default, &base))
                .collect();
            if json {
                println!("{}", Value::Array(described));
            } else {
                println!(
                    "{:<16} {:<8} {:<14} {:<5} DIRECTORY",
                    "NAME", "ENABLED", "CA", "EAB"
                );
                for d in &described {
                    println!(
                        "{:<16} {:<8} {:<14} {:<5} {}",
                        d["name"].as_str().unwrap_or_default(),
                        d["enabled"].to_string(),
                        d["ca"].as_str().unwrap_or_default(),
                        d["eab_required"].to_string(),
                        d["directory"].as_str().unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
        EndpointCommand::Show { name } => {
            let (endpoint, default) =
                endpoints
                    .iter()
                    .find(|(e, _)| &e.name == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            endpoints.iter().map(|(e, _)| e.name.as_str()).collect();
                        CliError::msg(format!(
                            "no endpoint {name:?}; the configuration defines {}",
                            names.join(", ")
                        ))
                    })?;
            let described = describe(config, endpoint, *default, &base);
            if json {
                println!("{described}");
            } else if let Value::Object(fields) = described {
                for (key, value) in fields {
                    println!("{key:<26} {value}");
                }
            }
            Ok(())
        }
    }
}

fn describe(config: &Config, e: &AcmeConfig, default: bool, base: &str) -> Value {
    let profiles: Vec<Value> = config
        .profiles_of(e)
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "validity_days": p.validity.as_secs() / 86_400,
                "max_validity_days": p.max_validity.as_secs() / 86_400,
                "subject_attributes": p.subject.copy.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": e.name,
        "enabled": e.enabled,
        "directory": format!("{base}/acme/{}/directory", e.name),
        "default_directory": default.then(|| format!("{base}/directory")),
        "ca": e.ca,
        "eab_required": e.eab_required,
        "approve_accounts": e.account_approval.is_some(),
        "challenges": e.challenges,
        "wildcards": e.wildcards,
        "ip_identifiers": e.ip_identifiers,
        "allowed_domains": e.allowed_domains,
        "identifier_allow_rules": e.identifier_rules.allow.len(),
        "identifier_deny_rules": e.identifier_rules.deny.len(),
        "pre_authorization": e.pre_authorization,
        "identifiers_per_order": e
            .identifiers_per_order
            .unwrap_or(config.rate_limits.identifiers_per_order),
        "retry_after_seconds": e.retry_after,
        "single_active_certificate": e.single_active_certificate,
        "terms_of_service": e.terms_of_service,
        "terms_of_service_version": e.terms.as_ref().map(|t| t.version.clone()),
        "certificate_profiles": profiles,
    })
}
