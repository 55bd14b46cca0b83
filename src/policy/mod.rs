//! What this CA is willing to issue for: identifier syntax and scope, challenge types per
//! identifier, requested validity. The RA asks; nothing here does I/O.

pub mod certificate;
pub mod network;
pub mod pattern;
pub mod rules;
pub mod suffix;

use std::collections::BTreeSet;

use crate::acme::Identifier;
use crate::acme::problem::{ProblemType, Subproblem};
use crate::error::{Error, ErrorKind};

/// The most identifiers one order may carry.
const DEFAULT_MAX_IDENTIFIERS: usize = 100;

/// Issuance policy of one ACME profile.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Names must equal or end in one of these (empty: any public-looking name).
    pub allowed_domains: Vec<String>,
    /// Most identifiers per order.
    pub max_identifiers: usize,
    /// Longest certificate lifetime, seconds.
    pub max_validity: u64,
    /// How far back a requested notBefore may lie, seconds.
    pub max_backdate: u64,
    /// Whether `*.name` identifiers are accepted (RFC 8555 §7.1.3).
    pub wildcards: bool,
    /// Whether `ip` identifiers are accepted (RFC 8738).
    pub ip_identifiers: bool,
    /// Offer http-01 for wildcard authorizations too: a deliberate divergence from
    /// RFC 8555 §8.3/§7.1.3 practice for private networks without DNS automation.
    pub wildcard_http01: bool,
    /// Where the validator may connect: an `ip` identifier outside it could never be
    /// validated, and must not make the validator knock on the CA's own network.
    pub validation_networks: network::NetworkPolicy,
    /// The challenge types the endpoint offers, of [`CHALLENGE_TYPES`].
    pub challenge_types: Vec<&'static str>,
    /// The endpoint's identifier allow and deny lists.
    pub identifier_rules: rules::IdentifierRules,
}

/// Every challenge type this CA validates.
pub const CHALLENGE_TYPES: [&str; 3] = ["http-01", "dns-01", "tls-alpn-01"];

impl Default for Policy {
    fn default() -> Self {
        Self {
            allowed_domains: Vec::new(),
            max_identifiers: DEFAULT_MAX_IDENTIFIERS,
            max_validity: 90 * 86_400,
            max_backdate: 86_400,
            wildcards: true,
            ip_identifiers: true,
            wildcard_http01: false,
            validation_networks: network::NetworkPolicy::default(),
            challenge_types: CHALLENGE_TYPES.to_vec(),
            identifier_rules: rules::IdentifierRules::default(),
        }
    }
}

impl Policy {
    /// Normalises and checks an order's identifiers (RFC 8555 §7.4). Every bad identifier
    /// is reported, each as a subproblem (§6.7.1).
    pub fn check_identifiers(&self, identifiers: &[Identifier]) -> Result<Vec<Identifier>, Error> {
        if identifiers.is_empty() {
            return Err(Error::malformed("the order has no identifiers"));
        }
        if identifiers.len() > self.max_identifiers {
            return Err(Error::new(
                ErrorKind::RejectedIdentifier,
                format!(
                    "an order may carry at most {} identifiers",
                    self.max_identifiers
                ),
            ));
        }
        let mut out = BTreeSet::new();
        let mut problems = Vec::new();
        for identifier in identifiers {
            match self.check_one(identifier) {
                Ok(normal) => {
                    if let Some(reason) = self.identifier_rules.refusal(&normal) {
                        problems.push(Subproblem::new(
                            ProblemType::RejectedIdentifier,
                            reason,
                            identifier.clone(),
                        ));
                        continue;
                    }
                    let (base, wildcard) = match normal.wildcard_base() {
                        Some(base) => (Identifier::dns(base), true),
                        None => (normal.clone(), false),
                    };
                    if self.challenges_for(&base, wildcard).is_empty() {
                        problems.push(Subproblem::new(
                            ProblemType::RejectedIdentifier,
                            format!(
                                "none of the challenge types this endpoint offers ({}) can \
                                 validate {}",
                                self.challenge_types.join(", "),
                                normal.value
                            ),
                            identifier.clone(),
                        ));
                    } else {
                        out.insert(normal);
                    }
                }
                Err((kind, detail)) => {
                    problems.push(Subproblem::new(kind, detail, identifier.clone()));
                }
            }
        }
        match problems.as_slice() {
            [] => Ok(out.into_iter().collect()),
            [one] => {
                let kind = if one.kind == ProblemType::UnsupportedIdentifier.urn() {
                    ErrorKind::UnsupportedIdentifier
                } else {
                    ErrorKind::RejectedIdentifier
                };
                Err(
                    Error::new(kind, format!("{}: {}", one.identifier.value, one.detail))
                        .with_subproblems(problems),
                )
            }
            many => Err(Error::new(
                ErrorKind::RejectedIdentifier,
                format!("{} identifiers were refused; see subproblems", many.len()),
            )
            .with_subproblems(problems)),
        }
    }

