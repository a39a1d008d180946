//! RFC 1812 §5.2.2 checks and the TTL / hop-limit decrement.

use crate::stage::DropReason;
use crate::wire::{checksum, Ipv4Packet, Ipv6Packet};

/// RFC 1812 §5.2.2 checks on the IPv4 header at the start of `h` (the frame from L3 on),
/// then the TTL check and decrement with an RFC 1624 checksum update.
///
/// # Errors
/// `Malformed` (too short, version, IHL, total length), `BadChecksum`, `TtlExpired`; the
/// header is unchanged then.
#[inline(always)]
pub fn ipv4_check_and_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    ipv4_check(h)?;
    ttl_decrement(h)
}

/// The TTL check and decrement with an RFC 1624 checksum update, on an IPv4 header already
/// checked (at least 20 bytes).
///
/// # Errors
/// `TtlExpired` (TTL ≤ 1), the header unchanged then.
#[inline(always)]
fn ttl_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    match h.first_chunk_mut::<20>() {
        Some(h) => ttl_decrement_hdr(h),
        None => Err(DropReason::Malformed),
    }
}

/// [`ttl_decrement`] on a 20-byte header.
///
/// The RFC 1624 update `~(~C + ~m + m')` for the TTL/protocol word `m` becoming
/// `m' = m - 0x0100` (TTL ≥ 2, so no borrow) has `~m + m' = 0xfeff` whatever the word, so the
/// new checksum is `~(~C + 0xfeff)` with one end-around carry: what
/// [`checksum::update_u16`] computes, without its general fold loop. One's complement sums
/// do not depend on byte order (RFC 1071), so the checksum word is read and written in the
/// CPU's order with the constant in that order too: no byte swaps.
///
/// # Errors
/// `TtlExpired` (TTL ≤ 1), the header unchanged then.
#[inline(always)]
pub(crate) fn ttl_decrement_hdr(h: &mut [u8; 20]) -> Result<(), DropReason> {
    if h[8] <= 1 {
        return Err(DropReason::TtlExpired);
    }
    decrement_live_ttl(h);
    Ok(())
}

/// The decrement and checksum update of [`ttl_decrement_hdr`] for a TTL the caller has
/// found to be 2 or more.
#[inline(always)]
pub(crate) fn decrement_live_ttl(h: &mut [u8; 20]) {
    debug_assert!(h[8] > 1, "only a live TTL is decremented");
    let c = u16::from_ne_bytes([h[10], h[11]]);
    let x = u32::from(!c) + u32::from(0xfeff_u16.to_be());
    let c = !(((x & 0xffff) + (x >> 16)) as u16);
    h[8] = h[8].wrapping_sub(1);
    h[10..12].copy_from_slice(&c.to_ne_bytes());
}

/// RFC 1812 §5.2.2 checks on the IPv4 header at the start of `h` (the frame from L3 on):
/// at least 20 bytes, version 4, IHL ≥ 5 and within `h`, total length between IHL·4 and
/// `h.len()`, header checksum valid. Returns the header length.
///
/// # Errors
/// `Malformed` or `BadChecksum`.
#[inline(always)]
pub fn ipv4_check(h: &[u8]) -> Result<usize, DropReason> {
    if h.len() < 20 {
        return Err(DropReason::Malformed);
    }
    // 20 bytes or more: the view's fixed-header getters cannot panic.
    let ip = Ipv4Packet::new_unchecked(h);
    let ihl = ip.header_len();
    if ip.version() != 4 || ihl < 20 || h.len() < ihl {
        return Err(DropReason::Malformed);
    }
    let total = usize::from(ip.total_len());
    if total < ihl || total > h.len() {
        return Err(DropReason::Malformed);
    }
    if checksum::sum(&h[..ihl]) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    Ok(ihl)
}

