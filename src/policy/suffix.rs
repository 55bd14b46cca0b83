//! Registered domains: a public suffix and one label more (`example.co.uk` for
//! `www.example.co.uk`), the subject of the certificates-per-domain rate limit, so one
//! organisation's names share one budget however many subdomains it orders.
//!
//! The list is Mozilla's Public Suffix List as the operating system ships it (Debian's
//! `publicsuffix` package), or a file the operator names, to which private networks add
//! their own suffixes (`corp.example` makes every `x.corp.example` a domain of its own).
//! Names under a suffix the list does not know fall under its implicit `*` rule. Without a
//! list, the last two labels are the registered domain.

use std::path::{Path, PathBuf};

use publicsuffix::{List, Psl};

/// Where Debian and its derivatives install the list.
pub const SYSTEM_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

/// A loaded suffix list, or the two-label rule.
#[derive(Debug, Default)]
pub struct SuffixList {
    list: Option<List>,
    source: Option<PathBuf>,
}

impl SuffixList {
    /// Reads `path`; a file named in the configuration must load.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("public suffix list {}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// The system's list if it is installed, else the two-label rule.
    pub fn system() -> Result<Self, String> {
        let path = Path::new(SYSTEM_LIST);
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    fn parse(text: &str, path: &Path) -> Result<Self, String> {
        // The published list marks its ICANN and private sections, and rules outside them
        // are not read; an operator's own short list of suffixes needs no markers.
        let marked;
        let text = if text.contains("===BEGIN ") {
            text
        } else {
            marked = format!("// ===BEGIN PRIVATE DOMAINS===\n{text}");
            &marked
        };
        let list: List = text
            .parse()
            .map_err(|e| format!("public suffix list {}: {e}", path.display()))?;
        if list.is_empty() {
            return Err(format!(
                "public suffix list {} holds no rules",
                path.display()
            ));
        }
        Ok(Self {
            list: Some(list),
            source: Some(path.to_owned()),
        })
    }

    /// Where the rules came from, for the start-up log; `None` for the two-label rule.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The registered domain of a lower-case DNS name (a wildcard's base name is its own
    /// name). A name that is itself a public suffix is its own registered domain.
    pub fn registered_domain(&self, name: &str) -> String {
        let name = name.strip_prefix("*.").unwrap_or(name);
        let name = name.trim_end_matches('.');
        if let Some(list) = &self.list {
            return match list.domain(name.as_bytes()) {
                Some(domain) => String::from_utf8_lossy(domain.as_bytes()).into_owned(),
                None => name.to_owned(),
            };
        }
        let mut labels = name.rsplitn(3, '.');
        match (labels.next(), labels.next()) {
            (Some(last), Some(second)) => format!("{second}.{last}"),
            _ => name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "// ===BEGIN ICANN DOMAINS===\nuk\nco.uk\n*.ck\n!www.ck\ncom\n\
                         // ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\n\
                         corp.example\n// ===END PRIVATE DOMAINS===\n";

    #[test]
    fn the_list_decides_where_a_registered_domain_starts() {
        let list = SuffixList::parse(RULES, Path::new("rules.dat")).unwrap();
        let cases = [
            ("www.example.co.uk", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            ("a.b.example.com", "example.com"),
            ("*.example.com", "example.com"),
            ("x.y.shop.ck", "y.shop.ck"),
            ("www.ck", "www.ck"),
            ("a.team.corp.example", "team.corp.example"),
            // Unknown suffixes follow the implicit `*` rule.
            ("host.dept.internal", "dept.internal"),
            // A public suffix alone is its own domain.
            ("co.uk", "co.uk"),
        ];
        for (name, domain) in cases {
            assert_eq!(list.registered_domain(name), domain, "{name}");
        }
    }

    #[test]
    fn a_list_of_the_operator_needs_no_section_markers() {
        let list = SuffixList::parse("// ours\ncorp.example\n", Path::new("o.dat")).unwrap();
        assert_eq!(list.registered_domain("a.b.corp.example"), "b.corp.example");
    }

    #[test]
    fn without_a_list_the_last_two_labels_count() {
        let list = SuffixList::default();
        assert_eq!(list.registered_domain("www.example.co.uk"), "co.uk");
        assert_eq!(list.registered_domain("example.com"), "example.com");
        assert_eq!(list.registered_domain("localhost"), "localhost");
        assert_eq!(list.registered_domain("*.a.example.org"), "example.org");
    }

    #[test]
    fn a_broken_or_empty_list_is_refused() {
        let err = SuffixList::parse("", Path::new("empty.dat")).unwrap_err();
        assert!(err.contains("empty.dat"), "{err}");
        let err = SuffixList::load(Path::new("/nonexistent/psl.dat")).unwrap_err();
        assert!(err.contains("/nonexistent/psl.dat"), "{err}");
    }

    #[test]
    fn the_system_list_if_installed_knows_common_suffixes() {
        let list = SuffixList::system().unwrap();
        if list.source().is_some() {
            assert_eq!(list.registered_domain("www.bbc.co.uk"), "bbc.co.uk");
            assert_eq!(list.registered_domain("a.github.io"), "a.github.io");
        }
    }
}
