//! The IPv4 path four packets per step, as DPDK's `l3fwd_lpm_sse.h` / `l3fwd_lpm_neon.h` do:
//! for four packets the classifier found to be IPv4 without options, the RFC 1812 checks
//! (header checksum, TTL), the TTL decrement and the destination addresses for the lookup.
//!
//! The classifier has already checked what [`super::ipv4_check`] checks besides the
//! checksum (version 4, IHL 5, total length within the frame), so a step only sums the four
//! 20-byte headers — with NEON on aarch64 ([`super::neon`]), SSE2 on x86_64 ([`super::sse2`]),
//! by the portable loop elsewhere —
//! and tests and decrements the TTLs. Outcomes and bytes are those of
//! [`super::ipv4_check_and_decrement`] packet by packet (the oracle test below).

use super::{rfc1812::ttl_decrement_hdr, DropReason};
use crate::buf::PacketBuf;
use crate::classify::ptype;

/// The IPv4 header of an option-less packet.
pub(crate) type Hdr = [u8; 20];

/// The one's complement sum of each of four headers (16-bit words summed in memory order,
/// so byte-swapped on little-endian CPUs, which leaves `0xffff` — a valid checksum — as it
/// is).
#[inline(always)]
pub(crate) fn sum4(h: [&Hdr; 4]) -> [u16; 4] {
    #[cfg(target_arch = "aarch64")]
    {
        super::neon::sum4(h)
    }
    #[cfg(target_arch = "x86_64")]
    {
        super::sse2::sum4(h)
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        sum4_scalar(h)
    }
}

/// The portable [`sum4`] (on aarch64 and x86_64 only the oracle of the NEON and SSE2 twins in
/// the tests).
#[cfg(any(not(any(target_arch = "aarch64", target_arch = "x86_64")), test))]
#[inline(always)]
pub(crate) fn sum4_scalar(h: [&Hdr; 4]) -> [u16; 4] {
    h.map(|h| {
        let mut s = 0u32;
        for w in h.chunks_exact(2) {
            s += u32::from(u16::from_ne_bytes([w[0], w[1]]));
        }
        fold(s)
    })
}

/// Folds a 32-bit sum of 16-bit words to 16 bits with end-around carry.
#[inline(always)]
pub(crate) fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// True when the four packets can take the four-packet step: IPv4 without options by the
/// classifier's packet type (the L3 bits exactly [`ptype::L3_IPV4`]) and not longer than
/// `max_len`.
#[inline(always)]
pub(crate) fn eligible<B: PacketBuf>(pkts: &[B], max_len: usize) -> bool {
    pkts.len() >= 4 && pkts[..4].iter().all(|m| m.ptype() & ptype::L3_MASK == ptype::L3_IPV4 && m.len() <= max_len)
}

/// One step over `pkts[..4]` (all [`eligible`]): per packet, its destination address (host
/// order) after the checks and TTL decrement, or the drop reason (`BadChecksum`,
/// `TtlExpired`; the header unchanged then). `None` (nothing changed) if a header is not where
/// the metadata says, which the classifier rules out.
#[inline(always)]
pub(crate) fn step<B: PacketBuf>(pkts: &mut [B]) -> Option<[Result<u32, DropReason>; 4]> {
    let [a, b, c, d, ..] = pkts else { return None };
    let (ha, hb, hc, hd) = (hdr(a)?, hdr(b)?, hdr(c)?, hdr(d)?);
    let s = sum4([&*ha, &*hb, &*hc, &*hd]);
    // Written out rather than an array `map` with a closure: LLVM kept that out of line.
    Some([check(ha, s[0]), check(hb, s[1]), check(hc, s[2]), check(hd, s[3])])
}

/// One packet's outcome from its header sum: the checksum test, then the TTL.
#[inline(always)]
fn check(h: &mut Hdr, sum: u16) -> Result<u32, DropReason> {
    if sum != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    ttl_decrement_hdr(h)?;
    Ok(u32::from_be_bytes([h[16], h[17], h[18], h[19]]))
}

