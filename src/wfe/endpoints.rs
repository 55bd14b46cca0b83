//! Which ACME endpoint a request is for. The default endpoint answers at its original URLs
//! (`/directory`, `/acme/…`), which existing accounts and clients know; every named
//! endpoint, the default one included, answers under `/acme/<name>/`. The endpoint is
//! looked up per request from the path; nothing about it is global.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls::pki_types::CertificateDer;

use super::Wfe;

/// Resource names of the original URL layout (`/acme/<resource>`), which no endpoint may
/// take as its name.
pub const RESERVED_NAMES: &[&str] = &[
    "directory",
    "new-nonce",
    "new-account",
    "new-order",
    "new-authz",
    "revoke-cert",
    "key-change",
    "renewal-info",
    "acct",
    "order",
    "authz",
    "chall",
    "cert",
];

/// The endpoints of one configuration.
pub struct Routes {
    /// The default endpoint at its original URLs.
    pub default: Arc<Wfe>,
    /// Endpoints by name, at `/acme/<name>/`.
    pub named: BTreeMap<String, Arc<Wfe>>,
}

/// Every endpoint of the server; a configuration reload replaces them all at once, and
/// requests in flight finish with the ones they started with.
pub struct Endpoints {
    routes: RwLock<Arc<Routes>>,
}

impl Endpoints {
    /// Serves `routes`.
    pub fn new(routes: Routes) -> Arc<Self> {
        Arc::new(Self {
            routes: RwLock::new(Arc::new(routes)),
        })
    }

    /// Serves `routes` from now on.
    pub fn replace(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
    }

    fn current(&self) -> Arc<Routes> {
        Arc::clone(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Hands the request to its endpoint.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: std::net::IpAddr,
        chain: Option<Arc<[CertificateDer<'static>]>>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        let routes = self.current();
        let (wfe, resource) = routes.pick(request.uri().path());
        let (wfe, resource) = (Arc::clone(wfe), resource.to_owned());
        wfe.handle(request, client, &resource, chain.as_deref())
            .await
    }
}

impl Routes {
    fn pick<'a>(&self, path: &'a str) -> (&Arc<Wfe>, &'a str) {
        match route(path, |name| self.named.contains_key(name)) {
            (Some(name), resource) => match self.named.get(name) {
                Some(wfe) => (wfe, resource),
                None => (&self.default, ""),
            },
            (None, resource) => (&self.default, resource),
        }
    }
}

/// The endpoint `path` is for (`None`: the default one at its original URLs) and the
/// resource path below it; a path no endpoint knows is an empty resource, answered 404.
fn route(path: &str, is_named: impl Fn(&str) -> bool) -> (Option<&str>, &str) {
    let path = path.trim_start_matches('/');
    if path == "directory" {
        return (None, path);
    }
    let Some(below) = path.strip_prefix("acme/") else {
        return (None, "");
    };
    let (first, rest) = below.split_once('/').unwrap_or((below, ""));
    if is_named(first) {
        (Some(first), rest)
    } else if below == "directory" {
        // The original layout has no `/acme/directory`.
        (None, "")
    } else {
        (None, below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_to_their_endpoint_and_the_original_layout_to_the_default() {
        let named = |n: &str| matches!(n, "default" | "xroad");
        let cases = [
            ("/directory", (None, "directory")),
            ("/acme/new-order", (None, "new-order")),
            ("/acme/order/o1/finalize", (None, "order/o1/finalize")),
            ("/acme/directory", (None, "")),
            ("/acme/xroad/directory", (Some("xroad"), "directory")),
            ("/acme/xroad/order/o1", (Some("xroad"), "order/o1")),
            ("/acme/default/new-nonce", (Some("default"), "new-nonce")),
            ("/acme/xroad", (Some("xroad"), "")),
            ("/acme/other/directory", (None, "other/directory")),
            ("/", (None, "")),
            ("/crl/issuing.crl", (None, "")),
        ];
        for (path, expected) in cases {
            assert_eq!(route(path, named), expected, "{path}");
        }
        // No endpoint may shadow a resource of the original layout.
        for name in RESERVED_NAMES {
            assert_eq!(route(&format!("/acme/{name}/x"), |_| false).0, None);
        }
    }
}
