//! JWS request verification (RFC 8555 §6.2–6.5), before any handler sees a payload.
//!
//! Order of checks: flattened JSON serialization only → protected header (algorithm on the
//! allow-list, exactly one of `jwk`/`kid`, `url` equal to the request URL, nonce redeemed)
//! → the key (embedded JWK, or the account named by `kid`, which must be valid) → the
//! signature. Handlers receive a [`Verified`] request and nothing else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::JwsVerifier;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::nonce::{NonceError, NonceStore};
use crate::acme::AccountStatus;
use crate::acme::ExternalAccountBinding;
pub use crate::acme::jwk::thumbprint;
use crate::acme::jwk::verifier;
use crate::error::{Error, ErrorKind};
use crate::store::AccountRecord;

/// JWS algorithms accepted for account keys (RFC 8555 §6.2: never `none`, never MACs).
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// Which key a resource accepts (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// newAccount: the key itself, `jwk`.
    Jwk,
    /// Everything bound to an account: `kid`.
    Kid,
    /// revokeCert: either (§7.6).
    Either,
}

/// The key a request was verified with.
#[derive(Debug, Clone)]
pub enum VerifiedKey {
    /// An embedded JWK (public members only) and its RFC 7638 thumbprint.
    Jwk {
        /// The JWK.
        jwk: Value,
        /// Its thumbprint.
        thumbprint: String,
    },
    /// The account named by `kid`.
    Account(AccountRecord),
}

/// A verified request.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The decoded payload; empty for POST-as-GET (§6.3).
    pub payload: Vec<u8>,
    /// Who signed it.
    pub key: VerifiedKey,
}

impl Verified {
    /// The account, for resources that require `kid`.
    pub fn account(&self) -> Result<&AccountRecord, Error> {
        match &self.key {
            VerifiedKey::Account(account) => Ok(account),
            VerifiedKey::Jwk { .. } => Err(Error::malformed("this resource requires \"kid\"")),
        }
    }

    /// Whether this is a POST-as-GET.
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Parses the payload as `T`.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Error> {
        if self.payload.is_empty() {
            return Err(Error::malformed(
                "this request needs a payload, not POST-as-GET",
            ));
        }
        serde_json::from_slice(&self.payload).map_err(|e| Error::malformed(format!("payload: {e}")))
    }
}

/// RFC 7515 §7.2.2 flattened JSON serialization; unknown members (an unprotected `header`,
/// `signatures`) are refused, as RFC 8555 §6.2 forbids them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

#[derive(Deserialize)]
struct Protected {
    alg: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    jwk: Option<Map<String, Value>>,
    kid: Option<String>,
    #[serde(default)]
    b64: Option<bool>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand; hsm-acme knows none.
    #[serde(default)]
    crit: Option<Value>,
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| Error::malformed(format!("JWS {field} is not base64url without padding")))
}

/// What verification needs from the rest of the server.
pub struct Context<'a> {
    /// The URL the request was sent to (base URL + path).
    pub url: &'a str,
    /// Outstanding nonces.
    pub nonces: &'a NonceStore,
    /// Account URLs start with this; the rest is the account id.
    pub account_url_prefix: &'a str,
    /// Looks an account up by id.
    pub account: &'a dyn Fn(&str) -> Result<Option<AccountRecord>, Error>,
    /// Verifiers already built for account keys.
    pub verifiers: &'a VerifierCache,
}

/// Most verifiers kept; past that the cache starts afresh (a bound, not an eviction policy:
/// a working set larger than this is rebuilt as it is used).
const VERIFIER_CACHE_CAPACITY: usize = 10_000;

/// Verifiers by algorithm and RFC 7638 key thumbprint. Building one from a JWK costs more
/// than the verification itself (the key is decoded and imported into the crypto library),
/// and an account signs every request with the same key.
#[derive(Debug, Default)]
pub struct VerifierCache {
    map: Mutex<HashMap<String, Arc<dyn JwsVerifier>>>,
}

impl VerifierCache {
    /// Verifies `signature` over `input` with `alg` and `jwk` (whose thumbprint is
    /// `thumbprint`). A verifier is kept only after it verified a signature, so keys that
    /// never sign anything cannot fill the cache.
    fn verify(
        &self,
        alg: &str,
        jwk: &Value,
        thumbprint: &str,
        input: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        let bad = || Error::malformed("JWS signature does not verify");
        let key = format!("{alg}.{thumbprint}");
        if let Some(found) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return found.verify(input, signature).map_err(|_| bad());
        }
        let built: Arc<dyn JwsVerifier> = Arc::from(verifier(alg, jwk)?);
        built.verify(input, signature).map_err(|_| bad())?;
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= VERIFIER_CACHE_CAPACITY {
                map.clear();
            }
            map.insert(key, built);
        }
        Ok(())
    }

    /// How many verifiers are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Verifies a request body sent to `ctx.url`.