    fn check_one(&self, identifier: &Identifier) -> Result<Identifier, (ProblemType, String)> {
        match identifier.kind.as_str() {
            "dns" => self.check_dns(&identifier.value),
            "ip" if self.ip_identifiers => {
                let checked = check_ip(&identifier.value)?;
                match checked.ip_addr() {
                    Some(ip) if self.validation_networks.permits(ip) => Ok(checked),
                    _ => Err((
                        ProblemType::RejectedIdentifier,
                        format!(
                            "{} is in a network this CA does not validate",
                            identifier.value
                        ),
                    )),
                }
            }
            other => Err((
                ProblemType::UnsupportedIdentifier,
                format!(
                    "identifier type {other:?} is not supported; use {}",
                    if self.ip_identifiers {
                        "\"dns\" or \"ip\""
                    } else {
                        "\"dns\""
                    }
                ),
            )),
        }
    }

    fn check_dns(&self, value: &str) -> Result<Identifier, (ProblemType, String)> {
        let name = value.to_ascii_lowercase();
        let rejected = |e: String| (ProblemType::RejectedIdentifier, e);
        // RFC 8555 §7.1.3: a wildcard is "*." followed by the name it covers, nothing else.
        let base = match name.strip_prefix("*.") {
            Some(_) if !self.wildcards => {
                return Err(rejected(
                    "wildcard names are not issued by this profile".into(),
                ));
            }
            Some(base) => base,
            None => &name,
        };
        if base.contains('*') {
            return Err(rejected(
                "\"*\" is only allowed as the whole leftmost label".into(),
            ));
        }
        check_dns_name(base).map_err(rejected)?;
        if !self.allowed_domains.is_empty()
            && !self
                .allowed_domains
                .iter()
                .any(|d| base == d || base.ends_with(&format!(".{d}")))
        {
            return Err(rejected(format!(
                "{name} is outside the domains this CA issues for"
            )));
        }
        Ok(Identifier::dns(name))
    }

    /// The challenge types offered for an authorization of `identifier`: RFC 8555 §8.3 and
    /// §8.4 for names, RFC 8737 §3 and RFC 8738 §7 (never dns-01) for addresses, and only
    /// dns-01 for wildcards (RFC 8555 §7.1.3; BR §3.2.2.4).
    pub fn challenges_for(&self, identifier: &Identifier, wildcard: bool) -> Vec<&'static str> {
        let possible = match (identifier.kind.as_str(), wildcard) {
            ("ip", _) => vec!["http-01", "tls-alpn-01"],
            (_, true) if self.wildcard_http01 => vec!["dns-01", "http-01"],
            (_, true) => vec!["dns-01"],
            _ => vec!["http-01", "dns-01", "tls-alpn-01"],
        };
        possible
            .into_iter()
            .filter(|kind| self.challenge_types.contains(kind))
            .collect()
    }

    /// Checks a requested validity window (RFC 8555 §7.4 notBefore/notAfter) at `now`.
    /// Returns the window to issue with.
    pub fn check_validity(
        &self,
        not_before: Option<u64>,
        not_after: Option<u64>,
        now: u64,
    ) -> Result<(u64, u64), Error> {
        self.check_validity_within(
            not_before,
            not_after,
            now,
            self.max_validity,
            self.max_validity,
        )
    }

    /// As [`Policy::check_validity`], for a certificate profile that issues for `default`
    /// seconds when the order asks for nothing, and for at most `max`.
    pub fn check_validity_within(
        &self,
        not_before: Option<u64>,
        not_after: Option<u64>,
        now: u64,
        default: u64,
        max: u64,
    ) -> Result<(u64, u64), Error> {
        let start = not_before.unwrap_or(now);
        if start + self.max_backdate < now {
            return Err(Error::malformed("notBefore lies too far in the past"));
        }
        if start > now + max {
            return Err(Error::malformed("notBefore lies too far in the future"));
        }
        let end = not_after.unwrap_or(start + default.min(max));
        if end <= start {
            return Err(Error::malformed("notAfter must be later than notBefore"));
        }
        if end - start > max {
            return Err(Error::malformed(format!(
                "the requested validity exceeds the {} days this profile allows",
                max / 86_400
            )));
        }
        Ok((start, end))
    }
}

