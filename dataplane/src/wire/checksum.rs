//! The internet checksum (RFC 1071), pseudo-headers for UDP/TCP/ICMPv6 over IPv4 and IPv6,
//! and incremental updates (RFC 1624).
//!
//! Vocabulary: a *sum* is the folded 16-bit one's complement sum of big-endian 16-bit words
//! (never complemented); a *checksum* is the complement of a sum, the value stored in a header.
//! A buffer whose checksum field is correct sums to `0xffff`.
//!
//! [`sum`] reads sixteen bytes at a time in native byte order and adds the 32-bit halves into
//! two 64-bit accumulators, which cannot overflow for any buffer shorter than 2^35 bytes; one's
//! complement sums are byte-order independent (RFC 1071 §2(B)), so the result is swapped to
//! network order once at the end.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// Folds a wide one's complement accumulator down to 16 bits (end-around carries).
///
/// The result is 0 only when `acc` is 0.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Native-order wide sum of `data` (not folded, not swapped).
#[inline]
fn sum_native(data: &[u8]) -> u64 {
    let mut a: u64 = 0;
    let mut b: u64 = 0;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        let x = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let y = u64::from_ne_bytes([c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]]);
        a += (x >> 32) + (x & 0xffff_ffff);
        b += (y >> 32) + (y & 0xffff_ffff);
    }
    // The tail (< 16 bytes) in 8/4/2/1-byte steps. Every step before the last starts at an
    // even offset, so a lone last byte is the first byte of a 16-bit word, which
    // `from_ne_bytes([b, 0])` places correctly on either endianness.
    let mut rest = chunks.remainder();
    if rest.len() >= 8 {
        let x = u64::from_ne_bytes([rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7]]);
        a += (x >> 32) + (x & 0xffff_ffff);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        b += u64::from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        a += u64::from(u16::from_ne_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        b += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    // Each step adds < 2^34, so `a + b` stays far below 2^64 for any real buffer.
    a + b
}

/// The folded one's complement sum of `data` as big-endian 16-bit words; an odd final byte is
/// padded with a zero byte on the right (RFC 1071).
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    u16::from_be(fold(sum_native(data)))
}

/// One's complement addition of two sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The checksum (complemented sum) of `data`: what goes in an IPv4 header or ICMPv4 message
/// whose checksum field was zero while summing.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// Reference implementation: the plain RFC 1071 loop over 16-bit words. Used as the oracle
/// for [`sum`] in tests; slow, do not use on the data path.
pub fn sum_reference(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The sum of the IPv4 pseudo-header (RFC 768 / RFC 9293): source, destination, zero,
/// protocol, and the upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, len: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(u8::from(protocol))
        + u64::from(len);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit
/// upper-layer length, three zero bytes and the next-header value.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: IpProtocol, len: u32) -> u16 {
    let acc = sum_native(&src.octets());
    let acc = u64::from(u16::from_be(fold(acc + sum_native(&dst.octets()))));
    fold(acc + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(u8::from(protocol)))
}

/// The checksum of an upper-layer message (UDP, TCP, ICMP over IPv4) including the IPv4
/// pseudo-header. `segment` is the whole L4 header and payload with its checksum field zero.
///
/// For UDP, a result of 0 must be sent as `0xffff` (RFC 768);
/// [`UdpPacket::fill_checksum_v4`](super::UdpPacket::fill_checksum_v4) does that.
#[inline]
pub fn l4_checksum_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, segment: &[u8]) -> u16 {
    // Lengths above 65535 cannot occur inside an IPv4 packet; truncating keeps this total.
    let ph = pseudo_header_v4(src, dst, protocol, segment.len() as u16);
    !add(ph, sum(segment))
}

/// The checksum of an upper-layer message (UDP, TCP, ICMPv6) including the IPv6
/// pseudo-header. `segment` is the whole L4 header and payload with its checksum field zero.
#[inline]
pub fn l4_checksum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: IpProtocol, segment: &[u8]) -> u16 {
    let ph = pseudo_header_v6(src, dst, protocol, segment.len() as u32);
    !add(ph, sum(segment))
}

/// True when `segment` (L4 header and payload, checksum field as received) carries a correct
/// checksum over the IPv4 pseudo-header.
#[inline]
pub fn verify_l4_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, segment: &[u8]) -> bool {
    add(pseudo_header_v4(src, dst, protocol, segment.len() as u16), sum(segment)) == 0xffff
}

