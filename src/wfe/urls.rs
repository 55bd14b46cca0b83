//! Every URL the server hands out, built in one place from the public base URL.

/// URL builder for one ACME endpoint.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
    /// Where the endpoint's resources live: `<base>/acme` for the default endpoint's
    /// original URLs, `<base>/acme/<name>` for a named endpoint.
    resources: String,
    directory: String,
}

impl Urls {
    /// The default endpoint's original URLs: `<base>/directory`, `<base>/acme/…`.
    pub fn new(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self {
            resources: format!("{base}/acme"),
            directory: format!("{base}/directory"),
            base,
        }
    }

    /// A named endpoint: `<base>/acme/<name>/directory` and `<base>/acme/<name>/…`.
    pub fn endpoint(base: &str, name: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        let resources = format!("{base}/acme/{name}");
        Self {
            directory: format!("{resources}/directory"),
            resources,
            base,
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The directory.
    pub fn directory(&self) -> String {
        self.directory.clone()
    }

    /// A resource of the endpoint.
    pub fn acme(&self, path: &str) -> String {
        format!("{}/{path}", self.resources)
    }

    /// Account URLs start with this.
    pub fn account_prefix(&self) -> String {
        self.acme("acct/")
    }

    /// An account.
    pub fn account(&self, id: &str) -> String {
        self.acme(&format!("acct/{id}"))
    }

    /// An order.
    pub fn order(&self, id: &str) -> String {
        self.acme(&format!("order/{id}"))
    }

    /// An order's finalize URL.
    pub fn finalize(&self, id: &str) -> String {
        self.acme(&format!("order/{id}/finalize"))
    }

    /// An authorization.
    pub fn authz(&self, id: &str) -> String {
        self.acme(&format!("authz/{id}"))
    }

    /// A challenge.
    pub fn challenge(&self, authz: &str, kind: &str) -> String {
        self.acme(&format!("chall/{authz}/{kind}"))
    }

    /// A certificate.
    pub fn certificate(&self, serial: &str) -> String {
        self.acme(&format!("cert/{serial}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_endpoint_keeps_its_urls_and_named_ones_live_under_their_name() {
        let default = Urls::new("https://ca.test/");
        assert_eq!(default.directory(), "https://ca.test/directory");
        assert_eq!(default.order("o1"), "https://ca.test/acme/order/o1");
        let named = Urls::endpoint("https://ca.test", "xroad");
        assert_eq!(named.directory(), "https://ca.test/acme/xroad/directory");
        assert_eq!(named.account("a1"), "https://ca.test/acme/xroad/acct/a1");
        assert_eq!(named.account_prefix(), "https://ca.test/acme/xroad/acct/");
    }
}
