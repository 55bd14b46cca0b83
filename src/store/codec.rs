//! Record encoding: one version byte, then JSON. Decoding returns `Result`, never panics,
//! so a damaged record is an error for one request, not a crashed server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The current record format.
const VERSION: u8 = 1;

/// Encodes a record.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    serde_json::to_writer(&mut out, record).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, json)) => {
            serde_json::from_slice(json).map_err(|e| StoreError::Codec(e.to_string()))
        }
        Some((other, _)) => Err(StoreError::Codec(format!("unknown record version {other}"))),
        None => Err(StoreError::Codec("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_an_error() {
        let bytes = encode(&vec!["a".to_owned()]).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap(), vec!["a".to_owned()]);
        assert!(decode::<Vec<String>>(&[]).is_err());
        assert!(decode::<Vec<String>>(&[9, b'[', b']']).is_err());
        assert!(decode::<Vec<String>>(&[VERSION, b'{']).is_err());
    }
}
