//! Finalize CSRs (RFC 8555 §7.4, RFC 2986): decoded, self-signature verified, names
//! extracted from the extensionRequest and the subject commonName, key checked against the
//! key policy. The RA compares
//! the names with the order; this module knows nothing of ACME beyond the error split.

use std::collections::BTreeSet;
use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
use der::asn1::UintRef;
use der::{Decode, Encode, Sequence};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::CertReq;

use super::verify::{VerifyError, verify_signature};

/// PKCS#9 extensionRequest (RFC 2985 §5.4.2).
const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The kind and size of a CSR's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrKey {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// Ed25519.
    Ed25519,
}

/// Which subscriber keys are accepted.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Smallest RSA modulus.
    pub rsa_min_bits: usize,
    /// Largest RSA modulus.
    pub rsa_max_bits: usize,
    /// Accept P-256.
    pub allow_p256: bool,
    /// Accept P-384.
    pub allow_p384: bool,
    /// Accept Ed25519 (not in the CA/B Forum BR; for private profiles).
    pub allow_ed25519: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            rsa_max_bits: 8192,
            allow_p256: true,
            allow_p384: true,
            allow_ed25519: false,
        }
    }
}

/// A CSR that passed every check.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    /// The subscriber key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Its kind.
    pub key: CsrKey,
    /// dNSName SANs, lower-cased, without a trailing dot.
    pub dns_names: BTreeSet<String>,
    /// iPAddress SANs.
    pub ip_addresses: BTreeSet<IpAddr>,
    /// The subject commonName, if any; it is one of `dns_names` or `ip_addresses`.
    pub common_name: Option<String>,
    /// The whole subject, for certificate profiles that copy attributes from it.
    pub subject: x509_cert::name::Name,
}

/// Why a CSR was refused; the text is for the ACME client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Maps to `badCSR`.
    #[error("{0}")]
    BadCsr(String),
    /// Maps to `badPublicKey`.
    #[error("{0}")]
    BadPublicKey(String),
}

/// RFC 8017 §A.1.1 `RSAPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Decodes and checks a DER CSR.
pub fn parse_csr(der: &[u8], policy: &KeyPolicy) -> Result<ParsedCsr, CsrError> {
    let bad = |m: String| CsrError::BadCsr(m);
    let csr = CertReq::from_der(der).map_err(|e| bad(format!("not a DER PKCS#10 request: {e}")))?;
    // The key first: a weak key is a key problem, and ring will not verify with it anyway.
    let key = check_key(&csr.info.public_key, policy)?;
    let info = csr
        .info
        .to_der()
        .map_err(|e| bad(format!("re-encoding the request: {e}")))?;
    let signature = csr
        .signature
        .as_bytes()
        .ok_or_else(|| bad("the signature is not a whole number of bytes".into()))?;
    verify_signature(&csr.info.public_key, &csr.algorithm, &info, signature).map_err(
        |e| match e {
            VerifyError::BadSignature => bad("the CSR's self-signature does not verify".into()),
            VerifyError::Unsupported { algorithm, .. } => bad(format!(
                "CSR signature algorithm {algorithm} is not supported for this key"
            )),
        },
    )?;

    let mut requests = csr
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == EXTENSION_REQUEST);
    let request = requests.next();
    if requests.next().is_some() {
        return Err(bad("the CSR has more than one extensionRequest".into()));
    }
    let mut dns_names = BTreeSet::new();
    let mut ip_addresses = BTreeSet::new();
    if let Some(request) = request {
        let [value] = request.values.as_slice() else {
            return Err(bad("extensionRequest must hold exactly one value".into()));
        };
        let extensions: Extensions = value
            .decode_as()
            .map_err(|e| bad(format!("extensionRequest: {e}")))?;
        let mut sans = extensions
            .iter()
            .filter(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME);
        if let Some(san) = sans.next() {
            if sans.next().is_some() {
                return Err(bad("the CSR requests subjectAltName twice".into()));
            }
            let names = SubjectAltName::from_der(san.extn_value.as_bytes())
                .map_err(|e| bad(format!("subjectAltName: {e}")))?;
            for name in names.0 {
                match name {
                    GeneralName::DnsName(dns) => {
                        let name = dns.to_string().to_ascii_lowercase();
                        let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
                        if name.is_empty() {
                            return Err(bad("an empty dNSName".into()));
                        }
                        dns_names.insert(name);
                    }
                    GeneralName::IpAddress(octets) => {
                        let b = octets.as_bytes();
                        let ip = super::ip_address(b)
                            .ok_or_else(|| bad(format!("an iPAddress of {} bytes", b.len())))?;
                        ip_addresses.insert(ip);
                    }
                    other => {
                        return Err(bad(format!(
                            "subjectAltName may hold only dNSName and iPAddress, not {}",
                            general_name_kind(&other)
                        )));
                    }
                }
            }
        }
    }
    let common_name = csr
        .info
        .subject
        .common_name()
        .map_err(|e| bad(format!("subject commonName: {e}")))?
        .map(|cn| cn.value().to_ascii_lowercase());
    // RFC 8555 §7.4: a dNSName may be requested in the commonName alone (X-Road security
    // servers do), so the commonName is one of the requested names.
    let common_name = common_name.map(|cn| cn.trim_end_matches('.').to_owned());
    if let Some(cn) = &common_name {
        match cn.parse::<IpAddr>() {
            Ok(ip) => {
                ip_addresses.insert(ip);
            }
            Err(_) if cn.is_empty() => return Err(bad("an empty commonName".into())),
            Err(_) => {
                dns_names.insert(cn.clone());
            }
        }
    }
    if dns_names.is_empty() && ip_addresses.is_empty() {
        return Err(bad(
            "the CSR names nothing: add a subjectAltName (or a commonName)".into(),
        ));
    }
    Ok(ParsedCsr {
        public_key: csr.info.public_key,
        key,
        dns_names,
        ip_addresses,
        common_name,
        subject: csr.info.subject,
    })
}

