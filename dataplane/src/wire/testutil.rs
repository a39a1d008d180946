//! Helpers shared by the wire tests.

use super::Error;

/// Runs `parse` on every prefix of `bytes` (lengths `0..=bytes.len()`) and checks that exactly
/// the prefixes shorter than `min_ok` are rejected, and that the full buffer parses.
pub(crate) fn check_truncations<R>(bytes: &[u8], min_ok: usize, parse: impl Fn(&[u8]) -> Result<R, Error>) {
    for len in 0..=bytes.len() {
        let r = parse(&bytes[..len]);
        assert_eq!(r.is_err(), len < min_ok, "prefix of length {len} (min_ok {min_ok}): got {:?}", r.err());
    }
}
