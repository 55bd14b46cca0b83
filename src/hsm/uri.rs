//! RFC 7512 `pkcs11:` URIs, the portable way to name a token (and, for tools, a key).
//!
//! Only the attributes that select a token or a module are used; `pin-value` is refused
//! because a PIN never belongs in a configuration file or on a command line.

use std::collections::BTreeMap;

/// The parts of a `pkcs11:` URI that hsm-acme acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label (CKA_LABEL of the token, `CK_TOKEN_INFO.label`).
    pub token: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `manufacturer`: the token manufacturer ID.
    pub manufacturer: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `slot-id`: a slot number (discouraged: SoftHSM renumbers slots).
    pub slot_id: Option<u64>,
    /// `object`: a key label.
    pub object: Option<String>,
    /// `module-path` (query): the PKCS#11 module to load.
    pub module_path: Option<String>,
    /// `pin-source` (query): a file holding the PIN.
    pub pin_source: Option<String>,
}

/// Why a URI was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pkcs11 URI: {0}")]
pub struct UriError(String);

impl Pkcs11Uri {
    /// Parses `pkcs11:path-attrs?query-attrs` (RFC 7512 §2.3).
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| UriError("it must start with \"pkcs11:\"".into()))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Self::default();
        for (name, value) in attributes(path, ';')? {
            match name.as_str() {
                "token" => out.token = Some(value),
                "serial" => out.serial = Some(value),
                "manufacturer" => out.manufacturer = Some(value),
                "model" => out.model = Some(value),
                "object" => out.object = Some(value),
                "slot-id" => {
                    out.slot_id = Some(value.parse().map_err(|_| {
                        UriError(format!("slot-id {value:?} is not a decimal number"))
                    })?);
                }
                // RFC 7512 §2.3: other path attributes narrow the match further; hsm-acme
                // selects keys by label, so they carry no meaning here and are ignored.
                _ => {}
            }
        }
        if let Some(query) = query {
            for (name, value) in attributes(query, '&')? {
                match name.as_str() {
                    "module-path" => out.module_path = Some(value),
                    "pin-source" => {
                        let path = value.strip_prefix("file:").unwrap_or(&value).to_owned();
                        out.pin_source = Some(path);
                    }
                    "pin-value" => {
                        return Err(UriError(
                            "pin-value is not accepted: give the PIN in a file (pin-source or \
                             pin_file) or a systemd credential"
                                .into(),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

fn attributes(part: &str, separator: char) -> Result<BTreeMap<String, String>, UriError> {
    let mut map = BTreeMap::new();
    for attr in part.split(separator).filter(|a| !a.is_empty()) {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| UriError(format!("attribute {attr:?} has no '='")))?;
        let value = percent_decode(value)?;
        if map.insert(name.to_owned(), value).is_some() {
            // RFC 7512 §2.3: an attribute may appear at most once in the path.
            return Err(UriError(format!("attribute {name:?} appears twice")));
        }
    }
    Ok(map)
}

fn percent_decode(value: &str) -> Result<String, UriError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError(format!("bad percent-encoding in {value:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError(format!("{value:?} does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query_attributes() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=My%20CA;serial=0123abcd;slot-id=7;object=issuing-1\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("My CA"));
        assert_eq!(uri.serial.as_deref(), Some("0123abcd"));
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.object.as_deref(), Some("issuing-1"));
        assert_eq!(
            uri.module_path.as_deref(),
            Some("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(uri.pin_source.as_deref(), Some("/run/pin"));
    }

    #[test]
    fn refuses_pin_value_and_malformed_input() {
        let err = Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234").unwrap_err();
        assert!(err.to_string().contains("pin-value is not accepted"));
        assert!(Pkcs11Uri::parse("token=a").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=a;token=b").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=%zz").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:slot-id=x").is_err());
    }

    #[test]
    fn empty_path_is_allowed() {
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
    }
}
