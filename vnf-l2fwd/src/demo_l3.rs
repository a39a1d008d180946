//! `vnf-l2fwd demo --mode l3fwd`: the route table and the null ports' template frames.
//!
//! Port 0 receives IPv4/UDP frames to 198.18.2.2 and port 1 frames to 198.18.1.2; the table
//! holds 198.18.1.0/24 → 0 and 198.18.2.0/24 → 1 among `n` random /24 routes (a fixed seed, so
//! runs compare), so every frame takes a full LPM lookup and is routed to the other port.

use dataplane::lpm::Route4;
use dataplane::port::MacAddr;
use dataplane::wire::{EthernetAddress, Udp4FrameRepr};
use std::net::Ipv4Addr;

/// The destination of the frames received on port `p` (0 or 1): a host on the other port.
pub fn dst_of_port(p: u16) -> Ipv4Addr {
    if p == 0 {
        Ipv4Addr::new(198, 18, 2, 2)
    } else {
        Ipv4Addr::new(198, 18, 1, 2)
    }
}

/// `n` random /24 routes to ports 0 and 1, plus the two destination networks.
pub fn routes(n: usize) -> Vec<Route4> {
    let mut v = vec![
        Route4 { prefix: Ipv4Addr::new(198, 18, 1, 0), depth: 24, next_hop: 0 },
        Route4 { prefix: Ipv4Addr::new(198, 18, 2, 0), depth: 24, next_hop: 1 },
    ];
    // xorshift64: a fixed sequence, no dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut seen = std::collections::HashSet::new();
    seen.insert(0xc6_12_01u32);
    seen.insert(0xc6_12_02u32);
    while v.len() < n + 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let net = (x >> 8) as u32 & 0x00ff_ffff;
        // Unicast space only (1.0.0.0 to 223.255.255.0), each /24 once.
        if !(0x01_00_00..0xe0_00_00).contains(&net) || !seen.insert(net) {
            continue;
        }
        v.push(Route4 { prefix: Ipv4Addr::from(net << 8), depth: 24, next_hop: (x & 1) as u32 });
    }
    v
}

/// A 64-byte Ethernet/IPv4/UDP frame to `dst_ip`, addressed to `dst_mac`, with a valid IPv4
/// header checksum (the UDP checksum is 0: none).
pub fn frame(dst_mac: MacAddr, src_mac: MacAddr, src_ip: Ipv4Addr, dst_ip: Ipv4Addr) -> Vec<u8> {
    let repr = Udp4FrameRepr::new(EthernetAddress(dst_mac.0), EthernetAddress(src_mac.0), src_ip, dst_ip, 1024, 9);
    let mut f = vec![0u8; 64];
    repr.emit(&mut f).expect("64 bytes hold the 42 bytes of headers");
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::{Ipv4Packet, UdpPacket};

    #[test]
    fn routes_cover_the_destinations_once() {
        let r = routes(1000);
        assert_eq!(r.len(), 1002);
        let mut nets: Vec<u32> = r.iter().map(|r| u32::from(r.prefix)).collect();
        nets.sort_unstable();
        nets.dedup();
        assert_eq!(nets.len(), 1002, "every /24 once");
        for p in [0u16, 1] {
            let d = u32::from(dst_of_port(p)) & 0xffff_ff00;
            let hit: Vec<_> = r.iter().filter(|r| u32::from(r.prefix) == d).collect();
            assert_eq!(hit.len(), 1);
            assert_eq!(hit[0].next_hop, u32::from(1 - p), "frames of port {p} go to the other port");
        }
        assert_eq!(routes(0).len(), 2);
    }

    #[test]
    fn frame_is_valid_ipv4_udp() {
        let f = frame(MacAddr::local(0), MacAddr::local(9), Ipv4Addr::new(198, 18, 1, 2), dst_of_port(0));
        assert_eq!(f.len(), 64);
        assert_eq!(dataplane::l3fwd::ipv4_check(&f[14..]), Ok(20));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 18, 2, 2));
        let udp = UdpPacket::new_checked(&f[34..]).unwrap();
        assert_eq!(udp.dst_port(), 9);
    }
}
