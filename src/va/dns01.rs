//! dns-01 validation (RFC 8555 §8.4): a TXT record at `_acme-challenge.NAME` holding the
//! base64url SHA-256 digest of the key authorization.
//!
//! Any one of several TXT records may match (clients validating a name and its wildcard at
//! once publish two). Failure details name the queried domain and what was found.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::resolver::Resolver;
use super::{VaConfig, ValidationFailure};
use crate::acme::Identifier;

/// The label prepended to the validated name (RFC 8555 §8.4).
const LABEL: &str = "_acme-challenge";

/// The TXT value a client publishes for `key_authorization`: base64url (no padding) of its
/// SHA-256 digest (RFC 8555 §8.4).
pub fn txt_record_value(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

/// Validates a dns-01 challenge for `identifier`. A wildcard identifier (`*.example.net`) is
/// validated at its base name (RFC 8555 §7.1.3); IP identifiers cannot use dns-01
/// (RFC 8738 §7).
pub async fn validate_dns01(
    config: &VaConfig,
    resolver: &dyn Resolver,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    if identifier.kind != "dns" {
        return Err(ValidationFailure::Unauthorized(format!(
            "dns-01 cannot validate {identifier}: only dns identifiers (RFC 8738 §7)"
        )));
    }
    let base = identifier
        .value
        .strip_prefix("*.")
        .unwrap_or(&identifier.value);
    let base = base.trim_end_matches('.');
    if base.is_empty() {
        return Err(ValidationFailure::Unauthorized(format!(
            "dns-01 cannot validate {identifier}: empty name"
        )));
    }
    let name = format!("{LABEL}.{base}");
    let records = tokio::time::timeout(config.request_timeout, resolver.lookup_txt(&name))
        .await
        .map_err(|_| {
            ValidationFailure::Dns(format!(
                "TXT lookup of {name}: no answer within {:?}",
                config.request_timeout
            ))
        })??;
    if records.is_empty() {
        return Err(ValidationFailure::Unauthorized(format!(
            "no TXT record found at {name}"
        )));
    }
    let expected = txt_record_value(key_authorization);
    // The digest is public: a constant-time comparison would protect nothing.
    if records.iter().any(|r| r == &expected) {
        return Ok(());
    }
    let shown: String = records
        .first()
        .map(|r| r.chars().take(100).collect())
        .unwrap_or_default();
    Err(ValidationFailure::IncorrectResponse(format!(
        "{} TXT record(s) found at {name}, none matches: expected {expected:?}, got for example {shown:?}",
        records.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::va::testing::ScriptedDns;

    const KEY_AUTH: &str = "tok_en-123.thumbprint";

    async fn run(dns: &ScriptedDns, identifier: &Identifier) -> Result<(), ValidationFailure> {
        validate_dns01(&VaConfig::default(), dns, identifier, KEY_AUTH).await
    }

    #[test]
    fn the_txt_value_is_the_base64url_sha256_of_the_key_authorization() {
        // RFC 8555 §8.4 example-free check against an independent computation:
        // SHA-256("abc") = ba7816bf…, base64url without padding.
        assert_eq!(
            txt_record_value("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert!(!txt_record_value(KEY_AUTH).contains('='));
    }

    #[tokio::test]
    async fn any_matching_record_among_several_validates() {
        let dns = ScriptedDns::default().txt(
            "_acme-challenge.www.example.test",
            &["unrelated", &txt_record_value(KEY_AUTH), "other"],
        );
        run(&dns, &Identifier::dns("www.example.test"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_wildcard_is_validated_at_its_base_name() {
        let dns = ScriptedDns::default().txt(
            "_acme-challenge.example.test",
            &[&txt_record_value(KEY_AUTH)],
        );
        run(&dns, &Identifier::dns("*.example.test")).await.unwrap();
    }

    #[tokio::test]
    async fn no_record_is_unauthorized_and_names_the_domain() {
        let err = run(&ScriptedDns::default(), &Identifier::dns("x.example.test"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ValidationFailure::Unauthorized(
                "no TXT record found at _acme-challenge.x.example.test".into()
            )
        );
    }

    #[tokio::test]
    async fn wrong_values_are_an_incorrect_response_with_the_count() {
        let dns = ScriptedDns::default().txt("_acme-challenge.x.example.test", &["a", "b"]);
        let err = run(&dns, &Identifier::dns("x.example.test"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ValidationFailure::IncorrectResponse(m)
                if m.contains("2 TXT record(s)") && m.contains("_acme-challenge.x.example.test")),
            "{err:?}"
        );
        assert_eq!(err.problem_type(), "incorrectResponse");
    }

    #[tokio::test]
    async fn a_dns_failure_is_a_dns_problem() {
        let dns = ScriptedDns::default().servfail("_acme-challenge.x.example.test");
        let err = run(&dns, &Identifier::dns("x.example.test"))
            .await
            .unwrap_err();
        assert_eq!(err.problem_type(), "dns", "{err:?}");
    }

    #[tokio::test]
    async fn ip_identifiers_are_refused() {
        let ip = Identifier {
            kind: "ip".into(),
            value: "192.0.2.1".into(),
        };
        let err = run(&ScriptedDns::default(), &ip).await.unwrap_err();
        assert!(matches!(err, ValidationFailure::Unauthorized(_)), "{err:?}");
    }
}
