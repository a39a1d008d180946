//! Neighbours: ARP requests and IPv6 neighbor solicitations for the stage's own addresses,
//! answered in place.

use super::PortConf;
use crate::buf::PacketBuf;
use crate::wire::{
    EthernetAddress, EthernetFrame, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, NdiscNeighborFlags,
};

/// Which ARP requests a port answers.
#[derive(Clone, Copy)]
pub(crate) enum ArpOwner<'a> {
    /// Requests for one of `rx_port`'s addresses (port, address pairs).
    Addrs(&'a [(u16, [u8; 4])]),
    /// Every request for an address other than the sender's own, testpmd icmpecho's way
    /// (RFC 5227 probes and announcements, from 0.0.0.0 or for the sender's address, are
    /// left alone).
    Any,
}

/// Turns an ARP request for an address `owner` claims on `rx_port` into the reply from
/// `mac`, in place (Ethernet addresses too).
pub(crate) fn arp_reply(owner: ArpOwner<'_>, mac: [u8; 6], rx_port: u16, d: &mut [u8], l3: usize) -> bool {
    use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame};
    let Some(req) = d.get(l3..).and_then(|a| ArpRepr::parse(&ArpPacket::new_unchecked(a)).ok()) else {
        return false;
    };
    // Ethernet/IPv4 (checked by the parse) request.
    if req.operation != ArpOperation::Request {
        return false;
    }
    let (spa, tpa) = (req.source_protocol_addr, req.target_protocol_addr);
    let ours = match owner {
        ArpOwner::Addrs(addrs4) => addrs4.iter().any(|&(p, ip)| p == rx_port && ip == tpa.octets()),
        ArpOwner::Any => !spa.is_unspecified() && spa != tpa,
    };
    if !ours {
        return false;
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: tpa,
        target_hardware_addr: req.source_hardware_addr,
        target_protocol_addr: spa,
    };
    // The request parsed, so the 28 bytes are there (and the Ethernet header before them).
    if reply.emit(&mut ArpPacket::new_unchecked(&mut d[l3..])).is_err() {
        return false;
    }
    let mut eth = EthernetFrame::new_unchecked(d);
    let requester = eth.src_addr();
    eth.set_dst_addr(requester);
    eth.set_src_addr(EthernetAddress(mac));
    true
}

/// Length of a neighbor advertisement with a target link-layer address option.
const NA_LEN: usize = 32;

/// Checks for a valid neighbor solicitation (RFC 4861 §7.1.1) for one of `rx_port`'s
/// addresses; returns the target and the solicitation's source address.
pub(super) fn ndp_solicit(conf: &PortConf, rx_port: u16, d: &[u8], l3: usize) -> Option<([u8; 16], [u8; 16])> {
    let ip = Ipv6Packet::new_checked(d.get(l3..)?).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != 255 || ip.payload_len() < 24 {
        return None;
    }
    // At least 24 bytes: the solicitation's fixed part.
    let icmp = Icmpv6Packet::new_unchecked(ip.payload());
    if icmp.msg_type() != Icmpv6Message::NeighborSolicit || icmp.msg_code() != 0 {
        return None;
    }
    let target = icmp.target_addr().octets();
    if !conf.addrs6.iter().any(|&(p, a)| p == rx_port && a == target) {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    icmp.verify_checksum(&src, &dst).then_some((target, src.octets()))
}

/// Turns a neighbor solicitation for `target` from `src` (one of `rx_port`'s addresses,
/// checked by [`ndp_solicit`]) into a neighbor advertisement, in place: router, solicited
/// and override flags, target link-layer address = the port's MAC, sent to the solicitor (to
/// all nodes, not solicited, when the solicitor is the unspecified address: duplicate address
/// detection). `false` when the buffer cannot be resized.
pub(super) fn ndp_reply<B: PacketBuf>(
    conf: &PortConf,
    rx_port: u16,
    pkt: &mut B,
    l3: usize,
    target: [u8; 16],
    src: [u8; 16],
) -> bool {
    let need = l3 + 40 + NA_LEN;
    let len = pkt.len();
    let resized = if len > need { pkt.trim(len - need) } else { len == need || pkt.append(need - len).is_some() };
    if !resized {
        return false;
    }
    let mac = EthernetAddress(conf.mac(rx_port));
    let dad = src == [0u8; 16];
    let dst6: [u8; 16] = if dad { [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] } else { src };
    let d = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut *d);
    let eth_dst = if dad { EthernetAddress([0x33, 0x33, 0, 0, 0, 1]) } else { eth.src_addr() };
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(mac);
    // Version, traffic class and flow label stay the solicitation's.
    let mut ip = Ipv6Packet::new_unchecked(&mut d[l3..need]);
    ip.set_payload_len(NA_LEN as u16);
    ip.set_next_header(IpProtocol::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_src_addr(target.into());
    ip.set_dst_addr(dst6.into());
    let flags = if dad {
        NdiscNeighborFlags(NdiscNeighborFlags::ROUTER.0 | NdiscNeighborFlags::OVERRIDE.0)
    } else {
        NdiscNeighborFlags(
            NdiscNeighborFlags::ROUTER.0 | NdiscNeighborFlags::SOLICITED.0 | NdiscNeighborFlags::OVERRIDE.0,
        )
    };
    let na = Icmpv6Repr::NeighborAdvert { flags, target_addr: target.into(), target_lladdr: Some(mac) };
    // `need` left exactly NA_LEN bytes after the IPv6 header, what the advertisement takes.
    na.emit(&target.into(), &dst6.into(), &mut Icmpv6Packet::new_unchecked(&mut d[l3 + 40..need])).is_ok()
}