/// IPv6 checks (length, version, payload length) and hop-limit decrement on the header at
/// the start of `h`.
///
/// # Errors
/// `Malformed` or `TtlExpired` (hop limit ≤ 1); the header is unchanged then.
#[inline(always)]
pub fn ipv6_check_and_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    let mut ip = Ipv6Packet::new_checked(h).map_err(|_| DropReason::Malformed)?;
    let hop = ip.hop_limit();
    if hop <= 1 {
        return Err(DropReason::TtlExpired);
    }
    ip.set_hop_limit(hop - 1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 20-byte IPv4 header (UDP, 10.0.0.1 -> 10.0.0.2) with a valid checksum, followed
    /// by `payload` bytes, total length covering both.
    fn ipv4(ttl: u8, payload: usize) -> Vec<u8> {
        let total = (20 + payload) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.resize(20 + payload, 0xab);
        h
    }

    #[test]
    fn rfc1812_checks() {
        let good = ipv4(64, 8);
        let mut p = good.clone();
        assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
        assert_eq!(p[8], 63);
        assert_eq!(checksum::sum(&p[..20]), 0xffff, "checksum still valid after the decrement");
        // Each broken field, alone.
        type Case = (&'static str, fn(&mut Vec<u8>), DropReason);
        let cases: [Case; 7] = [
            ("truncated below 20", |p| p.truncate(19), DropReason::Malformed),
            ("version 6", |p| p[0] = 0x65, DropReason::Malformed),
            ("ihl 4", |p| p[0] = 0x44, DropReason::Malformed),
            ("ihl beyond the frame", |p| p[0] = 0x4f, DropReason::Malformed),
            ("total length < ihl", |p| p[2..4].copy_from_slice(&19u16.to_be_bytes()), DropReason::Malformed),
            ("total length > frame", |p| p[2..4].copy_from_slice(&29u16.to_be_bytes()), DropReason::Malformed),
            ("checksum", |p| p[10] ^= 1, DropReason::BadChecksum),
        ];
        for (what, f, want) in cases {
            let mut p = good.clone();
            f(&mut p);
            let before = p.clone();
            assert_eq!(ipv4_check_and_decrement(&mut p), Err(want), "{what}");
            assert_eq!(p, before, "{what}: unchanged");
        }
        for ttl in [0, 1] {
            let mut p = ipv4(ttl, 0);
            assert_eq!(ipv4_check_and_decrement(&mut p), Err(DropReason::TtlExpired));
        }
        // Options (IHL 6) are accepted and covered by the checksum.
        let mut p = ipv4(9, 4);
        p[0] = 0x46;
        p[10..12].fill(0);
        let c = checksum::checksum(&p[..24]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
        assert_eq!(checksum::sum(&p[..24]), 0xffff);
    }

    proptest! {
        /// The TTL-only update gives `checksum::update_u16`'s checksum bit for bit, whatever
        /// the checksum field holds (valid or not).
        #[test]
        fn ttl_update_matches_update_u16(mut h in any::<[u8; 20]>(), ttl in 2u8..=255) {
            h[8] = ttl;
            let (proto, c) = (h[9], u16::from_be_bytes([h[10], h[11]]));
            let want = checksum::update_u16(c, u16::from_be_bytes([ttl, proto]), u16::from_be_bytes([ttl - 1, proto]));
            prop_assert_eq!(ttl_decrement_hdr(&mut h), Ok(()));
            prop_assert_eq!(h[8], ttl - 1);
            prop_assert_eq!(u16::from_be_bytes([h[10], h[11]]), want);
        }

        /// The incremental update equals a full recompute for any header.
        #[test]
        fn ttl_decrement_matches_full_recompute(mut h in proptest::collection::vec(any::<u8>(), 20), ttl in 2u8..=255) {
            h[0] = 0x45;
            h[2..4].copy_from_slice(&20u16.to_be_bytes());
            h[8] = ttl;
            h[10..12].fill(0);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let mut p = h.clone();
            prop_assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
            let mut q = h.clone();
            q[8] = ttl - 1;
            q[10..12].fill(0);
            let full = checksum::checksum(&q);
            prop_assert_eq!(checksum::sum(&p[..20]), 0xffff);
            // Equal up to the two representations of zero in one's complement.
            let inc = u16::from_be_bytes([p[10], p[11]]);
            prop_assert!(inc == full || (inc ^ full) == 0xffff && (inc == 0 || full == 0));
        }
    }

    #[test]
    fn ipv6_checks() {
        let mut h = vec![0u8; 48];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[7] = 2;
        assert_eq!(ipv6_check_and_decrement(&mut h), Ok(()));
        assert_eq!(h[7], 1);
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::TtlExpired));
        h[7] = 64;
        h[4..6].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::Malformed));
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[0] = 0x40;
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::Malformed));
        assert_eq!(ipv6_check_and_decrement(&mut h[..39]), Err(DropReason::Malformed));
    }
}