/// The 20-byte IPv4 header at the packet's L3 offset (its metadata's L2 length).
#[inline(always)]
fn hdr<B: PacketBuf>(m: &mut B) -> Option<&mut Hdr> {
    let l3 = usize::from(m.l2_len());
    m.data_mut().get_mut(l3..l3 + 20)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use proptest::prelude::*;

    /// A 20-byte option-less header (version/IHL 0x45, total length 20): random fields, the
    /// checksum valid when `valid`.
    fn header() -> impl Strategy<Value = Hdr> {
        (any::<[u8; 20]>(), any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 64, 255])).prop_map(
            |(mut h, valid, ttl)| {
                h[0] = 0x45;
                h[2..4].copy_from_slice(&20u16.to_be_bytes());
                h[8] = ttl;
                if valid {
                    h[10..12].fill(0);
                    let c = checksum::checksum(&h);
                    h[10..12].copy_from_slice(&c.to_be_bytes());
                }
                h
            },
        )
    }

    proptest! {
        /// The oracle: four headers at once (NEON on aarch64) give the outcomes and bytes of
        /// `ipv4_check_and_decrement` packet by packet.
        #[test]
        fn step_matches_the_per_packet_checks(hs in prop::array::uniform4(header())) {
            let mut got = hs;
            let [a, b, c, d] = &mut got;
            let sums = sum4([&*a, &*b, &*c, &*d]);
            prop_assert_eq!(sums, sum4_scalar([&hs[0], &hs[1], &hs[2], &hs[3]]));
            for (k, h) in got.iter_mut().enumerate() {
                let mut want = hs[k];
                let w = super::super::ipv4_check_and_decrement(&mut want);
                prop_assert_eq!(check(h, sums[k]).map(|_| ()), w);
                prop_assert_eq!(&*h, &want);
            }
        }
    }

    /// `step` over packets: the destinations and reasons, and bytes as the per-packet
    /// checks leave them.
    #[test]
    fn step_over_classified_packets() {
        use crate::classify::classify_burst_l3;
        use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
        let mut cfg = MempoolConfig::new("x4", 64);
        cfg.backing = MemBacking::Normal;
        let pool = Mempool::new(cfg).unwrap();
        let frame = |vlan: bool, ttl: u8, good: bool, dst: u8| {
            let mut f = vec![0u8; 12];
            if vlan {
                f.extend_from_slice(&[0x81, 0, 0, 7]);
            }
            f.extend_from_slice(&[8, 0]);
            let mut h: Hdr = [0x45, 0, 0, 28, 0, 0, 0, 0, ttl, 17, 0, 0, 198, 18, 0, 1, 198, 19, 0, dst];
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            if !good {
                h[11] ^= 1;
            }
            f.extend_from_slice(&h);
            f.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
            f
        };
        let frames =
            [frame(false, 64, true, 1), frame(true, 64, true, 2), frame(false, 64, false, 3), frame(true, 1, true, 4)];
        let mut pkts: Vec<Mbuf> = frames.iter().map(|f| Mbuf::from_slice(&pool, f).unwrap()).collect();
        classify_burst_l3(&mut pkts);
        assert!(eligible(&pkts, usize::MAX));
        assert!(!eligible(&pkts, 44), "the tagged frames (46 bytes) are too long for the step");
        let r = step(&mut pkts).unwrap();
        assert_eq!(r[0], Ok(u32::from_be_bytes([198, 19, 0, 1])));
        assert_eq!(r[1], Ok(u32::from_be_bytes([198, 19, 0, 2])));
        assert_eq!(r[2], Err(DropReason::BadChecksum));
        assert_eq!(r[3], Err(DropReason::TtlExpired));
        for (m, f) in pkts.iter().zip(&frames) {
            let l3 = usize::from(m.l2_len());
            let mut want = f.clone();
            let _ = super::super::ipv4_check_and_decrement(&mut want[l3..]);
            assert_eq!(m.data(), &want[..]);
        }
    }
}
