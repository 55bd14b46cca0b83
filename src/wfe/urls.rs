//! Every URL the server hands out, built in one place from the public base URL.

/// URL builder.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// Builder for `base` (no trailing slash needed).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The directory.
    pub fn directory(&self) -> String {
        format!("{}/directory", self.base)
    }

    /// A path under the ACME prefix.
    pub fn acme(&self, path: &str) -> String {
        format!("{}/acme/{path}", self.base)
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