/// True when `segment` (L4 header and payload, checksum field as received) carries a correct
/// checksum over the IPv6 pseudo-header.
#[inline]
pub fn verify_l4_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: IpProtocol, segment: &[u8]) -> bool {
    add(pseudo_header_v6(src, dst, protocol, segment.len() as u32), sum(segment)) == 0xffff
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word covered by `checksum` changes from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`.
///
/// The word must sit at an even offset of the covered data (e.g. IPv4 TTL+protocol). For a
/// field at an odd offset, swap the bytes of `old` and `new` and the result is still right.
#[inline]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old) + u64::from(new))
}

/// RFC 1624 update for a 32-bit field (an IPv4 address, a TCP sequence number) at an even
/// offset.
#[inline]
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!checksum)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(acc)
}

/// RFC 1624 update for an arbitrary even-length byte field at an even offset (`old` and `new`
/// must be equally long; a trailing odd byte is treated as padded with zero like in [`sum`]).
#[inline]
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let acc = u64::from(!checksum) + u64::from(!sum(old)) + u64::from(sum(new));
    !fold(acc)
}

/// RFC 1624 update for a rewritten IPv4 address (NAT): use on the IPv4 header checksum and
/// on the TCP/UDP checksum (which covers the address through the pseudo-header).
#[inline]
pub fn update_ipv4_addr(checksum: u16, old: &Ipv4Addr, new: &Ipv4Addr) -> u16 {
    update_u32(checksum, u32::from(*old), u32::from(*new))
}

/// RFC 1624 update for a rewritten IPv6 address: use on the TCP/UDP/ICMPv6 checksum, which
/// covers the address through the pseudo-header.
#[inline]
pub fn update_ipv6_addr(checksum: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    update_bytes(checksum, &old.octets(), &new.octets())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn carries_fold() {
        assert_eq!(sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(sum(&[0xff; 64]), 0xffff);
    }

    #[test]
    fn ipv4_header_known_checksum() {
        // A classic example header: checksum 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        let mut with = hdr;
        with[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum(&with), 0xffff);
    }

    #[test]
    fn pseudo_header_v6_matches_bytes() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&0x0001_0020u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(&src, &dst, IpProtocol::Icmpv6, 0x0001_0020), sum_reference(&bytes));
    }

    fn equivalent(a: u16, b: u16) -> bool {
        // 0x0000 and 0xffff are the two zeros of one's complement arithmetic; they can only
        // differ when the covered data sums to zero, i.e. is all zeros.
        a == b || (a | b == 0xffff && (a == 0 || b == 0))
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(sum(&data), sum_reference(&data));
        }

        #[test]
        fn fast_sum_matches_reference_unaligned(
            data in proptest::collection::vec(any::<u8>(), 1..300),
            skip in 0usize..16,
        ) {
            let s = &data[skip.min(data.len())..];
            prop_assert_eq!(sum(s), sum_reference(s));
        }

        #[test]
        fn update_u16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..64),
            word in 0usize..32,
            new in any::<u16>(),
        ) {
            if data.len() % 2 == 1 { data.pop(); }
            let at = 2 * (word % (data.len() / 2));
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update_u16(before, old, new);
            prop_assert!(equivalent(inc, full), "inc {:#06x} full {:#06x}", inc, full);
            // Only all-zero data can produce the second zero.
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(inc, full);
            }
        }

        #[test]
        fn update_u32_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 20..21),
            new in any::<u32>(),
        ) {
            // An IPv4-header-shaped buffer; rewrite the source address at offset 12.
            data[10] = 0; data[11] = 0;
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
            data[12..16].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update_u32(before, old, new);
            prop_assert!(equivalent(inc, full));
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(inc, full);
            }
            let inc4 = update_ipv4_addr(before, &Ipv4Addr::from(old), &Ipv4Addr::from(new));
            prop_assert_eq!(inc4, inc);
        }

        #[test]
        fn update_ipv6_addr_matches_recompute(
            payload in proptest::collection::vec(any::<u8>(), 8..80),
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            new_src in any::<[u8; 16]>(),
        ) {
            let (src, dst, new_src) = (Ipv6Addr::from(src), Ipv6Addr::from(dst), Ipv6Addr::from(new_src));
            let before = l4_checksum_v6(&src, &dst, IpProtocol::Udp, &payload);
            let full = l4_checksum_v6(&new_src, &dst, IpProtocol::Udp, &payload);
            let inc = update_ipv6_addr(before, &src, &new_src);
            prop_assert!(equivalent(inc, full));
            // The pseudo-header always contains the non-zero protocol and length.
            prop_assert_eq!(inc, full);
        }

        #[test]
        fn ttl_decrement_matches_recompute(mut hdr in any::<[u8; 20]>(), ttl in 1u8..=255) {
            hdr[8] = ttl;
            hdr[10] = 0; hdr[11] = 0;
            let before = checksum(&hdr);
            let old = u16::from_be_bytes([hdr[8], hdr[9]]);
            hdr[8] = ttl - 1;
            let new = u16::from_be_bytes([hdr[8], hdr[9]]);
            let full = checksum(&hdr);
            let inc = update_u16(before, old, new);
            prop_assert!(equivalent(inc, full));
            if hdr.iter().any(|&b| b != 0) {
                prop_assert_eq!(inc, full);
            }
        }

        #[test]
        fn l4_checksum_verifies(
            seg in proptest::collection::vec(any::<u8>(), 8..200),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut seg = seg;
            seg[6] = 0; seg[7] = 0;
            let c = l4_checksum_v4(&src, &dst, IpProtocol::Udp, &seg);
            seg[6..8].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify_l4_v4(&src, &dst, IpProtocol::Udp, &seg));
        }
    }
}
