//! The DNS seam of validation. [`DnsResolver`] asks one configured server (tests and the
//! interop harness point it at a mock) or the system's resolvers, without caching: dns-01
//! TXT answers change seconds apart, and a CA must see the current state of DNS.
//!
//! The seam answers three questions: addresses (http-01, tls-alpn-01), TXT strings (dns-01)
//! and CAA records (RFC 8659). "No records" (NOERROR without answers, or NXDOMAIN) is an
//! answer; a failed lookup (SERVFAIL, REFUSED, timeout) is a `dns` failure, never "nothing".

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::ValidationFailure;

/// A boxed future of address lookups.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ValidationFailure>> + Send + 'a>>;

/// A boxed future of TXT lookups.
pub type TxtFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<String>, ValidationFailure>> + Send + 'a>>;

/// A boxed future of CAA lookups.
pub type CaaFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CaaAnswer, ValidationFailure>> + Send + 'a>>;

/// One CAA resource record (RFC 8659 §4.1), undecoded: the policy lives in `va::caa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The flags octet; bit 128 is the Issuer Critical flag.
    pub flags: u8,
    /// The property tag as published (matching is case-insensitive).
    pub tag: String,
    /// The raw property value.
    pub value: Vec<u8>,
}

impl CaaRecord {
    /// A record from its presentation parts, e.g. `CaaRecord::new(0, "issue", "ca.example")`.
    pub fn new(flags: u8, tag: &str, value: &str) -> Self {
        Self {
            flags,
            tag: tag.to_owned(),
            value: value.as_bytes().to_vec(),
        }
    }

    /// RFC 8659 §4.1: the Issuer Critical flag.
    pub fn critical(&self) -> bool {
        self.flags & 0x80 != 0
    }
}

/// The CAA RRset at one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaaAnswer {
    /// The name has no CAA records (NOERROR without answers, or NXDOMAIN): RFC 8659 §3
    /// tree climbing goes on to the parent.
    NoRecords,
    /// The CAA records found (after any CNAME the DNS followed).
    Records(Vec<CaaRecord>),
}

/// Name resolution for validation.
///
/// The TXT and CAA lookups have default bodies that fail closed, so a test double that
/// only answers addresses can never grant dns-01 or CAA permission by accident.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// The addresses of `name`, IPv6 first; an IP literal resolves to itself.
    fn lookup_ip<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;

    /// The TXT records at `name`, each record's character-strings joined into one string;
    /// CNAMEs are followed. No records (or NXDOMAIN) is an empty list.
    fn lookup_txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a> {
        Box::pin(async move {
            Err(ValidationFailure::Dns(format!(
                "TXT lookup of {name} is not supported by this resolver"
            )))
        })
    }

    /// The CAA RRset at exactly `name` (no tree climbing here; see `va::caa`).
    fn lookup_caa<'a>(&'a self, name: &'a str) -> CaaFuture<'a> {
        Box::pin(async move {
            Err(ValidationFailure::Dns(format!(
                "CAA lookup of {name} is not supported by this resolver"
            )))
        })
    }
}

/// hickory-resolver, configured for validation.
pub struct DnsResolver {
    inner: TokioResolver,
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsResolver").finish_non_exhaustive()
    }
}

/// Whether answers must be DNSSEC-validated (RFC 4035), and against which trust anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Dnssec {
    /// Answers are taken as the resolver gives them.
    #[default]
    Off,
    /// Validated up to the IANA root key built into hickory.
    Root,
    /// Validated up to the DNSKEY records in this file (a private root or island).
    TrustAnchor(std::path::PathBuf),
}