pub fn verify(body: &[u8], rule: KeyRule, ctx: &Context<'_>) -> Result<Verified, Error> {
    let jws: Flattened = serde_json::from_slice(body).map_err(|e| {
        Error::malformed(format!(
            "the body must be a JWS in flattened JSON serialization: {e}"
        ))
    })?;
    let header_bytes = b64("protected header", &jws.protected)?;
    let header: Protected = serde_json::from_slice(&header_bytes)
        .map_err(|e| Error::malformed(format!("JWS protected header: {e}")))?;

    // §6.2: the algorithm.
    let alg = header
        .alg
        .as_deref()
        .ok_or_else(|| Error::malformed("JWS protected header has no \"alg\""))?;
    if !ALGORITHMS.contains(&alg) {
        return Err(Error::new(
            ErrorKind::BadSignatureAlgorithm,
            format!(
                "JWS algorithm {alg:?} is not accepted; use one of {}",
                ALGORITHMS.join(", ")
            ),
        ));
    }
    if header.b64 == Some(false) {
        return Err(Error::malformed(
            "unencoded payloads (b64: false) are not accepted",
        ));
    }
    if header.crit.is_some() {
        return Err(Error::malformed(
            "critical JWS header extensions (\"crit\") are not supported",
        ));
    }
    // §6.2: exactly one of jwk and kid, as the resource demands.
    let source = match (header.jwk, header.kid, rule) {
        (Some(_), Some(_), _) => {
            return Err(Error::malformed("JWS header has both \"jwk\" and \"kid\""));
        }
        (None, None, _) => {
            return Err(Error::malformed(
                "JWS header has neither \"jwk\" nor \"kid\"",
            ));
        }
        (Some(_), None, KeyRule::Kid) => {
            return Err(Error::malformed(
                "this resource requires \"kid\", not \"jwk\"",
            ));
        }
        (None, Some(_), KeyRule::Jwk) => {
            return Err(Error::malformed(
                "this resource requires \"jwk\", not \"kid\"",
            ));
        }
        (Some(jwk), None, _) => Source::Jwk(jwk),
        (None, Some(kid), _) => Source::Kid(kid),
    };
    // §6.4: the URL the client meant must be the one it reached.
    match header.url.as_deref() {
        Some(url) if url == ctx.url => {}
        Some(url) => {
            return Err(Error::unauthorized(format!(
                "JWS \"url\" {url:?} does not match the request URL {:?}",
                ctx.url
            )));
        }
        None => return Err(Error::malformed("JWS protected header has no \"url\"")),
    }
    // §6.5: the nonce, once.
    let nonce = header
        .nonce
        .as_deref()
        .ok_or_else(|| Error::new(ErrorKind::BadNonce, "JWS protected header has no \"nonce\""))?;
    ctx.nonces.redeem(nonce).map_err(|e| {
        Error::new(
            ErrorKind::BadNonce,
            match e {
                NonceError::Unknown => "nonce unknown or already used; get a fresh one",
                NonceError::Expired => "nonce expired; get a fresh one",
            },
        )
    })?;

    let (jwk, key) = match source {
        Source::Jwk(map) => {
            let public = public_jwk(map)?;
            let thumbprint = thumbprint(&public)?;
            (
                public.clone(),
                VerifiedKey::Jwk {
                    jwk: public,
                    thumbprint,
                },
            )
        }
        Source::Kid(kid) => {
            let id = kid.strip_prefix(ctx.account_url_prefix).ok_or_else(|| {
                Error::new(
                    ErrorKind::AccountDoesNotExist,
                    format!("{kid:?} is not an account URL of this server"),
                )
            })?;
            let account = (ctx.account)(id)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::AccountDoesNotExist,
                    format!("no account {kid:?}"),
                )
            })?;
            // RFC 8555 §7.3.6: nothing more is accepted from a deactivated account.
            if account.status != AccountStatus::Valid {
                return Err(Error::new(
                    ErrorKind::AccountNotValid,
                    format!("account {kid:?} is {}", account.status),
                ));
            }
            (account.jwk.clone(), VerifiedKey::Account(account))
        }
    };

    let signature = b64("signature", &jws.signature)?;
    let key_thumbprint = match &key {
        VerifiedKey::Jwk { thumbprint, .. } => thumbprint,
        VerifiedKey::Account(account) => &account.thumbprint,
    };
    let signing_input = format!("{}.{}", jws.protected, jws.payload);
    ctx.verifiers.verify(
        alg,
        &jwk,
        key_thumbprint,
        signing_input.as_bytes(),
        &signature,
    )?;
    let payload = b64("payload", &jws.payload)?;
    Ok(Verified { payload, key })
}

/// The inner JWS of keyChange (RFC 8555 §7.3.5), verified: the new key and the payload.
#[derive(Debug, Clone)]
pub struct InnerKeyChange {
    /// The new key (public members only).
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub thumbprint: String,
    /// The inner payload.
    pub payload: Vec<u8>,
}

