//! Frames: Ethernet, an optional 802.1Q tag, IPv4, UDP and a 16-byte signature.
//!
//! Sizes name the untagged Ethernet frame **including** the 4-byte FCS, as RFC 2544 does: a
//! 64-byte frame is 60 bytes in the buffer; a VLAN tag adds 4 bytes to every frame. The
//! signature right after the UDP header is
//! `magic u16 | flow u16 | seq u64 | tx_ns u32` (big endian), where `tx_ns` is the low 32 bits
//! of the CLOCK_MONOTONIC send time in nanoseconds (latency up to 4.29 s is measured with
//! wrap-around arithmetic). It fits a 64-byte frame with room to spare.

use dataplane::wire::{EtherType, EthernetAddress, Udp4FrameRepr, UdpPacket, VlanRepr};
use serde::Serialize;
use std::net::Ipv4Addr;

/// Signature magic.
pub const MAGIC: u16 = 0x7067;
/// Signature length.
pub const SIG_LEN: usize = 16;
/// Ethernet FCS length (counted in frame sizes, not in buffers).
pub const FCS: usize = 4;
const ETH: usize = 14;
const VLAN: usize = 4;
const IP: usize = 20;
const UDP: usize = 8;
/// Smallest frame size.
pub const MIN_FRAME: usize = 64;
/// Largest frame size.
pub const MAX_FRAME: usize = 9000;
/// The IMIX pattern (7:4:1 of 64/570/1518), interleaved.
pub const IMIX: [usize; 12] = [64, 64, 570, 64, 64, 570, 64, 64, 570, 64, 570, 1518];

/// Frame size choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FrameSize {
    /// One size, 64 to 9000.
    Fixed(usize),
    /// IMIX 7:4:1 of 64/570/1518.
    Imix,
}

impl std::fmt::Display for FrameSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameSize::Fixed(n) => write!(f, "{n}"),
            FrameSize::Imix => f.write_str("imix"),
        }
    }
}

impl std::str::FromStr for FrameSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(FrameSize::Imix);
        }
        let n: usize = s.trim().parse().map_err(|_| format!("frame size {s:?} is neither a number nor imix"))?;
        if !(MIN_FRAME..=MAX_FRAME).contains(&n) {
            return Err(format!("frame size {n} must be {MIN_FRAME} to {MAX_FRAME}"));
        }
        Ok(FrameSize::Fixed(n))
    }
}

impl FrameSize {
    /// The sizes of one pattern period.
    pub fn pattern(&self) -> &[usize] {
        match self {
            FrameSize::Fixed(n) => std::slice::from_ref(n),
            FrameSize::Imix => &IMIX,
        }
    }

    /// Mean frame size (for line-rate arithmetic).
    pub fn mean(&self) -> f64 {
        let p = self.pattern();
        p.iter().sum::<usize>() as f64 / p.len() as f64
    }

    /// Largest frame size.
    pub fn max(&self) -> usize {
        self.pattern().iter().copied().max().unwrap_or(MIN_FRAME)
    }
}

/// What to generate.
#[derive(Debug, Clone, Serialize)]
pub struct GenConfig {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// First source address (198.18.0.0/15).
    pub src_ip: Ipv4Addr,
    /// Destination address (198.18.0.0/15).
    pub dst_ip: Ipv4Addr,
    /// Source addresses to cycle through (flow i uses `src_ip + i % src_addrs`).
    pub src_addrs: u32,
    /// First UDP source port (flow i uses `base + i`).
    pub src_port: u16,
    /// UDP destination port (the receiver's filter).
    pub dst_port: u16,
    /// Flows, 1 to 65535.
    pub flows: u16,
    /// Frame sizes.
    pub size: FrameSize,
    /// 802.1Q VLAN id.
    pub vlan: Option<u16>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            src_mac: [0x02, 0, 0, 0, 0, 0x10],
            dst_mac: [0x02, 0, 0, 0, 0, 0x11],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_addrs: 1,
            src_port: 1024,
            dst_port: 7777,
            flows: 1,
            size: FrameSize::Fixed(64),
            vlan: None,
        }
    }
}