impl DnsResolver {
    /// A resolver asking only `server` (UDP, then TCP), or the system's resolvers.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
        Self::with_dnssec(server, &Dnssec::Off)
    }

    /// As [`DnsResolver::new`], validating answers per `dnssec`: a bogus answer then fails
    /// the lookup (a `dns` problem) instead of being believed.
    pub fn with_dnssec(server: Option<SocketAddr>, dnssec: &Dnssec) -> Result<Self, String> {
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let name_server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![name_server]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio().map_err(|e| e.to_string())?,
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        if server.is_some() {
            // A configured server is the whole truth; /etc/hosts must not answer instead.
            options.use_hosts_file = ResolveHosts::Never;
        }
        match dnssec {
            Dnssec::Off => {}
            Dnssec::Root => options.validate = true,
            Dnssec::TrustAnchor(path) => {
                options.validate = true;
                let anchors = TrustAnchors::from_file(path)
                    .map_err(|e| format!("DNSSEC trust anchor {}: {e}", path.display()))?;
                if anchors.is_empty() {
                    return Err(format!(
                        "DNSSEC trust anchor {}: no DNSKEY records",
                        path.display()
                    ));
                }
                builder = builder.with_trust_anchor(std::sync::Arc::new(anchors));
            }
        }
        Ok(Self {
            inner: builder.build().map_err(|e| e.to_string())?,
        })
    }
}

