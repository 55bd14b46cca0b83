//! tls-alpn-01 validation (RFC 8737): a TLS handshake with ALPN `acme-tls/1` whose
//! self-signed certificate names exactly the identifier and carries the SHA-256 digest of
//! the key authorization in a critical acmeIdentifier extension.
//!
//! Any certificate chain is accepted (the proof is the extension, not a CA signature), but
//! the handshake signature is still verified against the presented key, so the responder
//! must hold the certificate's private key. IP identifiers (RFC 8738 §6) use the reverse
//! DNS name as SNI and an iPAddress subjectAltName.

use std::net::IpAddr;
use std::sync::Arc;

use der::asn1::{AnyRef, OctetString};
use der::{Decode, Encode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, PeerMisbehaved, SignatureScheme};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::resolver::Resolver;
use super::{VaConfig, ValidationFailure};
use crate::acme::Identifier;

/// The ALPN protocol name (RFC 8737 §6.2).
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// id-pe-acmeIdentifier (RFC 8737 §6.1).
pub const ID_PE_ACME_IDENTIFIER: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// id-ce-subjectAltName (RFC 5280 §4.2.1.6).
const ID_CE_SUBJECT_ALT_NAME: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.17");

/// Validates a tls-alpn-01 challenge for `identifier` (`dns` or `ip`).
pub async fn validate_tls_alpn01(
    config: &VaConfig,
    resolver: &dyn Resolver,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let target = Target::of(identifier)?;
    let run = handshake_and_check(config, resolver, &target, key_authorization);
    tokio::time::timeout(config.request_timeout, run)
        .await
        .map_err(|_| {
            ValidationFailure::Connection(format!(
                "tls-alpn-01 for {identifier} on port {}: no answer within {:?}",
                config.tls_alpn01_port, config.request_timeout
            ))
        })?
}

/// What is connected to, sent as SNI, and expected in the subjectAltName.
#[derive(Debug)]
enum Target {
    Dns(String),
    Ip(IpAddr),
}

impl Target {
    fn of(identifier: &Identifier) -> Result<Self, ValidationFailure> {
        match identifier.kind.as_str() {
            "dns" if identifier.value.starts_with("*.") => {
                // RFC 8555 §7.1.3: wildcards are validated with dns-01 only.
                Err(ValidationFailure::Unauthorized(format!(
                    "tls-alpn-01 cannot validate the wildcard {identifier}"
                )))
            }
            "dns" => Ok(Self::Dns(
                identifier.value.trim_end_matches('.').to_ascii_lowercase(),
            )),
            "ip" => identifier.value.parse().map(Self::Ip).map_err(|_| {
                ValidationFailure::Unauthorized(format!("{identifier} is not an IP address"))
            }),
            _ => Err(ValidationFailure::Unauthorized(format!(
                "tls-alpn-01 cannot validate {identifier}"
            ))),
        }
    }

    /// The SNI value: the name, or for an address its reverse DNS name (RFC 8738 §6).
    fn server_name(&self) -> String {
        match self {
            Self::Dns(name) => name.clone(),
            Self::Ip(ip) => reverse_name(*ip),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Dns(name) => name.clone(),
            Self::Ip(ip) => ip.to_string(),
        }
    }
}

/// The reverse-mapping name of `ip` (RFC 1035 §3.5 `in-addr.arpa`, RFC 3596 §2.5 nibbles
/// under `ip6.arpa`), as RFC 8738 §6 requires for the SNI.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