/// RFC 8738 §3: an address in its canonical text form (RFC 5952 for IPv6); addresses that
/// name no single host are refused.
fn check_ip(value: &str) -> Result<Identifier, (ProblemType, String)> {
    let rejected = |e: String| (ProblemType::RejectedIdentifier, e);
    let ip: std::net::IpAddr = value
        .parse()
        .map_err(|_| rejected(format!("{value:?} is not an IPv4 or IPv6 address")))?;
    let unusable = match ip {
        std::net::IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        std::net::IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if unusable {
        return Err(rejected(format!("{ip} does not name a single host")));
    }
    Ok(Identifier::ip(ip))
}

/// RFC 1035 §2.3.1 preferred name syntax (LDH labels), as CA/B Forum BR §3.2.2.4 expects.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("a DNS name is 1 to 253 characters long".into());
    }
    if name.ends_with('.') {
        return Err("a DNS name must not end with a dot".into());
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address is not a DNS name".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("a DNS name needs at least two labels".into());
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("label {label:?} must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "label {label:?} has characters other than a-z, 0-9 and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label must not be all digits".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(v: &str) -> Identifier {
        Identifier::dns(v)
    }

    #[test]
    fn names_are_lowercased_deduplicated_and_sorted() {
        let policy = Policy::default();
        let ids = policy
            .check_identifiers(&[
                dns("B.example.test"),
                dns("a.example.test"),
                dns("b.EXAMPLE.test"),
            ])
            .unwrap();
        assert_eq!(ids, [dns("a.example.test"), dns("b.example.test")]);
    }

    #[test]
    fn bad_names_are_refused_with_one_subproblem_each() {
        let policy = Policy::default();
        let bad = [
            "*.*.example.test",
            "a.*.example.test",
            "*example.test",
            "*.test",
            "example",
            "ex ample.test",
            "-a.test",
            "a-.test",
            "a..test",
            "192.0.2.1",
            "a.test.",
            "a.123",
        ];
        for name in bad {
            let err = policy.check_identifiers(&[dns(name)]).unwrap_err();
            assert_eq!(err.kind, ErrorKind::RejectedIdentifier, "{name}");
            assert_eq!(err.subproblems.len(), 1, "{name}");
        }
        let err = policy
            .check_identifiers(&[dns("ok.test"), dns("bad_name.test"), dns("x")])
            .unwrap_err();
        assert_eq!(err.subproblems.len(), 2);
        assert_eq!(err.subproblems[0].identifier.value, "bad_name.test");
    }

    #[test]
    fn scope_is_enforced_for_names_and_wildcards() {
        let policy = Policy {
            allowed_domains: vec!["example.net".into()],
            ..Policy::default()
        };
        assert!(policy.check_identifiers(&[dns("www.example.net")]).is_ok());
        assert!(policy.check_identifiers(&[dns("example.net")]).is_ok());
        assert!(policy.check_identifiers(&[dns("*.example.net")]).is_ok());
        assert!(policy.check_identifiers(&[dns("badexample.net")]).is_err());
        assert!(
            policy
                .check_identifiers(&[dns("*.badexample.net")])
                .is_err()
        );
        assert!(policy.check_identifiers(&[]).is_err());
        let strict = Policy {
            wildcards: false,
            ..Policy::default()
        };
        let err = strict
            .check_identifiers(&[dns("*.example.net")])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
    }

    #[test]
    fn ip_identifiers_are_canonicalised_and_checked() {
        let ip = |v: &str| Identifier {
            kind: "ip".into(),
            value: v.into(),
        };
        // Documentation ranges are refused by default; a CA for such a network allows them.
        let policy = Policy {
            validation_networks: network::NetworkPolicy::parse(
                &["192.0.2.0/24".into(), "2001:db8::/32".into()],
                &[],
            )
            .unwrap(),
            ..Policy::default()
        };
        let ids = policy
            .check_identifiers(&[ip("2001:DB8:0:0::1"), ip("192.0.2.1")])
            .unwrap();
        assert_eq!(ids, [ip("192.0.2.1"), ip("2001:db8::1")]);
        // Loopback and link-local never name a host the CA may validate, unless allowed.
        for refused in ["127.0.0.1", "169.254.169.254", "::1", "fe80::1", "10.0.0.1"] {
            let err = Policy::default()
                .check_identifiers(&[ip(refused)])
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::RejectedIdentifier, "{refused}");
            assert!(err.detail.contains("does not validate"), "{}", err.detail);
        }
        assert!(
            Policy::default()
                .check_identifiers(&[ip("8.8.8.8")])
                .is_ok()
        );
        for bad in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2",
            "x",
        ] {
            let err = policy.check_identifiers(&[ip(bad)]).unwrap_err();
            assert_eq!(err.kind, ErrorKind::RejectedIdentifier, "{bad}");
        }
        let no_ip = Policy {
            ip_identifiers: false,
            ..Policy::default()
        };
        let err = no_ip.check_identifiers(&[ip("192.0.2.1")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedIdentifier);
        let other = Identifier {
            kind: "email".into(),
            value: "a@b.test".into(),
        };
        let err = policy.check_identifiers(&[other]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedIdentifier);
    }

    #[test]
    fn challenge_types_follow_the_identifier() {
        let policy = Policy::default();
        let name = dns("a.example.test");
        let ip = Identifier::ip("192.0.2.1".parse().unwrap());
        assert_eq!(
            policy.challenges_for(&name, false),
            ["http-01", "dns-01", "tls-alpn-01"]
        );
        assert_eq!(policy.challenges_for(&name, true), ["dns-01"]);
        assert_eq!(
            policy.challenges_for(&ip, false),
            ["http-01", "tls-alpn-01"]
        );
        let lax = Policy {
            wildcard_http01: true,
            ..Policy::default()
        };
        assert_eq!(lax.challenges_for(&name, true), ["dns-01", "http-01"]);
    }

    #[test]
    fn validity_is_honoured_within_the_profile_or_refused() {
        let policy = Policy::default();
        let now = 1_000_000_000;
        assert_eq!(
            policy.check_validity(None, None, now).unwrap(),
            (now, now + 90 * 86_400)
        );
        assert_eq!(
            policy
                .check_validity(Some(now), Some(now + 86_400), now)
                .unwrap(),
            (now, now + 86_400)
        );
        assert!(
            policy
                .check_validity(None, Some(now + 91 * 86_400), now)
                .is_err()
        );
        assert!(
            policy
                .check_validity(Some(now - 2 * 86_400), None, now)
                .is_err()
        );
        assert!(
            policy
                .check_validity(Some(now + 10), Some(now + 5), now)
                .is_err()
        );
    }

    #[test]
    fn an_endpoint_offers_only_its_challenge_types_and_refuses_what_none_can_validate() {
        let policy = Policy {
            challenge_types: vec!["http-01"],
            ..Policy::default()
        };
        assert_eq!(
            policy.challenges_for(&Identifier::dns("a.test"), false),
            ["http-01"]
        );
        let err = policy
            .check_identifiers(&[Identifier::dns("*.a.test"), Identifier::dns("b.test")])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
        assert!(err.detail.contains("http-01"), "{}", err.detail);
        assert_eq!(err.subproblems.len(), 1);
    }
}
