//! The DNS seam of validation. [`DnsResolver`] asks one configured server (tests and the
//! interop harness point it at a mock) or the system's resolvers, without caching: dns-01
//! TXT answers change seconds apart, and a CA must see the current state of DNS.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use super::ValidationFailure;

/// A boxed future of address lookups.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ValidationFailure>> + Send + 'a>>;

/// Name resolution for validation.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// The addresses of `name`, IPv6 first; an IP literal resolves to itself.
    fn lookup_ip<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
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

impl DnsResolver {
    /// A resolver asking only `server` (UDP, then TCP), or the system's resolvers.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
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
            // A trailing dot makes the name absolute: no search domains are tried.
            let fqdn = format!("{}.", name.trim_end_matches('.'));
            let lookup = self.inner.lookup_ip(fqdn.as_str()).await.map_err(|e| {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
