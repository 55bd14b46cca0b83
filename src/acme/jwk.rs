//! JSON Web Keys as ACME uses them: RFC 7638 thumbprints (account identity, key
//! authorizations) and the JWK form of a certificate key, to compare it with account keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Sequence};
use serde_json::{Value, json};
use spki::SubjectPublicKeyInfoOwned;

use josekit::jwk::Jwk;
use josekit::jws::{ES256, ES384, EdDSA, JwsVerifier, RS256};

use crate::error::{Error, ErrorKind};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// RFC 8017 §A.1.1 `RSAPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
pub fn thumbprint(jwk: &Value) -> Result<String, Error> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::new(ErrorKind::BadPublicKey, format!("\"jwk\" lacks {name:?}")))
    };
    let kty = member("kty")?;
    // serde_json maps may keep insertion order, so the canonical form is built by hand.
    let canonical = match kty {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            json_str(member("crv")?),
            json_str(member("x")?),
            json_str(member("y")?)
        ),
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            json_str(member("e")?),
            json_str(member("n")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            json_str(member("crv")?),
            json_str(member("x")?)
        ),
        other => {
            return Err(Error::new(
                ErrorKind::BadPublicKey,
                format!("key type {other:?} is not accepted"),
            ));
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// Builds a verifier for `alg` over `jwk`, refusing keys that do not fit the algorithm.
pub fn verifier(alg: &str, jwk: &Value) -> Result<Box<dyn JwsVerifier>, Error> {
    let bad_key = |e: josekit::JoseError| {
        Error::new(
            ErrorKind::BadPublicKey,
            format!("the key cannot verify {alg}: {e}"),
        )
    };
    let map = jwk
        .as_object()
        .cloned()
        .ok_or_else(|| Error::malformed("\"jwk\" is not an object"))?;
    let jwk = Jwk::from_map(map).map_err(bad_key)?;
    Ok(match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(&jwk).map_err(bad_key)?),
        "ES384" => Box::new(ES384.verifier_from_jwk(&jwk).map_err(bad_key)?),
        "RS256" => {
            check_rsa(jwk.parameter("n"), jwk.parameter("e"))?;
            Box::new(RS256.verifier_from_jwk(&jwk).map_err(bad_key)?)
        }
        "EdDSA" if jwk.curve() == Some("Ed25519") => {
            Box::new(EdDSA.verifier_from_jwk(&jwk).map_err(bad_key)?)
        }
        _ => {
            return Err(Error::new(
                ErrorKind::BadSignatureAlgorithm,
                format!("{alg} does not fit this key"),
            ));
        }
    })
}

/// Smallest and largest RSA modulus accepted for account and EAB keys: big keys cost a full
/// exponentiation per request, and one key must have one thumbprint.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// RSA account keys: a 2048 to 4096-bit modulus without leading zero octets (RFC 7518
/// §6.3.1.1, so the RFC 7638 thumbprint is unique) and the public exponent 65537.
fn check_rsa(n: Option<&Value>, e: Option<&Value>) -> Result<(), Error> {
    let bad = |why: String| Error::new(ErrorKind::BadPublicKey, format!("RSA key: {why}"));
    let decode = |v: Option<&Value>, name: &str| {
        v.and_then(Value::as_str)
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .ok_or_else(|| bad(format!("\"{name}\" is not base64url")))
    };
    let n = decode(n, "n")?;
    let e = decode(e, "e")?;
    match n.first() {
        Some(0) | None => return Err(bad("\"n\" has leading zero octets".into())),
        Some(first) => {
            let bits = n.len() * 8 - first.leading_zeros() as usize;
            if !RSA_BITS.contains(&bits) {
                return Err(bad(format!(
                    "a {bits}-bit modulus; accepted are {} to {} bits",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                )));
            }
        }
    }
    if e != [1, 0, 1] {
        return Err(bad("the public exponent must be 65537".into()));
    }
    Ok(())
}

fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// The JWK of a certificate public key, or `None` for key types ACME accounts cannot have.
pub fn spki_to_jwk(spki: &SubjectPublicKeyInfoOwned) -> Option<Value> {
    let key = spki.subject_public_key.as_bytes()?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match spki.algorithm.oid {
        EC_PUBLIC_KEY => {
            let curve: ObjectIdentifier = spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
            let (crv, len) = match curve {
                P256 => ("P-256", 32),
                P384 => ("P-384", 48),
                _ => return None,
            };
            let point = key.strip_prefix(&[0x04])?;
            (point.len() == 2 * len).then(|| {
                json!({"kty": "EC", "crv": crv, "x": b64(&point[..len]), "y": b64(&point[len..])})
            })
        }
        RSA => {
            let rsa = RsaPublicKey::from_der(key).ok()?;
            Some(json!({
                "kty": "RSA",
                "n": b64(rsa.modulus.as_bytes()),
                "e": b64(rsa.public_exponent.as_bytes()),
            }))
        }
        ED25519 => Some(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key)})),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn unknown_key_types_are_refused() {
        assert!(thumbprint(&json!({"kty": "oct", "k": "x"})).is_err());
        assert!(thumbprint(&json!({"kty": "EC", "crv": "P-256"})).is_err());
    }

    #[test]
    fn rsa_keys_are_2048_to_4096_bits_with_exponent_65537_and_no_leading_zeros() {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let rsa = |n: &[u8], e: &[u8]| json!({"kty": "RSA", "n": b64(n), "e": b64(e)});
        let modulus = |bytes: usize| {
            let mut n = vec![0xc5u8; bytes];
            n[bytes - 1] = 0x01;
            n
        };
        let refused = |jwk: &Value| verifier("RS256", jwk).err().map(|e| e.kind);
        let bad = Some(ErrorKind::BadPublicKey);
        assert_eq!(refused(&rsa(&modulus(128), &[1, 0, 1])), bad, "1024 bits");
        assert_eq!(refused(&rsa(&modulus(1024), &[1, 0, 1])), bad, "8192 bits");
        assert_eq!(refused(&rsa(&modulus(256), &[3])), bad, "e = 3");
        let mut padded = vec![0u8];
        padded.extend(modulus(256));
        assert_eq!(refused(&rsa(&padded, &[1, 0, 1])), bad, "leading zero");
        // A real 2048-bit key passes.
        let pair = RS256.generate_key_pair(2048).unwrap();
        let jwk = Value::Object(pair.to_jwk_public_key().as_ref().clone());
        assert!(verifier("RS256", &jwk).is_ok());
    }
}
