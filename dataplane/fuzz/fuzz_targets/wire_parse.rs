//! Runs every `dataplane::wire` parser, the VLAN and IPv6 extension-header walkers and the
//! checksum routines on arbitrary bytes.
//!
//! Besides "never panics", it checks properties: every `Repr` that parses emits into a
//! buffer of `buffer_len` and parses back to the same value, and the fast checksum equals the
//! reference loop. The input is tried both as an Ethernet frame (dissected down through
//! VLAN tags, IP, extension headers, L4 and VXLAN) and directly as each protocol's header.
#![no_main]

use dataplane::wire::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(checksum::sum(data), checksum::sum_reference(data));

    dissect_frame(data, 0);

    // Every parser directly on the raw bytes.
    ethernet(data);
    vlan(data);
    arp(data);
    ipv4(data);
    ipv6(data);
    ipv6_ext(data);
    icmpv4(data);
    icmpv6(data);
    udp(data);
    tcp(data);
    vxlan(data);
    if let Some((&first, rest)) = data.split_first() {
        let _ = walk(IpProtocol::from(first), rest);
    }
});

/// Follows a frame down through its layers; `depth` bounds VXLAN nesting.
fn dissect_frame(frame: &[u8], depth: u32) {
    let Ok(l2) = walk_vlan_tags(frame) else {
        return;
    };
    assert!(l2.l3_offset <= frame.len());
    assert!(!l2.ethertype().is_vlan_tpid());
    let l3 = &frame[l2.l3_offset..];
    match l2.ethertype() {
        EtherType::Arp => arp(l3),
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(l3) else {
                return;
            };
            ipv4(l3);
            if !ip.is_fragment() || ip.frag_offset() == 0 {
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                l4(ip.next_header(), ip.payload(), depth, |seg, proto| {
                    checksum::verify_l4_v4(&src, &dst, proto, seg)
                });
            }
        }
        EtherType::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(l3) else {
                return;
            };
            ipv6(l3);
            let Ok(up) = walk(ip.next_header(), ip.payload()) else {
                return;
            };
            if up.has_upper_header() {
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                if up.next_header == IpProtocol::Icmpv6 {
                    if let Ok(p) = Icmpv6Packet::new_checked(&ip.payload()[up.offset..]) {
                        let _ = p.verify_checksum(&src, &dst);
                    }
                }
                l4(
                    up.next_header,
                    &ip.payload()[up.offset..],
                    depth,
                    |seg, proto| checksum::verify_l4_v6(&src, &dst, proto, seg),
                );
            }
        }
        _ => {}
    }
}

fn l4(proto: IpProtocol, seg: &[u8], depth: u32, verify: impl Fn(&[u8], IpProtocol) -> bool) {
    let _ = verify(seg, proto);
    match proto {
        IpProtocol::Udp => {
            udp(seg);
            if let Ok(u) = UdpPacket::new_checked(seg) {
                if u.dst_port() == VXLAN_PORT && depth < 2 {
                    if let Ok(v) = VxlanPacket::new_checked(u.payload()) {
                        vxlan(u.payload());
                        dissect_frame(v.payload(), depth + 1);
                    }
                }
            }
        }
        IpProtocol::Tcp => tcp(seg),
        IpProtocol::Icmp => icmpv4(seg),
        IpProtocol::Icmpv6 => icmpv6(seg),
        _ => {}
    }
}

fn walk(first: IpProtocol, payload: &[u8]) -> Result<Ipv6Upper, Error> {
    let r = walk_ext_headers(first, payload);
    if let Ok(up) = r {
        assert!(up.offset <= payload.len());
        assert!(up.ext_headers <= MAX_EXT_HEADERS);
    }
    r
}

fn ethernet(b: &[u8]) {
    let Ok(f) = EthernetFrame::new_checked(b) else {
        return;
    };
    let _ = f.payload();
    let r = EthernetRepr::parse(&f).unwrap();
    let mut out = [0u8; 14];
    r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(
        EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).unwrap()),
        Ok(r)
    );
    assert_eq!(
        r.src_addr.to_string().parse::<EthernetAddress>(),
        Ok(r.src_addr)
    );
}