impl Resolver for DnsResolver {
    fn lookup_ip<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            let lookup = self
                .inner
                .lookup_ip(absolute(name).as_str())
                .await
                .map_err(|e| {
                    if e.is_no_records_found() || e.is_nx_domain() {
                        ValidationFailure::Dns(format!("no A or AAAA records found for {name}"))
                    } else {
                        ValidationFailure::Dns(format!("DNS lookup of {name} failed: {e}"))
                    }
                })?;
            let mut addresses: Vec<IpAddr> = lookup.iter().collect();
            addresses.sort_by_key(|a| !a.is_ipv6());
            addresses.dedup();
            if addresses.is_empty() {
                return Err(ValidationFailure::Dns(format!(
                    "no A or AAAA records found for {name}"
                )));
            }
            Ok(addresses)
        })
    }

    fn lookup_txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a> {
        Box::pin(async move {
            let lookup = match self.inner.txt_lookup(absolute(name).as_str()).await {
                Ok(lookup) => lookup,
                Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
                Err(e) => return Err(lookup_failed("TXT", name, &e)),
            };
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }

    fn lookup_caa<'a>(&'a self, name: &'a str) -> CaaFuture<'a> {
        Box::pin(async move {
            let lookup = match self
                .inner
                .lookup(absolute(name).as_str(), RecordType::CAA)
                .await
            {
                Ok(lookup) => lookup,
                Err(e) if e.is_no_records_found() => return Ok(CaaAnswer::NoRecords),
                Err(e) => return Err(lookup_failed("CAA", name, &e)),
            };
            let records: Vec<CaaRecord> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::CAA(caa) => Some(CaaRecord {
                        flags: caa.flags(),
                        tag: caa.tag.clone(),
                        value: caa.value.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if records.is_empty() {
                // Only a CNAME chain ending without CAA records.
                return Ok(CaaAnswer::NoRecords);
            }
            Ok(CaaAnswer::Records(records))
        })
    }
}

/// A trailing dot makes the name absolute: no search domains are tried.
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn lookup_failed(kind: &str, name: &str, e: &NetError) -> ValidationFailure {
    ValidationFailure::Dns(format!(
        "DNS lookup of {kind} records for {name} failed: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{CAA, TXT};
    use hickory_resolver::proto::rr::{Name, Record};
    use tokio::net::UdpSocket;

    use super::*;

    /// A UDP DNS server with a tiny fixed zone: TXT and CAA answers, NXDOMAIN at `nx.test`,
    /// SERVFAIL at `fail.test`, NOERROR without answers elsewhere.
    async fn mock_dns() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                let query = Message::from_vec(&buf[..len]).unwrap();
                let question = query.queries[0].clone();
                let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
                answer.add_query(question.clone());
                let name = question.name().to_ascii().to_ascii_lowercase();
                let rdata: Vec<RData> = match (name.as_str(), question.query_type()) {
                    ("_acme-challenge.ok.test.", RecordType::TXT) => vec![
                        RData::TXT(TXT::new(vec!["abc".into(), "def".into()])),
                        RData::TXT(TXT::new(vec!["xyz".into()])),
                    ],
                    ("caa.test.", RecordType::CAA) => vec![
                        RData::CAA(CAA::new_issue(
                            false,
                            Some(Name::from_ascii("ca.example.net").unwrap()),
                            Vec::new(),
                        )),
                        RData::CAA(CAA::new_issue(true, None, Vec::new())),
                    ],
                    _ => Vec::new(),
                };
                for data in rdata {
                    answer.add_answer(Record::from_rdata(question.name().clone(), 60, data));
                }
                answer.metadata.response_code = match name.as_str() {
                    "nx.test." => ResponseCode::NXDomain,
                    "fail.test." => ResponseCode::ServFail,
                    _ => ResponseCode::NoError,
                };
                let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
            }
        });
        addr
    }

    /// The mock zone is unsigned and the mock has no root DNSKEY: with validation on, its
    /// answers cannot be proven and must not be believed.
    #[tokio::test]
    async fn with_dnssec_unprovable_answers_are_refused() {
        let server = Some(mock_dns().await);
        let plain = DnsResolver::new(server).unwrap();
        assert!(
            !plain
                .lookup_txt("_acme-challenge.ok.test")
                .await
                .unwrap()
                .is_empty()
        );
        let validating = DnsResolver::with_dnssec(server, &Dnssec::Root).unwrap();
        let result = validating.lookup_txt("_acme-challenge.ok.test").await;
        assert!(
            matches!(&result, Err(ValidationFailure::Dns(m)) if m.contains("DNSSEC")),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn txt_and_caa_lookups_against_a_dns_server() {
        let resolver = DnsResolver::new(Some(mock_dns().await)).unwrap();

        let mut txt = resolver
            .lookup_txt("_acme-challenge.ok.test")
            .await
            .unwrap();
        txt.sort();
        assert_eq!(txt, vec!["abcdef".to_owned(), "xyz".to_owned()]);
        assert!(resolver.lookup_txt("empty.test").await.unwrap().is_empty());
        assert!(resolver.lookup_txt("nx.test").await.unwrap().is_empty());
        let err = resolver.lookup_txt("fail.test").await.unwrap_err();
        assert!(
            matches!(&err, ValidationFailure::Dns(m) if m.contains("fail.test")),
            "{err:?}"
        );

        let CaaAnswer::Records(records) = resolver.lookup_caa("caa.test").await.unwrap() else {
            panic!("expected CAA records");
        };
        assert_eq!(
            records,
            vec![
                CaaRecord::new(0, "issue", "ca.example.net"),
                CaaRecord::new(128, "issue", ";"),
            ]
        );
        assert!(records[1].critical());
        assert_eq!(
            resolver.lookup_caa("empty.test").await.unwrap(),
            CaaAnswer::NoRecords
        );
        assert_eq!(
            resolver.lookup_caa("nx.test").await.unwrap(),
            CaaAnswer::NoRecords
        );
        let err = resolver.lookup_caa("fail.test").await.unwrap_err();
        assert_eq!(err.problem_type(), "dns", "{err:?}");
    }

    #[tokio::test]
    async fn ip_literals_resolve_to_themselves() {
        let resolver = DnsResolver::new(Some("127.0.0.1:9".parse().unwrap())).unwrap();
        assert_eq!(
            resolver.lookup_ip("192.0.2.1").await.unwrap(),
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolver.lookup_ip("::1").await.unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
    }
}

#[cfg(test)]
mod dnssec_tests {
    use super::*;

    #[test]
    fn a_trust_anchor_must_exist_and_hold_keys() {
        let missing = Dnssec::TrustAnchor("/nonexistent/anchor.zone".into());
        let err =
            DnsResolver::with_dnssec(Some("127.0.0.1:53".parse().unwrap()), &missing).unwrap_err();
        assert!(err.contains("/nonexistent/anchor.zone"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.zone");
        std::fs::write(&empty, "").unwrap();
        let err = DnsResolver::with_dnssec(None, &Dnssec::TrustAnchor(empty)).unwrap_err();
        assert!(err.contains("no DNSKEY"), "{err}");
    }
}
