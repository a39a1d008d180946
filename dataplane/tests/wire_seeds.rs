//! The fuzz seed corpus (`fuzz/seeds/wire_parse`, written by `fuzz/gen_seeds.py` with its own
//! checksum code) dissected by `dataplane::wire`: every seed is a well-formed frame, so every
//! layer must parse and every checksum must verify. This cross-checks the Rust parsers and
//! checksums against an independent encoder.

use std::path::Path;

use dataplane::wire::*;

#[derive(Debug, Default)]
struct Seen {
    layers: Vec<&'static str>,
}

fn dissect(frame: &[u8], seen: &mut Seen) -> Result<(), Error> {
    let l2 = walk_vlan_tags(frame)?;
    if l2.tags > 0 {
        seen.layers.push("vlan");
    }
    let l3 = &frame[l2.l3_offset..];
    match l2.ethertype() {
        EtherType::Arp => {
            ArpRepr::parse(&ArpPacket::new_checked(l3)?)?;
            seen.layers.push("arp");
        }
        EtherType::Ipv4 => {
            let ip = Ipv4Packet::new_checked(l3)?;
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            seen.layers.push("ipv4");
            if ip.frag_offset() != 0 {
                seen.layers.push("fragment");
                return Ok(());
            }
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            let seg = ip.payload();
            match ip.next_header() {
                IpProtocol::Udp => {
                    let u = UdpPacket::new_checked(seg)?;
                    assert!(u.checksum() != 0 && u.verify_checksum_v4(&s, &d), "UDP/IPv4 checksum");
                    udp_payload(&u, seen)?;
                }
                IpProtocol::Tcp => {
                    let t = TcpPacket::new_checked(seg)?;
                    assert!(t.verify_checksum_v4(&s, &d), "TCP/IPv4 checksum");
                    seen.layers.push("tcp");
                }
                IpProtocol::Icmp => {
                    let p = Icmpv4Packet::new_checked(seg)?;
                    assert!(p.verify_checksum(), "ICMPv4 checksum");
                    Icmpv4Repr::parse(&p)?;
                    seen.layers.push("icmpv4");
                }
                _ => seen.layers.push("other-l4"),
            }
        }
        EtherType::Ipv6 => {
            let ip = Ipv6Packet::new_checked(l3)?;
            seen.layers.push("ipv6");
            let up = walk_ext_headers(ip.next_header(), ip.payload())?;
            if up.ext_headers > 0 {
                seen.layers.push("ext");
            }
            if !up.has_upper_header() {
                seen.layers.push("fragment");
                return Ok(());
            }
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            let seg = &ip.payload()[up.offset..];
            match up.next_header {
                IpProtocol::Udp => {
                    let u = UdpPacket::new_checked(seg)?;
                    assert!(u.verify_checksum_v6(&s, &d), "UDP/IPv6 checksum");
                    udp_payload(&u, seen)?;
                }
                IpProtocol::Tcp => {
                    let t = TcpPacket::new_checked(seg)?;
                    assert!(t.verify_checksum_v6(&s, &d), "TCP/IPv6 checksum");
                    seen.layers.push("tcp");
                }
                IpProtocol::Icmpv6 => {
                    let p = Icmpv6Packet::new_checked(seg)?;
                    assert!(p.verify_checksum(&s, &d), "ICMPv6 checksum");
                    match Icmpv6Repr::parse(&p)? {
                        Icmpv6Repr::NeighborSolicit { source_lladdr: Some(_), .. } => seen.layers.push("ns"),
                        Icmpv6Repr::NeighborAdvert { target_lladdr: Some(_), .. } => seen.layers.push("na"),
                        _ => seen.layers.push("icmpv6"),
                    }
                }
                _ => seen.layers.push("other-l4"),
            }
        }
        _ => seen.layers.push("other-l3"),
    }
    Ok(())
}

fn udp_payload(u: &UdpPacket<&[u8]>, seen: &mut Seen) -> Result<(), Error> {
    seen.layers.push("udp");
    if u.dst_port() == VXLAN_PORT {
        let v = VxlanPacket::new_checked(u.payload())?;
        VxlanRepr::parse(&v)?;
        seen.layers.push("vxlan");
        dissect(v.payload(), seen)?;
    }
    Ok(())
}

#[test]
fn every_seed_dissects_with_valid_checksums() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/wire_parse");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut seen = Seen::default();
        dissect(&bytes, &mut seen).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        all.extend(seen.layers);
    }
    // The corpus covers every protocol the module parses.
    for layer in [
        "vlan", "arp", "ipv4", "ipv6", "ext", "fragment", "udp", "tcp", "icmpv4", "icmpv6", "ns", "na", "vxlan",
        "other-l3",
    ] {
        assert!(all.contains(&layer), "no seed exercises {layer}");
    }
}
