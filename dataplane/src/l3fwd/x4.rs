//! The IPv4 path four packets per step, as DPDK's `l3fwd_lpm_sse.h` / `l3fwd_lpm_neon.h` do:
//! for four packets the classifier found to be IPv4 without options, the RFC 1812 checks
//! (header checksum, TTL), the TTL decrement and the destination addresses for the lookup.
//!
//! The classifier has already checked what [`super::ipv4_check`] checks besides the
//! checksum (version 4, IHL 5, total length within the frame), so a step only sums the four
//! 20-byte headers — with NEON on aarch64 ([`super::neon`]), SSE2 on x86_64 ([`super::sse2`]),
//! by the portable loop elsewhere, keeping the sums in vector registers down to one bit per
//! packet — and tests and decrements the TTLs. Outcomes and bytes are those of
//! [`super::ipv4_check_and_decrement`] packet by packet (the oracle test below).

use super::rfc1812::{decrement_live_ttl, ttl_decrement_hdr};
use super::{DropReason, PASS};
use crate::buf::PacketBuf;
use crate::classify::ptype;
use crate::stage::Verdict;

/// The IPv4 header of an option-less packet.
pub(crate) type Hdr = [u8; 20];

/// Bit `k` set when header `k`'s checksum is valid (its one's complement sum is `0xffff`).
#[inline(always)]
pub(crate) fn valid4(h: [&Hdr; 4]) -> u32 {
    #[cfg(target_arch = "aarch64")]
    {
        super::neon::valid4(h)
    }
    #[cfg(target_arch = "x86_64")]
    {
        super::sse2::valid4(h)
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        valid4_scalar(h)
    }
}

/// The portable [`valid4`].
#[cfg(any(not(any(target_arch = "aarch64", target_arch = "x86_64")), test))]
#[inline(always)]
pub(crate) fn valid4_scalar(h: [&Hdr; 4]) -> u32 {
    sum4_scalar(h).iter().enumerate().fold(0, |m, (k, &s)| m | u32::from(s == 0xffff) << k)
}

/// The one's complement sum of each of four headers, folded to 16 bits (16-bit words summed
/// in memory order, so byte-swapped on little-endian CPUs, which leaves `0xffff` — a valid
/// checksum — as it is): the oracle of the NEON and SSE2 sums in the tests.
#[cfg(any(not(any(target_arch = "aarch64", target_arch = "x86_64")), test))]
#[inline(always)]
pub(crate) fn sum4_scalar(h: [&Hdr; 4]) -> [u16; 4] {
    h.map(|h| {
        let mut s = 0u32;
        for w in h.chunks_exact(2) {
            s += u32::from(u16::from_ne_bytes([w[0], w[1]]));
        }
        let s = (s & 0xffff) + (s >> 16);
        ((s & 0xffff) + (s >> 16)) as u16
    })
}

/// True when the four packets can take the four-packet step: IPv4 without options by the
/// classifier's packet type (the L3 bits exactly [`ptype::L3_IPV4`]) and not longer than
/// `max_len`.
#[inline(always)]
pub(crate) fn eligible<B: PacketBuf>(pkts: &[B], max_len: usize) -> bool {
    pkts.len() >= 4 && pkts[..4].iter().all(|m| m.ptype() & ptype::L3_MASK == ptype::L3_IPV4 && m.len() <= max_len)
}

