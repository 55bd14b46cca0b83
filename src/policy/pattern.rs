//! Identifier patterns an operator writes for a pre-registered account (EAB key
//! `--allowed-domains`, `--prevalidated-domains`): which names and addresses it covers.
//!
//! - `host.example.net`: that name only;
//! - `*.example.net`: every name below `example.net` (one label or more), not the name
//!   itself;
//! - `.example.net`: `example.net` and every name below it;
//! - `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`: an address or a network.
//!
//! A wildcard identifier `*.base` is covered only where every name it stands for is:
//! by `*.s` or `.s` with `base` equal to or below `s`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::check_dns_name;
use crate::acme::Identifier;

/// One pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierPattern {
    /// Exactly this name.
    Name(String),
    /// Every name strictly below this one (`*.suffix`).
    Below(String),
    /// This name and every name below it (`.suffix`).
    AtOrBelow(String),
    /// Addresses in this network (a single address is a /32 or /128).
    Network(IpNet),
}

impl FromStr for IdentifierPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Self::Network(net.trunc()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Network(IpNet::from(ip)));
        }
        let (kind, name) = if let Some(rest) = text.strip_prefix("*.") {
            ("below", rest)
        } else if let Some(rest) = text.strip_prefix('.') {
            ("at-or-below", rest)
        } else {
            ("name", text.as_str())
        };
        // A suffix may be a single label ("*.internal"); a name needs the usual syntax.
        let checked = if name.contains('.') {
            check_dns_name(name)
        } else if kind == "name" {
            Err(format!(
                "a single label; write *.{name} or .{name} for a suffix"
            ))
        } else {
            check_dns_name(&format!("{name}.x"))
        };
        checked.map_err(|e| format!("pattern {text:?}: {e}"))?;
        let name = name.to_owned();
        Ok(match kind {
            "below" => Self::Below(name),
            "at-or-below" => Self::AtOrBelow(name),
            _ => Self::Name(name),
        })
    }
}

impl fmt::Display for IdentifierPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Below(suffix) => write!(f, "*.{suffix}"),
            Self::AtOrBelow(suffix) => write!(f, ".{suffix}"),
            Self::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Self::Network(net) => write!(f, "{net}"),
        }
    }
}

fn below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

impl IdentifierPattern {
    /// Whether the (normalised) order identifier `identifier` is covered.
    pub fn covers(&self, identifier: &Identifier) -> bool {
        if let Some(ip) = identifier.ip_addr() {
            return matches!(self, Self::Network(net) if net.contains(&ip));
        }
        if identifier.kind != "dns" {
            return false;
        }
        let value = identifier.value.as_str();
        match (self, value.strip_prefix("*.")) {
            (Self::Network(_), _) => false,
            (Self::Name(name), None) => value == name,
            (Self::Name(_), Some(_)) => false,
            (Self::Below(s), None) => below(value, s),
            (Self::AtOrBelow(s), None) => value == s || below(value, s),
            (Self::Below(s) | Self::AtOrBelow(s), Some(base)) => base == s || below(base, s),
        }
    }
}

/// Parses a comma-separated list as the command line takes it; empty items are refused.
pub fn parse_patterns(list: &str) -> Result<Vec<IdentifierPattern>, String> {
    list.split(',')
        .map(str::trim)
        .map(|item| {
            if item.is_empty() {
                Err(format!("empty item in the list {list:?}"))
            } else {
                item.parse()
            }
        })
        .collect()
}

/// Whether any of `patterns` (as stored, in text) covers `identifier`. Stored patterns
/// were checked when they were written; one that no longer parses covers nothing.
pub fn any_covers(patterns: &[String], identifier: &Identifier) -> bool {
    patterns
        .iter()
        .filter_map(|p| p.parse::<IdentifierPattern>().ok())
        .any(|p| p.covers(identifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(pattern: &str, identifier: &Identifier) -> bool {
        pattern
            .parse::<IdentifierPattern>()
            .unwrap()
            .covers(identifier)
    }

    #[test]
    fn names_suffixes_and_networks_cover_what_they_say() {
        let dns = Identifier::dns;
        let ip = |s: &str| Identifier::ip(s.parse().unwrap());
        let table: &[(&str, Identifier, bool)] = &[
            ("host.corp.example", dns("host.corp.example"), true),
            ("host.corp.example", dns("a.host.corp.example"), false),
            ("host.corp.example", dns("*.host.corp.example"), false),
            ("*.corp.example", dns("a.corp.example"), true),
            ("*.corp.example", dns("a.b.corp.example"), true),
            ("*.corp.example", dns("corp.example"), false),
            ("*.corp.example", dns("evilcorp.example"), false),
            ("*.corp.example", dns("*.corp.example"), true),
            ("*.corp.example", dns("*.a.corp.example"), true),
            ("*.corp.example", dns("*.example"), false),
            (".corp.example", dns("corp.example"), true),
            (".corp.example", dns("x.corp.example"), true),
            (".corp.example", dns("xcorp.example"), false),
            ("*.internal", dns("ss1.internal"), true),
            ("10.0.0.0/8", ip("10.1.2.3"), true),
            ("10.0.0.0/8", ip("11.1.2.3"), false),
            ("192.0.2.7", ip("192.0.2.7"), true),
            ("192.0.2.7", ip("192.0.2.8"), false),
            ("2001:db8::/32", ip("2001:db8::1"), true),
            ("2001:db8::/32", dns("a.corp.example"), false),
            ("*.corp.example", ip("10.0.0.1"), false),
        ];
        for (pattern, identifier, want) in table {
            assert_eq!(
                covers(pattern, identifier),
                *want,
                "{pattern} vs {identifier}"
            );
        }
    }

    #[test]
    fn patterns_are_checked_and_printed_back() {
        for good in [
            "host.corp.example",
            "*.corp.example",
            ".corp.example",
            "*.internal",
            "10.0.0.0/8",
            "192.0.2.7",
            "2001:db8::/32",
        ] {
            let parsed: IdentifierPattern = good.parse().unwrap();
            assert_eq!(parsed.to_string(), good);
        }
        // Host bits are dropped: the network is what is meant.
        assert_eq!(
            "10.1.2.3/8"
                .parse::<IdentifierPattern>()
                .unwrap()
                .to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "corp",
            "*.*.corp.example",
            "x y.example",
            "-a.b",
        ] {
            assert!(bad.parse::<IdentifierPattern>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_patterns("a.example, .b.example").unwrap().len(), 2);
        assert!(parse_patterns("a.example,,b.example").is_err());
    }
}
