//! Where relying parties find a CA's CRL and certificate: the CRL distribution point and
//! AIA caIssuers extensions (RFC 5280 §4.2.1.13, §4.2.2.1) that every certificate below a CA
//! hsm-acme runs carries, pointing at its plain-HTTP publication listener.

use const_oid::db::rfc5280::ID_AD_CA_ISSUERS;
use der::asn1::Ia5String;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CrlDistributionPoints};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;

use super::CaError;

/// The publication URLs of one issuing CA, as they go into the certificates it signs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distribution {
    /// Its CRL (DER), e.g. `http://ca.example/crl/issuing.crl`.
    pub crl_url: Option<String>,
    /// Its certificate (DER), e.g. `http://ca.example/ca/issuing.crt`.
    pub ca_issuers_url: Option<String>,
}

impl Distribution {
    /// The URLs under `base` (`http://host[:port]`) for the CA called `ca`.
    pub fn under(base: &str, ca: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            crl_url: Some(crl_url(base, ca)),
            ca_issuers_url: Some(format!("{base}/ca/{ca}.crt")),
        }
    }

    /// Checks the URLs once, so building a certificate cannot fail on them later.
    pub fn checked(self) -> Result<CheckedDistribution, CaError> {
        let ia5 = |url: Option<String>, what: &str| {
            url.map(|u| {
                // BR §7.1.2.11.2 / §7.1.2.7.7: plain http, so fetching them needs no PKI.
                if !u.starts_with("http://") {
                    return Err(CaError::Invalid(format!(
                        "{what} {u:?} must be an http:// URL"
                    )));
                }
                Ia5String::new(&u).map_err(|e| CaError::Invalid(format!("{what} {u:?}: {e}")))
            })
            .transpose()
        };
        Ok(CheckedDistribution {
            crl: ia5(self.crl_url, "CRL URL")?,
            ca_issuers: ia5(self.ca_issuers_url, "caIssuers URL")?,
        })
    }
}

/// The path of a CA's CRL on the publication listener.
pub fn crl_path(ca: &str) -> String {
    format!("/crl/{ca}.crl")
}

fn crl_url(base: &str, ca: &str) -> String {
    format!("{base}{}", crl_path(ca))
}

/// [`Distribution`] in the form the extensions need.
#[derive(Debug, Clone, Default)]
pub struct CheckedDistribution {
    crl: Option<Ia5String>,
    ca_issuers: Option<Ia5String>,
}

impl CheckedDistribution {
    /// Appends the cRLDistributionPoints and authorityInfoAccess extensions to `out`.
    pub fn push_extensions(
        &self,
        subject: &Name,
        out: &mut Vec<Extension>,
    ) -> x509_cert::builder::Result<()> {
        if let Some(url) = &self.crl {
            // BR §7.1.2.11.2: one distribution point, a fullName URI, no reasons/cRLIssuer.
            let ext = CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(url.clone()),
                ])),
                reasons: None,
                crl_issuer: None,
            }])
            .to_extension(subject, out)?;
            out.push(ext);
        }
        if let Some(url) = &self.ca_issuers {
            let ext = AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: ID_AD_CA_ISSUERS,
                access_location: GeneralName::UniformResourceIdentifier(url.clone()),
            }])
            .to_extension(subject, out)?;
            out.push(ext);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_ca_name() {
        let d = Distribution::under("http://ca.example:8080/", "issuing");
        assert_eq!(
            d.crl_url.as_deref(),
            Some("http://ca.example:8080/crl/issuing.crl")
        );
        assert_eq!(
            d.ca_issuers_url.as_deref(),
            Some("http://ca.example:8080/ca/issuing.crt")
        );
        assert!(d.checked().is_ok());
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        let d = Distribution {
            crl_url: Some("https://ca.example/crl/x.crl".into()),
            ca_issuers_url: None,
        };
        let err = d.checked().unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        let d = Distribution {
            crl_url: None,
            ca_issuers_url: Some("http://ca.example/é".into()),
        };
        assert!(d.checked().is_err());
    }

    #[test]
    fn extensions_are_added_only_for_configured_urls() {
        let subject = Name::default();
        let mut out = Vec::new();
        Distribution::default()
            .checked()
            .unwrap()
            .push_extensions(&subject, &mut out)
            .unwrap();
        assert!(out.is_empty());
        Distribution::under("http://ca.example", "root")
            .checked()
            .unwrap()
            .push_extensions(&subject, &mut out)
            .unwrap();
        let oids: Vec<String> = out.iter().map(|e| e.extn_id.to_string()).collect();
        assert_eq!(oids, ["2.5.29.31", "1.3.6.1.5.5.7.1.1"]);
        assert!(out.iter().all(|e| !e.critical));
    }
}
