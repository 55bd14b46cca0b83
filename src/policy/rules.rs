//! Identifier allow and deny lists of an endpoint: the patterns of [`IdentifierPattern`]
//! (a name, `*.suffix`, `.suffix`, an address or network) and, prefixed `re:`, regular
//! expressions a whole name must match. A denied identifier is refused whatever allows it;
//! with an allow list, an identifier must match one of its entries.

use std::str::FromStr;

use regex::Regex;

use super::pattern::IdentifierPattern;
use crate::acme::Identifier;

/// One entry of an allow or deny list.
#[derive(Debug, Clone)]
pub enum IdentifierRule {
    /// A name, suffix, address or network.
    Pattern(IdentifierPattern),
    /// A regular expression over the whole DNS name (wildcards included, as `*.name`).
    Regex(Regex),
}

impl FromStr for IdentifierRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.strip_prefix("re:") {
            Some(expression) => Regex::new(&format!("^(?:{expression})$"))
                .map(Self::Regex)
                .map_err(|e| format!("{text:?}: {e}")),
            None => IdentifierPattern::from_str(text)
                .map(Self::Pattern)
                .map_err(|e| format!("{text:?}: {e}")),
        }
    }
}

impl IdentifierRule {
    /// Whether the rule matches `identifier` (normalised: lower case, canonical address).
    pub fn matches(&self, identifier: &Identifier) -> bool {
        match self {
            Self::Pattern(pattern) => pattern.covers(identifier),
            Self::Regex(regex) => identifier.kind == "dns" && regex.is_match(&identifier.value),
        }
    }
}

/// An endpoint's allow and deny lists.
#[derive(Debug, Clone, Default)]
pub struct IdentifierRules {
    /// When not empty, an identifier must match one of these.
    pub allow: Vec<IdentifierRule>,
    /// An identifier matching one of these is refused.
    pub deny: Vec<IdentifierRule>,
}

impl IdentifierRules {
    /// Parses both lists.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<Self, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|t| IdentifierRule::from_str(t))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }

    /// Why `identifier` is refused, if it is.
    pub fn refusal(&self, identifier: &Identifier) -> Option<String> {
        if self.deny.iter().any(|r| r.matches(identifier)) {
            return Some(format!(
                "{} is on this endpoint's deny list",
                identifier.value
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|r| r.matches(identifier)) {
            return Some(format!(
                "{} is not on this endpoint's allow list",
                identifier.value
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(value: &str) -> Identifier {
        Identifier {
            kind: "ip".into(),
            value: value.into(),
        }
    }

    #[test]
    fn names_suffixes_regexes_and_networks_allow_and_deny() {
        let rules = IdentifierRules::parse(
            &[
                "host.example.net".into(),
                ".corp.example".into(),
                r"re:ss[0-9]+\.xroad\.test".into(),
                "10.0.0.0/8".into(),
            ],
            &["bad.corp.example".into(), "10.9.0.0/16".into()],
        )
        .unwrap();
        for allowed in [
            "host.example.net",
            "corp.example",
            "a.b.corp.example",
            "ss12.xroad.test",
        ] {
            assert_eq!(rules.refusal(&Identifier::dns(allowed)), None, "{allowed}");
        }
        assert_eq!(rules.refusal(&ip("10.1.2.3")), None);
        for (refused, why) in [
            ("other.example.net", "allow list"),
            ("ssx.xroad.test", "allow list"),
            ("ss1.xroad.test.evil", "allow list"),
            ("bad.corp.example", "deny list"),
        ] {
            let reason = rules.refusal(&Identifier::dns(refused)).unwrap();
            assert!(reason.contains(why), "{refused}: {reason}");
        }
        assert!(rules.refusal(&ip("10.9.1.1")).unwrap().contains("deny"));
        assert!(rules.refusal(&ip("192.0.2.1")).unwrap().contains("allow"));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = IdentifierRules::parse(&["re:(".into()], &[]).unwrap_err();
        assert!(err.contains("re:("), "{err}");
        let err = IdentifierRules::parse(&[], &["*.*.x".into()]).unwrap_err();
        assert!(err.contains("*.*.x"), "{err}");
    }
}