impl GenConfig {
    /// Checks flows, sizes, VLAN id and that every address is in 198.18.0.0/15.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.flows == 0 {
            return Err("flows must be at least 1".into());
        }
        if self.src_port as u32 + self.flows as u32 - 1 > u16::MAX as u32 {
            return Err(format!("src_port {} + flows {} overflows the port range", self.src_port, self.flows));
        }
        if self.src_addrs == 0 || self.src_addrs > 65536 {
            return Err("src_addrs must be 1 to 65536".into());
        }
        let last = Ipv4Addr::from(u32::from(self.src_ip).wrapping_add(self.src_addrs - 1));
        for (name, a) in [("src_ip", self.src_ip), ("src_ip + src_addrs - 1", last), ("dst_ip", self.dst_ip)] {
            if !crate::is_bench_addr(a) {
                return Err(format!("{name} {a} is outside 198.18.0.0/15 (the only addresses pktgen uses)"));
            }
        }
        if let Some(v) = self.vlan {
            if !(1..=4094).contains(&v) {
                return Err(format!("vlan {v} must be 1 to 4094"));
            }
        }
        for &s in self.size.pattern() {
            if !(MIN_FRAME..=MAX_FRAME).contains(&s) {
                return Err(format!("frame size {s} must be {MIN_FRAME} to {MAX_FRAME}"));
            }
        }
        Ok(())
    }

    /// Bytes of headers in front of the signature.
    pub fn header_len(&self) -> usize {
        ETH + if self.vlan.is_some() { VLAN } else { 0 } + IP + UDP
    }

    /// Buffer length of a frame of (untagged, FCS-inclusive) size `size`.
    pub fn buf_len(&self, size: usize) -> usize {
        size - FCS + if self.vlan.is_some() { VLAN } else { 0 }
    }

    /// Builds the template of flow `flow` at frame size `size` (signature zeroed).
    pub fn template(&self, flow: u16, size: usize) -> Vec<u8> {
        let len = self.buf_len(size);
        let mut f = vec![0u8; len];
        let src = Ipv4Addr::from(u32::from(self.src_ip).wrapping_add(flow as u32 % self.src_addrs));
        let repr = Udp4FrameRepr {
            vlan: self.vlan.map(|vid| VlanRepr { pcp: 0, dei: false, vid, ethertype: EtherType::Ipv4 }),
            ..Udp4FrameRepr::new(
                EthernetAddress(self.dst_mac),
                EthernetAddress(self.src_mac),
                src,
                self.dst_ip,
                self.src_port + flow,
                self.dst_port,
            )
        };
        // validate() keeps sizes at MIN_FRAME or more and the tag in range.
        repr.emit(&mut f).expect("the frame holds its headers");
        // UDP checksum 0: none (IPv4), so the signature can be written per packet.
        f
    }
}

/// The signature carried by every generated frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Flow id.
    pub flow: u16,
    /// Sequence number within the flow, from 0.
    pub seq: u64,
    /// Low 32 bits of the send time (CLOCK_MONOTONIC ns).
    pub tx_ns: u32,
}

impl Signature {
    /// Writes the signature to the first [`SIG_LEN`] bytes of `b` (which must be that long).
    #[inline(always)]
    pub fn write(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&self.flow.to_be_bytes());
        b[4..12].copy_from_slice(&self.seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.tx_ns.to_be_bytes());
    }

    /// Finds the signature in a frame sent to UDP port `dst_port` (up to two VLAN tags, IPv4
    /// with options), as the library's classifier parses it (valid IPv4 and UDP lengths, not a
    /// fragment); `None` for any other frame.
    #[inline]
    pub fn parse(f: &[u8], dst_port: u16) -> Option<Signature> {
        use dataplane::classify::{classify_one_lengths, ptype};
        let c = classify_one_lengths(f);
        let ipv4 = matches!(c.ptype & ptype::L3_MASK, ptype::L3_IPV4 | ptype::L3_IPV4_EXT);
        if !ipv4 || c.ptype & ptype::L4_MASK != ptype::L4_UDP {
            return None;
        }
        let udp = UdpPacket::new_checked(f.get(c.l4_offset()..)?).ok()?;
        if udp.dst_port() != dst_port {
            return None;
        }
        let s = udp.payload().get(..SIG_LEN)?;
        if u16::from_be_bytes([s[0], s[1]]) != MAGIC {
            return None;
        }
        Some(Signature {
            flow: u16::from_be_bytes([s[2], s[3]]),
            seq: u64::from_be_bytes(s[4..12].try_into().ok()?),
            tx_ns: u32::from_be_bytes(s[12..16].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::checksum;

    #[test]
    fn template_round_trip_every_size_with_and_without_vlan() {
        for vlan in [None, Some(100)] {
            for size in [64usize, 65, 570, 1518, 9000] {
                let g = GenConfig { vlan, flows: 3, ..GenConfig::default() };
                g.validate().unwrap();
                let mut t = g.template(2, size);
                assert_eq!(t.len(), size - 4 + if vlan.is_some() { 4 } else { 0 });
                let h = g.header_len();
                let sig = Signature { flow: 2, seq: u64::MAX - 3, tx_ns: 0xdead_beef };
                sig.write(&mut t[h..]);
                assert_eq!(Signature::parse(&t, 7777), Some(sig));
                assert_eq!(Signature::parse(&t, 7778), None);
                let ipo = 14 + if vlan.is_some() { 4 } else { 0 };
                assert_eq!(checksum::checksum(&t[ipo..ipo + 20]), 0, "ip checksum verifies");
                assert_eq!(&t[ipo + 20..ipo + 22], &1026u16.to_be_bytes());
            }
        }
    }

    #[test]
    fn rejects_bad_config_naming_the_field() {
        let bad = GenConfig { dst_ip: Ipv4Addr::new(10, 0, 0, 1), ..GenConfig::default() };
        assert!(bad.validate().unwrap_err().contains("dst_ip"));
        let bad = GenConfig { src_ip: Ipv4Addr::new(198, 19, 255, 255), src_addrs: 2, ..GenConfig::default() };
        assert!(bad.validate().unwrap_err().contains("src_addrs"));
        assert!("63".parse::<FrameSize>().is_err());
        assert!("9001".parse::<FrameSize>().is_err());
        assert_eq!("IMIX".parse::<FrameSize>(), Ok(FrameSize::Imix));
        assert!((FrameSize::Imix.mean() - (7.0 * 64.0 + 4.0 * 570.0 + 1518.0) / 12.0).abs() < 1e-9);
    }

    #[test]
    fn garbage_is_not_a_signature() {
        for n in 0..80 {
            assert_eq!(Signature::parse(&vec![0u8; n], 7777), None);
            assert_eq!(Signature::parse(&vec![0xffu8; n], 7777), None);
        }
    }
}