fn general_name_kind(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// CA/B Forum BR §6.1.5–6.1.6: RSA 2048+ with exponent 65537, NIST P-256/P-384.
fn check_key(key: &SubjectPublicKeyInfoOwned, policy: &KeyPolicy) -> Result<CsrKey, CsrError> {
    let refuse = |m: String| CsrError::BadPublicKey(m);
    match key.algorithm.oid {
        EC_PUBLIC_KEY => {
            let curve: ObjectIdentifier = key
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or_else(|| refuse("EC keys must name their curve".into()))?;
            match curve {
                P256 if policy.allow_p256 => Ok(CsrKey::P256),
                P384 if policy.allow_p384 => Ok(CsrKey::P384),
                other => Err(refuse(format!(
                    "EC curve {other} is not accepted; use P-256 or P-384"
                ))),
            }
        }
        RSA_ENCRYPTION => {
            let bytes = key
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| refuse("malformed RSA key".into()))?;
            let rsa = RsaPublicKey::from_der(bytes)
                .map_err(|e| refuse(format!("malformed RSA key: {e}")))?;
            let modulus = rsa.modulus.as_bytes();
            let bits =
                modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize);
            if bits < policy.rsa_min_bits || bits > policy.rsa_max_bits {
                return Err(refuse(format!(
                    "RSA keys of {bits} bits are not accepted; use {} to {} bits",
                    policy.rsa_min_bits, policy.rsa_max_bits
                )));
            }
            if rsa.public_exponent.as_bytes() != [0x01, 0x00, 0x01] {
                return Err(refuse("RSA keys must use the public exponent 65537".into()));
            }
            Ok(CsrKey::Rsa { bits })
        }
        ED25519 if policy.allow_ed25519 => Ok(CsrKey::Ed25519),
        ED25519 => Err(refuse(
            "Ed25519 keys are not accepted by this profile".into(),
        )),
        other => Err(refuse(format!("key algorithm {other} is not accepted"))),
    }
}

#[cfg(test)]
mod tests;
