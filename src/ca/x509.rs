//! Adapter between the [`Signer`] seam and x509-cert's builders.
//!
//! The builders want a `Keypair` whose verifying key encodes to an SPKI; a token key only
//! has the SPKI, so the adapter hands that out. Signing itself happens outside the builder:
//! `finalize` yields the TBS bytes, the token signs them, `assemble` completes the structure.

use der::asn1::BitString;
use der::{Document, Encode};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder, RequestBuilder};
use x509_cert::request::CertReq;

use super::CaError;
use super::verify::{verify_certificate, verify_signature};
use crate::hsm::Signer;

/// A token key's public half, in the shape x509-cert expects of a verifying key.
#[derive(Clone, Debug)]
pub struct SpkiKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<Document> {
        Ok(Document::encode_msg(&self.0)?)
    }
}

/// A `Signer` presented as an x509-cert keypair.
pub struct SignerKeypair<'a>(pub &'a dyn Signer);

impl signature::Keypair for SignerKeypair<'_> {
    type VerifyingKey = SpkiKey;

    fn verifying_key(&self) -> SpkiKey {
        SpkiKey(self.0.public_key().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for SignerKeypair<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.algorithm())
    }
}

/// Signs a certificate on the token and checks the signature in software.
pub fn sign_certificate<P: BuilderProfile>(
    mut builder: CertificateBuilder<P>,
    signer: &dyn Signer,
) -> Result<Certificate, CaError> {
    let tbs = builder.finalize(&SignerKeypair(signer))?;
    let signature = signer.sign(&tbs)?;
    assemble_verified(builder, signer, &signature)
}

/// Completes a finalized builder with the token's signature and verifies it in software,
/// so a faulty token signature never leaves the CA.
pub fn assemble_verified<P: BuilderProfile>(
    builder: CertificateBuilder<P>,
    signer: &dyn Signer,
    signature: &[u8],
) -> Result<Certificate, CaError> {
    let cert = builder.assemble(BitString::from_bytes(signature)?, &SignerKeypair(signer))?;
    verify_certificate(&cert, signer.public_key())?;
    Ok(cert)
}

/// Signs a PKCS#10 request on the token (for a CA certified by an external root).
pub fn sign_request(mut builder: RequestBuilder, signer: &dyn Signer) -> Result<CertReq, CaError> {
    let keypair = SignerKeypair(signer);
    let info = builder.finalize(&keypair)?;
    let signature = signer.sign(&info)?;
    let request = builder.assemble(BitString::from_bytes(&signature)?, &keypair)?;
    let info_der = request.info.to_der()?;
    let sig = request
        .signature
        .as_bytes()
        .ok_or_else(|| CaError::Encoding("unaligned signature".into()))?;
    verify_signature(signer.public_key(), &request.algorithm, &info_der, sig)?;
    Ok(request)
}
