//! Whole frames from `Repr`s: the Ethernet (optionally one VLAN tag) / IPv4 / UDP frames the
//! generators send (`txgen`, pktgen, the l3fwd demo), built once per template by the `emit`s
//! of the layers' `Repr`s.

use super::{Error, VlanHeader, VlanRepr};
use super::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};

/// The headers of an Ethernet / (VLAN) / IPv4 / UDP frame. The EtherTypes and the IPv4 and UDP
/// lengths are derived from the buffer [`emit`](Self::emit) writes into; the UDP checksum is 0
/// (none), so a payload can be written per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp4FrameRepr {
    /// Destination MAC.
    pub dst_mac: EthernetAddress,
    /// Source MAC.
    pub src_mac: EthernetAddress,
    /// One 802.1Q tag (its EtherType is set to IPv4 by `emit`).
    pub vlan: Option<VlanRepr>,
    /// The IPv4 header (`next_header` and `payload_len` are set by `emit`).
    pub ip: Ipv4Repr,
    /// Source UDP port.
    pub src_port: u16,
    /// Destination UDP port.
    pub dst_port: u16,
}

impl Udp4FrameRepr {
    /// An untagged frame from `src` to `dst` with the generators' defaults: TTL 64, DF set, no
    /// options, identification 0, DSCP/ECN 0. Change the public fields for anything else.
    pub fn new(
        dst_mac: EthernetAddress,
        src_mac: EthernetAddress,
        src: std::net::Ipv4Addr,
        dst: std::net::Ipv4Addr,
        src_port: u16,
        dst_port: u16,
    ) -> Self {
        Udp4FrameRepr {
            dst_mac,
            src_mac,
            vlan: None,
            ip: Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: super::IpProtocol::Udp,
                payload_len: 0,
                ttl: 64,
                dscp: 0,
                ecn: 0,
                ident: 0,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                options: super::RawOptions::EMPTY,
            },
            src_port,
            dst_port,
        }
    }

    /// Bytes of headers: 14, 4 for the tag, the IPv4 header, 8.
    pub fn header_len(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 } + self.ip.buffer_len() + 8
    }

    /// Writes the headers at the start of `frame`; the UDP payload (the rest of `frame`) is
    /// left alone.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `frame` is shorter than [`header_len`](Self::header_len);
    /// [`Error::ValueTooLarge`] from a layer's `emit` (a length over 65535, a bad tag).
    pub fn emit(&self, frame: &mut [u8]) -> Result<(), Error> {
        if frame.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        let ethertype = if self.vlan.is_some() { EtherType::Vlan } else { EtherType::Ipv4 };
        let mut eth = EthernetFrame::new_unchecked(&mut *frame);
        EthernetRepr { src_addr: self.src_mac, dst_addr: self.dst_mac, ethertype }.emit(&mut eth)?;
        let mut l3 = eth.payload_mut();
        if let Some(v) = self.vlan {
            let mut tag = VlanHeader::new_unchecked(l3);
            VlanRepr { ethertype: EtherType::Ipv4, ..v }.emit(&mut tag)?;
            l3 = tag.into_inner().get_mut(VlanRepr::buffer_len(&v)..).ok_or(Error::Truncated)?;
        }
        let ihl = self.ip.buffer_len();
        let ip = Ipv4Repr { next_header: super::IpProtocol::Udp, payload_len: l3.len() - ihl, ..self.ip };
        let mut p = Ipv4Packet::new_unchecked(&mut *l3);
        ip.emit(&mut p)?;
        let udp = l3.get_mut(ihl..).ok_or(Error::Truncated)?;
        let payload_len = udp.len() - 8;
        UdpRepr { src_port: self.src_port, dst_port: self.dst_port, payload_len }
            .emit(&mut UdpPacket::new_unchecked(udp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    fn repr(vlan: Option<u16>) -> Udp4FrameRepr {
        Udp4FrameRepr {
            vlan: vlan.map(|vid| VlanRepr { pcp: 0, dei: false, vid, ethertype: EtherType::Ipv4 }),
            ..Udp4FrameRepr::new(
                EthernetAddress([2, 0, 0, 0, 0, 2]),
                EthernetAddress([2, 0, 0, 0, 0, 1]),
                Ipv4Addr::new(198, 18, 0, 1),
                Ipv4Addr::new(198, 19, 0, 1),
                1024,
                9,
            )
        }
    }

    /// The bytes, annotated: a 60-byte untagged frame and a tagged one.
    #[test]
    fn emits_the_expected_bytes() {
        let mut f = [0xeeu8; 60];
        repr(None).emit(&mut f[..]).unwrap();
        #[rustfmt::skip]
        let want: [u8; 42] = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet, IPv4
            0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0,     // IPv4: total 46, DF, TTL 64, UDP
            198, 18, 0, 1, 198, 19, 0, 1,                    // 198.18.0.1 -> 198.19.0.1
            0x04, 0x00, 0, 9, 0, 26, 0, 0,                   // UDP 1024 -> 9, length 26, no checksum
        ];
        let mut w = want;
        let c = crate::wire::checksum::checksum(&w[14..34]);
        w[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(&f[..42], &w[..]);
        assert!(f[42..].iter().all(|&b| b == 0xee), "payload left alone");
        let mut t = [0u8; 64];
        repr(Some(42)).emit(&mut t[..]).unwrap();
        assert_eq!(&t[12..18], &[0x81, 0x00, 0, 42, 0x08, 0x00]);
        assert_eq!(&t[18..46], &{
            let mut u = [0u8; 64];
            repr(None).emit(&mut u[..60]).unwrap();
            let mut x = [0u8; 28];
            x.copy_from_slice(&u[14..42]);
            x
        });
        assert_eq!(repr(None).emit(&mut [0u8; 41][..]), Err(Error::Truncated));
    }
}