/// One step over `pkts[..4]` (all [`eligible`]): per packet, its verdict in `v[..4]` —
/// [`PASS`] after the checks and TTL decrement, or the drop (`BadChecksum`, `TtlExpired`; the
/// header unchanged then) — and its destination address (host order; 0 for a drop) in
/// `dst[..4]`. False, with nothing changed, when there are fewer than four packets or slots,
/// or a header is not where the metadata says (which the classifier rules out).
#[inline(always)]
pub(crate) fn step<B: PacketBuf>(pkts: &mut [B], v: &mut [Verdict], dst: &mut [u32]) -> bool {
    let ([a, b, c, d, ..], Some(v), Some(dst)) = (pkts, v.first_chunk_mut::<4>(), dst.first_chunk_mut::<4>()) else {
        return false;
    };
    // The four bounds tested first, with one branch: then no header below can be missing.
    let fits = |m: &B| usize::from(m.l2_len()) + 20 <= m.len();
    if !(fits(a) & fits(b) & fits(c) & fits(d)) {
        return false;
    }
    let (Some(ha), Some(hb), Some(hc), Some(hd)) = (hdr(a), hdr(b), hdr(c), hdr(d)) else {
        return false;
    };
    let ok = valid4([&*ha, &*hb, &*hc, &*hd]);
    // The common case in one test: four valid checksums and four live TTLs.
    if ok == 0xf && (ha[8] > 1) & (hb[8] > 1) & (hc[8] > 1) & (hd[8] > 1) {
        decrement_live_ttl(ha);
        decrement_live_ttl(hb);
        decrement_live_ttl(hc);
        decrement_live_ttl(hd);
        *v = [PASS; 4];
        *dst = [daddr(ha), daddr(hb), daddr(hc), daddr(hd)];
        return true;
    }
    // Written out rather than a loop or an array `map` with a closure: LLVM kept those out
    // of line or in memory.
    (v[0], dst[0]) = check(ha, ok & 1 != 0);
    (v[1], dst[1]) = check(hb, ok & 2 != 0);
    (v[2], dst[2]) = check(hc, ok & 4 != 0);
    (v[3], dst[3]) = check(hd, ok & 8 != 0);
    true
}

/// One packet's verdict and destination from its checksum test: then the TTL.
#[inline(always)]
fn check(h: &mut Hdr, valid: bool) -> (Verdict, u32) {
    if !valid {
        return (Verdict::drop(DropReason::BadChecksum), 0);
    }
    match ttl_decrement_hdr(h) {
        Ok(()) => (PASS, daddr(h)),
        Err(r) => (Verdict::drop(r), 0),
    }
}

/// The destination address (host order).
#[inline(always)]
fn daddr(h: &Hdr) -> u32 {
    u32::from_be_bytes([h[16], h[17], h[18], h[19]])
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
            let refs = [&hs[0], &hs[1], &hs[2], &hs[3]];
            #[cfg(target_arch = "x86_64")]
            prop_assert_eq!(super::super::sse2::sum4(refs), sum4_scalar(refs));
            #[cfg(target_arch = "aarch64")]
            prop_assert_eq!(super::super::neon::sum4(refs), sum4_scalar(refs));
            let ok = valid4(refs);
            prop_assert_eq!(ok, valid4_scalar(refs));
            for (k, h) in got.iter_mut().enumerate() {
                let mut want = hs[k];
                let w = super::super::ipv4_check_and_decrement(&mut want);
                let (v, dst) = check(h, ok >> k & 1 != 0);
                prop_assert_eq!(v.get().map(|_| ()), w);
                prop_assert_eq!(dst, if w.is_ok() { u32::from_be_bytes([want[16], want[17], want[18], want[19]]) } else { 0 });
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
        let (mut v, mut dst) = ([Verdict::drop(DropReason::Filtered); 4], [7u32; 4]);
        assert!(!step(&mut pkts[..3], &mut v, &mut dst), "three packets are not a step");
        assert!(!step(&mut pkts, &mut v[..3], &mut dst), "nor three slots");
        assert_eq!((v, dst), ([Verdict::drop(DropReason::Filtered); 4], [7; 4]), "nothing written");
        assert!(step(&mut pkts, &mut v, &mut dst));
        assert_eq!(v, [PASS, PASS, Verdict::drop(DropReason::BadChecksum), Verdict::drop(DropReason::TtlExpired)]);
        assert_eq!(dst, [u32::from_be_bytes([198, 19, 0, 1]), u32::from_be_bytes([198, 19, 0, 2]), 0, 0]);
        for (m, f) in pkts.iter().zip(&frames) {
            let l3 = usize::from(m.l2_len());
            let mut want = f.clone();
            let _ = super::super::ipv4_check_and_decrement(&mut want[l3..]);
            assert_eq!(m.data(), &want[..]);
        }
    }
}