fn vlan(b: &[u8]) {
    let Ok(v) = VlanHeader::new_checked(b) else {
        return;
    };
    let _ = (v.payload(), v.pcp(), v.dei());
    let r = VlanRepr::parse(&v).unwrap();
    let mut out = [0u8; 4];
    r.emit(&mut VlanHeader::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(&out[..], &b[..4]);
}

fn arp(b: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(b) else {
        return;
    };
    let Ok(r) = ArpRepr::parse(&p) else { return };
    let mut out = [0u8; 28];
    r.emit(&mut ArpPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(&out[..], &b[..28]);
}

fn ipv4(b: &[u8]) {
    let Ok(p) = Ipv4Packet::new_checked(b) else {
        return;
    };
    let _ = (
        p.options(),
        p.payload(),
        p.verify_checksum(),
        p.is_fragment(),
    );
    let r = Ipv4Repr::parse(&p).unwrap();
    let mut out = vec![0u8; r.buffer_len() + r.payload_len];
    r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
        .unwrap();
    let q = Ipv4Packet::new_checked(&out[..]).unwrap();
    assert!(q.verify_checksum());
    assert_eq!(Ipv4Repr::parse(&q), Ok(r));
    // Incremental TTL decrement agrees with a full recompute.
    let mut q = Ipv4Packet::new_checked(&mut out[..]).unwrap();
    if q.decrement_ttl().is_some() {
        let inc = q.checksum();
        q.fill_checksum();
        assert_eq!(inc, q.checksum());
    }
}

fn ipv6(b: &[u8]) {
    let Ok(p) = Ipv6Packet::new_checked(b) else {
        return;
    };
    let _ = p.payload();
    let r = Ipv6Repr::parse(&p).unwrap();
    let mut out = [0u8; 40];
    r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(&out[..], &b[..40]);
}

fn ipv6_ext(b: &[u8]) {
    if let Ok(h) = Ipv6ExtHeader::new_checked(b) {
        let _ = (h.routing_type(), h.segments_left(), h.next_header());
        let r = Ipv6ExtHeaderRepr::parse(&h).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Ipv6ExtHeader::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(&out[..], &b[..h.header_len()]);
    }
    if let Ok(h) = Ipv6FragmentHeader::new_checked(b) {
        let _ = h.payload();
        let r = Ipv6FragmentRepr::parse(&h).unwrap();
        let mut out = [0u8; 8];
        r.emit(&mut Ipv6FragmentHeader::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(
            Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_checked(&out[..]).unwrap()),
            Ok(r)
        );
    }
}

fn icmpv4(b: &[u8]) {
    let Ok(p) = Icmpv4Packet::new_checked(b) else {
        return;
    };
    let _ = p.verify_checksum();
    let r = Icmpv4Repr::parse(&p).unwrap();
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
        .unwrap();
    let q = Icmpv4Packet::new_checked(&out[..]).unwrap();
    assert!(q.verify_checksum());
    assert_eq!(Icmpv4Repr::parse(&q), Ok(r));
}

fn icmpv6(b: &[u8]) {
    let Ok(p) = Icmpv6Packet::new_checked(b) else {
        return;
    };
    for o in p.ndisc_options() {
        let _ = o;
    }
    let _ = (p.neighbor_flags(), p.data(), p.rest_of_header());
    let Ok(r) = Icmpv6Repr::parse(&p) else { return };
    let (src, dst) = ("fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    let q = Icmpv6Packet::new_checked(&out[..]).unwrap();
    assert!(q.verify_checksum(&src, &dst));
    assert_eq!(Icmpv6Repr::parse(&q), Ok(r));
}

fn udp(b: &[u8]) {
    let Ok(p) = UdpPacket::new_checked(b) else {
        return;
    };
    let r = UdpRepr::parse(&p).unwrap();
    assert_eq!(r.payload_len, p.payload().len());
    let mut out = [0u8; 8];
    r.emit(&mut UdpPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(&out[..6], &b[..6]);
}

fn tcp(b: &[u8]) {
    let Ok(p) = TcpPacket::new_checked(b) else {
        return;
    };
    let _ = (p.options(), p.payload());
    let r = TcpRepr::parse(&p).unwrap();
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut TcpPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(
        TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap()),
        Ok(r)
    );
}

fn vxlan(b: &[u8]) {
    let Ok(p) = VxlanPacket::new_checked(b) else {
        return;
    };
    let _ = p.payload();
    let Ok(r) = VxlanRepr::parse(&p) else { return };
    let mut out = [0u8; 8];
    r.emit(&mut VxlanPacket::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(
        VxlanRepr::parse(&VxlanPacket::new_checked(&out[..]).unwrap()),
        Ok(r)
    );
}