async fn handshake_and_check(
    config: &VaConfig,
    resolver: &dyn Resolver,
    target: &Target,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let port = config.tls_alpn01_port;
    let what = format!("tls-alpn-01 for {}:{port}", target.describe());
    let addresses = match target {
        Target::Dns(name) => resolver.lookup_ip(name).await?,
        Target::Ip(ip) => vec![*ip],
    };
    let stream = super::connect_first(config, addresses, port)
        .await
        .map_err(|e| e.failure(&what))?;

    let sni = target.server_name();
    let name = ServerName::try_from(sni.clone())
        .map_err(|e| ValidationFailure::Tls(format!("{what}: bad TLS name {sni:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config()?);
    let tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| ValidationFailure::Tls(format!("{what}: TLS handshake failed: {e}")))?;
    let (_, connection) = tls.get_ref();

    // RFC 8737 §3: the acme-tls/1 protocol must have been negotiated.
    if connection.alpn_protocol() != Some(ACME_TLS_1) {
        return Err(ValidationFailure::Unauthorized(format!(
            "{what}: the server did not negotiate the ALPN protocol \"acme-tls/1\""
        )));
    }
    let certificate = connection
        .peer_certificates()
        .and_then(<[CertificateDer<'_>]>::first)
        .ok_or_else(|| ValidationFailure::Tls(format!("{what}: no certificate presented")))?;
    check_certificate(certificate, target, key_authorization).map_err(|e| prefix_detail(e, &what))
}

fn prefix_detail(failure: ValidationFailure, what: &str) -> ValidationFailure {
    match failure {
        ValidationFailure::Unauthorized(m) => {
            ValidationFailure::Unauthorized(format!("{what}: {m}"))
        }
        ValidationFailure::IncorrectResponse(m) => {
            ValidationFailure::IncorrectResponse(format!("{what}: {m}"))
        }
        other => other,
    }
}

/// RFC 8737 §3: exactly one subjectAltName, equal to the identifier, and a critical
/// acmeIdentifier extension holding SHA-256 of the key authorization.
fn check_certificate(
    der_bytes: &[u8],
    target: &Target,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let certificate = Certificate::from_der(der_bytes).map_err(|e| {
        ValidationFailure::Unauthorized(format!("the certificate does not parse: {e}"))
    })?;
    let extensions = certificate
        .tbs_certificate()
        .extensions()
        .map(Vec::as_slice)
        .unwrap_or_default();

    let mut sans = extensions
        .iter()
        .filter(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME);
    let (Some(san), None) = (sans.next(), sans.next()) else {
        return Err(ValidationFailure::Unauthorized(
            "the certificate must have exactly one subjectAltName extension".into(),
        ));
    };
    let names = SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(|e| {
        ValidationFailure::Unauthorized(format!("the subjectAltName does not parse: {e}"))
    })?;
    let [only] = names.0.as_slice() else {
        return Err(ValidationFailure::Unauthorized(format!(
            "the subjectAltName must hold exactly one name, it holds {}",
            names.0.len()
        )));
    };
    let matches = match (only, target) {
        (GeneralName::DnsName(name), Target::Dns(expected)) => name
            .as_str()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(expected),
        (GeneralName::IpAddress(octets), Target::Ip(expected)) => {
            let expected = match expected {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            octets.as_bytes() == expected.as_slice()
        }
        _ => false,
    };
    if !matches {
        return Err(ValidationFailure::Unauthorized(format!(
            "the subjectAltName {} is not {}",
            describe_name(only),
            target.describe()
        )));
    }

    let mut ids = extensions
        .iter()
        .filter(|e| e.extn_id == ID_PE_ACME_IDENTIFIER);
    let (Some(acme_id), None) = (ids.next(), ids.next()) else {
        return Err(ValidationFailure::Unauthorized(
            "the certificate must have exactly one acmeIdentifier extension (1.3.6.1.5.5.7.1.31)"
                .into(),
        ));
    };
    if !acme_id.critical {
        return Err(ValidationFailure::Unauthorized(
            "the acmeIdentifier extension is not marked critical".into(),
        ));
    }
    // RFC 8737 §3: Authorization ::= OCTET STRING (SIZE (32)), the DER-encoded extnValue.
    let expected = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let got = OctetString::from_der(acme_id.extn_value.as_bytes()).map_err(|e| {
        ValidationFailure::IncorrectResponse(format!(
            "the acmeIdentifier extension is not a DER OCTET STRING: {e}"
        ))
    })?;
    if got.as_bytes() != expected.as_ref() {
        return Err(ValidationFailure::IncorrectResponse(format!(
            "the acmeIdentifier extension holds {}, expected SHA-256 of the key authorization {}",
            hex(got.as_bytes()),
            hex(expected.as_ref())
        )));
    }
    Ok(())
}

fn describe_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(n) => format!("dNSName {:?}", n.as_str()),
        GeneralName::IpAddress(o) => match crate::ca::ip_address(o.as_bytes()) {
            Some(ip) => format!("iPAddress {ip}"),
            None => format!("iPAddress {}", hex(o.as_bytes())),
        },
        _ => "of another kind".into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, ValidationFailure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ChallengeCertificate(Arc::clone(&provider)));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ValidationFailure::Tls(format!("TLS client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // RFC 8737 §3: offer exactly acme-tls/1.
    config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
    // Nothing is resumed: every validation sees a fresh handshake and certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any certificate (its content is checked after the handshake) but verifies the
/// handshake signature with the presented key, using the ring provider's algorithms.
///
/// The key is taken from the certificate by x509-cert rather than webpki: webpki refuses
/// certificates with unknown critical extensions, and the acmeIdentifier extension is
/// critical by design.
#[derive(Debug)]
struct ChallengeCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for ChallengeCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // TLS 1.2 does not bind the scheme to a curve: try each algorithm the scheme maps
        // to whose public key type is the certificate's (as rustls does).
        let spki = SpkiParts::of(cert)?;
        let algorithms = &self.0.signature_verification_algorithms;
        let candidates = algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(rustls::Error::PeerMisbehaved(
                PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        let bad = || rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        let alg = candidates
            .iter()
            .find(|alg| alg.public_key_alg_id().as_ref() == spki.algorithm.as_slice())
            .ok_or_else(bad)?;
        alg.verify_signature(&spki.key, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| bad())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = SpkiParts::of(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.der),
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A certificate's public key, in the forms rustls' verification wants.
struct SpkiParts {
    /// The whole SubjectPublicKeyInfo, DER.
    der: Vec<u8>,
    /// The AlgorithmIdentifier's contents, without the SEQUENCE header.
    algorithm: Vec<u8>,
    /// The subjectPublicKey bits.
    key: Vec<u8>,
}

impl SpkiParts {
    fn of(cert: &CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let bad = |_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
        let certificate = Certificate::from_der(cert.as_ref()).map_err(bad)?;
        let spki = certificate.tbs_certificate().subject_public_key_info();
        let algorithm_der = spki.algorithm.to_der().map_err(bad)?;
        let algorithm = AnyRef::from_der(&algorithm_der)
            .map_err(bad)?
            .value()
            .to_vec();
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ))?
            .to_vec();
        Ok(Self {
            der: spki.to_der().map_err(bad)?,
            algorithm,
            key,
        })
    }
}

#[cfg(test)]
mod tests;
