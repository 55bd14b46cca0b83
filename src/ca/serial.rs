//! Certificate serial numbers: 128 random bits, positive, never zero.

use ring::rand::{SecureRandom, SystemRandom};
use x509_cert::serial_number::SerialNumber;

use super::CaError;

/// Serial length in bytes: above the 64 bits of entropy CA/B Forum BR §7.1 demands.
const SERIAL_LEN: usize = 16;

/// A fresh random serial number (RFC 5280 §4.1.2.2: positive, at most 20 octets).
pub fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; SERIAL_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Invalid("the system RNG failed".into()))?;
    // Top bit clear keeps it positive without a pad byte; a set second bit keeps every
    // serial exactly SERIAL_LEN octets long, so lengths leak nothing.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_sixteen_octets_and_distinct() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        for s in [a, b] {
            assert_eq!(s.as_bytes().len(), SERIAL_LEN);
            assert_eq!(s.as_bytes()[0] & 0xc0, 0x40);
        }
    }
}