/// Verifies the inner JWS of keyChange found in the outer payload: flattened, signed by
/// the `jwk` it carries, with the outer request's `url` and without a nonce.
pub fn verify_key_change_inner(outer_payload: &[u8], url: &str) -> Result<InnerKeyChange, Error> {
    let jws: Flattened = serde_json::from_slice(outer_payload).map_err(|e| {
        Error::malformed(format!(
            "keyChange payload must be a flattened JWS signed by the new key: {e}"
        ))
    })?;
    let header_bytes = b64("inner protected header", &jws.protected)?;
    let header: Protected = serde_json::from_slice(&header_bytes)
        .map_err(|e| Error::malformed(format!("inner JWS protected header: {e}")))?;
    let alg = header
        .alg
        .as_deref()
        .ok_or_else(|| Error::malformed("inner JWS has no \"alg\""))?;
    if !ALGORITHMS.contains(&alg) {
        return Err(Error::new(
            ErrorKind::BadSignatureAlgorithm,
            format!(
                "inner JWS algorithm {alg:?} is not accepted; use one of {}",
                ALGORITHMS.join(", ")
            ),
        ));
    }
    if header.kid.is_some() {
        return Err(Error::malformed(
            "the inner JWS must carry \"jwk\", not \"kid\"",
        ));
    }
    let map = header
        .jwk
        .ok_or_else(|| Error::malformed("the inner JWS must carry the new key as \"jwk\""))?;
    if header.nonce.is_some() {
        return Err(Error::malformed("the inner JWS must not carry a \"nonce\""));
    }
    if header.crit.is_some() {
        return Err(Error::malformed(
            "critical JWS header extensions (\"crit\") are not supported",
        ));
    }
    if header.url.as_deref() != Some(url) {
        return Err(Error::malformed(format!(
            "the inner JWS \"url\" must be the outer one, {url:?}"
        )));
    }
    let jwk = public_jwk(map)?;
    let thumbprint = thumbprint(&jwk)?;
    let signature = b64("inner signature", &jws.signature)?;
    let signing_input = format!("{}.{}", jws.protected, jws.payload);
    verifier(alg, &jwk)?
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| Error::malformed("the inner JWS signature does not verify with its jwk"))?;
    Ok(InnerKeyChange {
        jwk,
        thumbprint,
        payload: b64("inner payload", &jws.payload)?,
    })
}

/// Longest EAB key id accepted; operators' ids are far shorter.
pub const MAX_EAB_KID: usize = 256;

/// Parses newAccount's `externalAccountBinding` (RFC 8555 §7.3.4): a flattened JWS whose
/// protected header names `alg`, `kid` and `url`. Only its form is checked here; the RA
/// checks it against the key it names.
pub fn parse_external_account_binding(value: &Value) -> Result<ExternalAccountBinding, Error> {
    let bad = |why: String| Error::malformed(format!("externalAccountBinding: {why}"));
    let jws: Flattened = serde_json::from_value(value.clone()).map_err(|e| {
        bad(format!(
            "must be a JWS in flattened JSON serialization: {e}"
        ))
    })?;
    let header_bytes = b64("EAB protected header", &jws.protected)?;
    let header: Value =
        serde_json::from_slice(&header_bytes).map_err(|e| bad(format!("protected header: {e}")))?;
    let text = |name: &str| -> Result<Option<String>, Error> {
        match header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{name:?} must be a string"))),
        }
    };
    let alg = text("alg")?.ok_or_else(|| bad("the protected header has no \"alg\"".into()))?;
    let kid = text("kid")?.ok_or_else(|| bad("the protected header has no \"kid\"".into()))?;
    if kid.is_empty() || kid.len() > MAX_EAB_KID {
        return Err(bad(format!("\"kid\" must be 1 to {MAX_EAB_KID} bytes")));
    }
    let url = text("url")?.ok_or_else(|| bad("the protected header has no \"url\"".into()))?;
    if header.get("nonce").is_some() {
        return Err(bad("the protected header must not carry a \"nonce\"".into()));
    }
    if header.get("b64") == Some(&Value::Bool(false)) {
        return Err(bad(
            "unencoded payloads (b64: false) are not accepted".into()
        ));
    }
    Ok(ExternalAccountBinding {
        alg,
        kid,
        url,
        payload: b64("EAB payload", &jws.payload)?,
        signature: b64("EAB signature", &jws.signature)?,
        signing_input: format!("{}.{}", jws.protected, jws.payload),
    })
}

enum Source {
    Jwk(Map<String, Value>),
    Kid(String),
}

/// The public members of a JWK; a JWK carrying private members is refused.
fn public_jwk(map: Map<String, Value>) -> Result<Value, Error> {
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        if map.contains_key(private) {
            return Err(Error::malformed(format!(
                "\"jwk\" contains the private member {private:?}"
            )));
        }
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests;
