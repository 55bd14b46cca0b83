//! Which addresses the validator may connect to, and so which `ip` identifiers can be
//! validated at all: the CA's own network is not the Internet.
//!
//! Without configuration only public unicast addresses are reached. Loopback, link-local
//! (169.254.169.254 is a cloud metadata service), unspecified, multicast, broadcast,
//! documentation, benchmarking, shared (CGNAT), private and unique-local ranges, and the
//! IPv6 forms that embed IPv4 addresses, are refused unless the operator allows them
//! (`[validation] allow_networks`); `deny_networks` refuses more, and wins over both.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;

/// Ranges refused unless allowed (RFC 6890 special-purpose registries, and the forms
/// that smuggle an IPv4 address into IPv6).
const SPECIAL_PURPOSE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// [`SPECIAL_PURPOSE`], parsed once.
static SPECIAL: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    SPECIAL_PURPOSE
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
});

/// The validator's reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Networks reached even though they are special-purpose (an internal CA's network).
    pub allow: Vec<IpNet>,
    /// Networks never reached, whatever else says.
    pub deny: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Parses `allow_networks` and `deny_networks` entries: `10.0.0.0/8`, `::1/128`, or a
    /// single address.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<Self, String> {
        let parse = |list: &[String]| -> Result<Vec<IpNet>, String> {
            list.iter()
                .map(|text| {
                    let text = text.trim();
                    text.parse::<IpNet>()
                        .map(|n| n.trunc())
                        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| format!("{text:?} is not an address or a network"))
                })
                .collect()
        };
        Ok(Self {
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }

    /// Whether the validator may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !SPECIAL.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address: `::ffff:127.0.0.1` is loopback.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_special_purpose_range_parses() {
        assert_eq!(SPECIAL.len(), SPECIAL_PURPOSE.len());
    }

    #[test]
    fn only_public_addresses_are_reached_by_default() {
        let policy = NetworkPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.0.0.2",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(policy.permits(ip(public)), "{public}");
        }
    }

    #[test]
    fn allow_opens_special_ranges_and_deny_wins_over_everything() {
        let policy = NetworkPolicy::parse(
            &["127.0.0.1/32".into(), "::1".into(), "10.0.0.0/8".into()],
            &["10.9.0.0/16".into(), "8.8.8.8".into()],
        )
        .unwrap();
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("10.1.2.3")));
        assert!(!policy.permits(ip("10.9.1.1")));
        assert!(!policy.permits(ip("8.8.8.8")));
        assert!(policy.permits(ip("1.1.1.1")));
        assert!(NetworkPolicy::parse(&["nonsense".into()], &[]).is_err());
        assert_eq!(
            NetworkPolicy::parse(&["10.1.2.3/8".into()], &[])
                .unwrap()
                .allow[0]
                .to_string(),
            "10.0.0.0/8"
        );
    }
}
