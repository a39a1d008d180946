//! l3fwd end to end: a mixed capture through pcap ports with exact expected output bytes and
//! exact drop counts, and a route swap under traffic on ring ports.

use dataplane::burst::Burst;
use dataplane::l3fwd::{L3Fwd, L3FwdTables, TableHandle};
use dataplane::lcore::{DropReason, Lcore, Runtime};
use dataplane::lpm::{Route4, Route6};
use dataplane::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
use dataplane::port::pcap::{PcapConfig, PcapPort};
use dataplane::port::ring::RingPort;
use dataplane::port::{MacAddr, Port};
use dataplane::wire::{checksum, IpProtocol};
use dataplane::PacketBuf;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn pool(n: u32) -> Mempool {
    let mut c = MempoolConfig::new("l3fwd-test", n);
    c.backing = MemBacking::Normal;
    Mempool::new(c).unwrap()
}

const PEER: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 0x99];
const MAC: [[u8; 6]; 3] = [[2, 0xaa, 0, 0, 0, 0], [2, 0xaa, 0, 0, 0, 1], [2, 0xaa, 0, 0, 0, 2]];
/// `--eth-dest 1,02:bb:00:00:00:01`; ports 0 and 2 keep DPDK's default 02:00:00:00:00:<port>.
const NEXT_HOP1: [u8; 6] = [2, 0xbb, 0, 0, 0, 1];

fn eth(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [dst, src].concat();
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// IPv4/UDP with a fully computed header checksum; `options` must be a multiple of 4 bytes.
fn ipv4_udp(dst: [u8; 4], ttl: u8, options: &[u8]) -> Vec<u8> {
    let ihl = 20 + options.len();
    let total = (ihl + 8 + 4) as u16;
    let mut h = vec![0x40 | (ihl / 4) as u8, 0, 0, 0, 0, 7, 0, 0, ttl, 17, 0, 0, 192, 0, 2, 1];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&dst);
    h.extend_from_slice(options);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(&[0x30, 0x39, 0, 9, 0, 12, 0, 0, 1, 2, 3, 4]);
    h
}

fn ipv6_udp(dst: Ipv6Addr, hop: u8) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 12, 17, hop];
    h.extend_from_slice(&"2001:db8:9::1".parse::<Ipv6Addr>().unwrap().octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(&[0x30, 0x39, 0, 9, 0, 12, 0, 0, 1, 2, 3, 4]);
    h
}

fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&PEER);
    a.extend_from_slice(&[10, 0, 0, 1]);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    a
}

fn neighbor_solicitation(target: Ipv6Addr) -> Vec<u8> {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let t = target.octets();
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(t[13]), u16::from_be_bytes([t[14], t[15]]));
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&PEER);
    let c = checksum::l4_checksum_v6(&src, &dst, IpProtocol::Icmpv6, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut h = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(&icmp);
    h
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(Duration::from_micros(i as u64), f.len() as u32, f)).unwrap();
    }
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = vec![];
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

/// The expected output of a routed IPv4 frame: the same frame built with TTL - 1 (checksum
/// fully recomputed by the builder) and the MACs of the output port.
fn routed4(port: usize, vlan: Option<u16>, dst: [u8; 4], ttl: u8, options: &[u8]) -> Vec<u8> {
    let nh = if port == 1 { NEXT_HOP1 } else { MacAddr::local(port as u8).0 };
    eth(nh, MAC[port], vlan, 0x0800, &ipv4_udp(dst, ttl - 1, options))
}

#[test]
fn mixed_capture_through_pcap_ports() {
    let dir = std::env::temp_dir().join(format!("l3fwd-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let own4 = [10, 0, 0, 254];
    let own6: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let v6dst: Ipv6Addr = "2001:db8:1::5".parse().unwrap();
    let opts = [0x94, 4, 0, 0]; // router alert
    let mut bad_csum = ipv4_udp([10, 1, 0, 5], 64, &[]);
    bad_csum[10] ^= 0x55;
    let mut truncated = ipv4_udp([10, 1, 0, 5], 64, &[]);
    truncated[2..4].copy_from_slice(&200u16.to_be_bytes()); // total length beyond the frame
    let c = {
        truncated[10..12].fill(0);
        checksum::checksum(&truncated[..20])
    };
    truncated[10..12].copy_from_slice(&c.to_be_bytes());
    let mut short_frame = eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 1, 0, 5], 64, &[]));
    short_frame.truncate(30); // 16 bytes of IPv4 header
    let input = vec![
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 1, 0, 5], 64, &[])), // -> 1
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 2, 0, 7], 2, &[])),  // -> 2
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 3, 3, 1], 64, &[])), // -> 0 (/24)
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 1, 0, 5], 1, &[])),  // ttl expired
        eth(MAC[0], PEER, None, 0x0800, &bad_csum),                         // bad checksum
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 1, 9, 9], 30, &opts)), // options -> 1
        eth(MAC[0], PEER, None, 0x0800, &truncated),                        // malformed
        eth(MAC[0], PEER, Some(42), 0x0800, &ipv4_udp([10, 2, 1, 1], 64, &[])), // vlan -> 2
        eth(MAC[0], PEER, None, 0x86dd, &ipv6_udp(v6dst, 1)),               // hop limit expired
        eth(MAC[0], PEER, None, 0x86dd, &ipv6_udp(v6dst, 64)),              // -> 1
        eth(MAC[0], PEER, None, 0x88b5, &[0; 46]),                          // filtered
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([192, 168, 1, 1], 64, &[])), // no route
        eth([0xff; 6], PEER, None, 0x0806, &arp_request(own4)),             // ARP reply -> 0
        eth([0xff; 6], PEER, None, 0x0806, &arp_request([10, 0, 0, 77])),   // not ours: filtered
        eth([0x33, 0x33, 0xff, 0, 0, 0xfe], PEER, None, 0x86dd, &neighbor_solicitation(own6)), // NA -> 0
        short_frame,                                                        // malformed
    ];
    let inp = dir.join("in.pcap");
    write_pcap(&inp, &input);

    let r4: Vec<Route4> = [("10.1.0.0", 16, 1), ("10.2.0.0", 16, 2), ("10.3.3.0", 24, 0)]
        .iter()
        .map(|&(p, d, nh)| Route4 { prefix: p.parse().unwrap(), depth: d, next_hop: nh })
        .collect();
    let r6 = [Route6 { prefix: "2001:db8:1::".parse().unwrap(), depth: 48, next_hop: 1 }];
    let tables = Arc::new(L3FwdTables::from_lpm_routes(&r4, &r6).unwrap());
    let mut fwd = L3Fwd::with_tables(tables);
    for (p, m) in MAC.iter().enumerate() {
        fwd.set_port_mac(p as u16, MacAddr(*m));
    }
    fwd.set_eth_dest(1, MacAddr(NEXT_HOP1));
    fwd.add_addr(0, Ipv4Addr::from(own4).into()).add_addr(0, own6.into());

    let pool = pool(1024);
    let out: Vec<_> = (0..3).map(|p| dir.join(format!("out{p}.pcap"))).collect();
    let mut ports: Vec<PcapPort> = (0..3)
        .map(|p| {
            let cfg =
                PcapConfig { rx: (p == 0).then(|| inp.clone()), tx: Some(out[p].clone()), mac: Some(MacAddr(MAC[p])) };
            PcapPort::new(p as u16, cfg, pool.clone()).unwrap()
        })
        .collect();
    let mut l = Lcore::new("l3", None, fwd);
    l.add_rx(0, ports[0].rx_queue(0).unwrap());
    for (p, port) in ports.iter_mut().enumerate() {
        l.add_tx(p as u16, port.tx_queue(0).unwrap()).unwrap();
    }
    let stats = l.stats();
    let mut burst = Burst::new();
    let mut got = 0;
    for _ in 0..100 {
        got += l.poll_once(&mut burst, true);
    }
    assert_eq!(got, input.len());
    // The classifier ran on every received burst, over every packet (issue 16).
    assert!(stats.classified_bursts.get() > 0);
    assert_eq!(stats.classified_pkts.get(), input.len() as u64);
    drop(l);
    drop(ports);

    let drops = |r: DropReason| stats.drops[r as usize].get();
    assert_eq!(drops(DropReason::TtlExpired), 2);
    assert_eq!(drops(DropReason::BadChecksum), 1);
    assert_eq!(drops(DropReason::Malformed), 2);
    assert_eq!(drops(DropReason::Filtered), 2);
    assert_eq!(drops(DropReason::NoRoute), 1);
    let total_drops: u64 = stats.drops.iter().map(|c| c.get()).sum();
    assert_eq!(total_drops, 8);

    let o0 = read_pcap(&out[0]);
    let o1 = read_pcap(&out[1]);
    let o2 = read_pcap(&out[2]);
    assert_eq!(o0.len() + o1.len() + o2.len(), input.len() - 8);

    let mut v6out = eth(NEXT_HOP1, MAC[1], None, 0x86dd, &ipv6_udp(v6dst, 63));
    v6out.truncate(input[9].len());
    assert_eq!(o1, vec![routed4(1, None, [10, 1, 0, 5], 64, &[]), routed4(1, None, [10, 1, 9, 9], 30, &opts), v6out]);
    assert_eq!(o2, vec![routed4(2, None, [10, 2, 0, 7], 2, &[]), routed4(2, Some(42), [10, 2, 1, 1], 64, &[])]);
    for f in o1.iter().chain(&o2).filter(|f| f[12] == 0x08 || f[12] == 0x81) {
        let l3 = if f[12] == 0x81 { 18 } else { 14 };
        let ihl = usize::from(f[l3] & 0xf) * 4;
        assert_eq!(checksum::sum(&f[l3..l3 + ihl]), 0xffff, "IPv4 header checksum verifies");
    }

    assert_eq!(o0.len(), 3);
    assert_eq!(o0[0], routed4(0, None, [10, 3, 3, 1], 64, &[]));
    // ARP reply from our MAC, to the requester.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 2];
    arp.extend_from_slice(&MAC[0]);
    arp.extend_from_slice(&own4);
    arp.extend_from_slice(&PEER);
    arp.extend_from_slice(&[10, 0, 0, 1]);
    assert_eq!(o0[1], eth(PEER, MAC[0], None, 0x0806, &arp));
    // Neighbor advertisement: solicited, override, router; target link-layer address = our MAC.
    let na = &o0[2];
    assert_eq!(&na[..12], &[PEER, MAC[0]].concat()[..]);
    assert_eq!(na.len(), 14 + 40 + 32);
    let ip = &na[14..];
    assert_eq!((ip[6], ip[7]), (58, 255));
    assert_eq!(&ip[8..24], &own6.octets());
    assert_eq!(&ip[24..40], &"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    let icmp = &ip[40..];
    assert_eq!((icmp[0], icmp[1], icmp[4]), (136, 0, 0xe0));
    assert_eq!(&icmp[8..24], &own6.octets());
    assert_eq!(&icmp[24..32], &[&[2u8, 1][..], &MAC[0]].concat()[..]);
    assert!(checksum::verify_l4_v6(&own6, &"fe80::1".parse().unwrap(), IpProtocol::Icmpv6, icmp));

    assert_eq!(pool.in_use(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Tables swapped while an lcore forwards: nothing is lost, and the new route takes effect.
#[test]
fn route_swap_under_traffic_loses_nothing() {
    let pool = pool(4096);
    let (mut outer0, mut vnf0) = RingPort::<Mbuf>::pair(10, 0, 1, 1024).unwrap();
    let (mut vnf1, mut outer1) = RingPort::<Mbuf>::pair(1, 11, 1, 1024).unwrap();
    let (mut vnf2, mut outer2) = RingPort::<Mbuf>::pair(2, 12, 1, 1024).unwrap();
    let routes = |nh| [Route4 { prefix: "10.0.0.0".parse().unwrap(), depth: 8, next_hop: nh }];
    let handle = TableHandle::new(L3FwdTables::from_lpm_routes(&routes(1), &[]).unwrap());
    let mut l = Lcore::new("w0", None, L3Fwd::new(&handle));
    l.add_rx(0, vnf0.rx_queue(0).unwrap());
    l.add_tx(1, vnf1.tx_queue(0).unwrap()).unwrap();
    l.add_tx(2, vnf2.tx_queue(0).unwrap()).unwrap();
    let mut rt = Runtime::launch(vec![l]).unwrap();

    let mut inj = outer0.tx_queue(0).unwrap();
    let mut rx1 = outer1.rx_queue(0).unwrap();
    let mut rx2 = outer2.rx_queue(0).unwrap();
    const N: u32 = 20_000;
    let (mut sent, mut swapped) = (0u32, false);
    let mut seen = vec![0u8; N as usize];
    let (mut last1, mut first2) = (None::<u32>, None::<u32>);
    let mut got = Burst::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.contains(&0) && std::time::Instant::now() < deadline {
        if !swapped && sent >= N / 2 {
            let t = L3FwdTables::from_lpm_routes(&routes(2), &[]).unwrap();
            assert_eq!(handle.swap(t), 1);
            swapped = true;
        }
        // Keep fewer packets in flight than the output rings hold, so a test thread that is
        // descheduled for a while can never make the VNF's tx ring overflow (that would be a
        // correct, counted TxFull drop, but not what this test is about).
        let received: u32 = seen.iter().map(|&c| c as u32).sum();
        if sent < N && sent - received < 512 {
            let mut b = Burst::new();
            for k in sent..(sent + 32).min(N) {
                let mut f = eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 1, 2, 3], 64, &[]));
                f[50..54].copy_from_slice(&k.to_be_bytes());
                b.push(Mbuf::from_slice(&pool, &f).unwrap()).unwrap();
            }
            // Whatever the ring refuses is freed with `b` and resent in the next round.
            sent += inj.tx_burst(&mut b) as u32;
        }
        for (port, q) in [(1u16, &mut rx1), (2, &mut rx2)] {
            q.rx_burst(&mut got, 64);
            for m in got.iter() {
                let k = u32::from_be_bytes(m.data()[50..54].try_into().unwrap());
                seen[k as usize] += 1;
                if port == 1 {
                    last1 = last1.max(Some(k));
                } else {
                    first2 = Some(first2.map_or(k, |f: u32| f.min(k)));
                }
            }
            got.clear();
        }
    }
    rt.stop();
    assert!(rt.join().is_empty());
    assert!(seen.iter().all(|&c| c == 1), "every packet exactly once");
    let first2 = first2.expect("the new route took effect");
    assert!(last1.map_or(true, |l| l < first2), "one switch point: port 1 up to {last1:?}, port 2 from {first2}");
    assert_eq!(rt.drop_stats().iter().sum::<u64>(), 0);
    drop((inj, rx1, rx2, outer0, outer1, outer2, vnf0, vnf1, vnf2, rt));
    assert_eq!(pool.in_use(), 0);
}

/// testpmd stages: icmpecho answers echo and ARP for its address, macswap swaps, rxonly
/// consumes without counting drops.
#[test]
fn testpmd_stages() {
    use dataplane::fwd::{IcmpEcho, MacSwap, RxOnly};
    let pool = pool(256);
    let run = |fwd: Box<dyn dataplane::lcore::Forward<Mbuf>>, frames: &[Vec<u8>]| {
        let (mut outer, mut vnf) = RingPort::<Mbuf>::pair(10, 0, 1, 64).unwrap();
        let mut l = Lcore::new("t", None, fwd);
        l.add_rx(0, vnf.rx_queue(0).unwrap());
        l.add_tx(0, vnf.tx_queue(0).unwrap()).unwrap();
        let mut b = Burst::new();
        for f in frames {
            b.push(Mbuf::from_slice(&pool, f).unwrap()).unwrap();
        }
        assert_eq!(outer.tx_queue(0).unwrap().tx_burst(&mut b), frames.len());
        let mut burst = Burst::new();
        assert_eq!(l.poll_once(&mut burst, true), frames.len());
        let mut got = Burst::new();
        outer.rx_queue(0).unwrap().rx_burst(&mut got, 64);
        let out: Vec<Vec<u8>> = got.iter().map(|m| m.data().to_vec()).collect();
        (out, l.stats())
    };
    // icmpecho
    let mut icmp = vec![8, 0, 0, 0, 0, 1, 0, 2, 0xde, 0xad];
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = ipv4_udp([10, 0, 0, 254], 64, &[]);
    ip.truncate(20);
    ip[9] = 1;
    ip[2..4].copy_from_slice(&30u16.to_be_bytes());
    ip[10..12].fill(0);
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    let mut echo = IcmpEcho::new();
    echo.set_port_mac(0, MacAddr(MAC[0])).add_addr(0, Ipv4Addr::new(10, 0, 0, 254));
    let frames = [
        eth(MAC[0], PEER, None, 0x0800, &ip),
        eth([0xff; 6], PEER, None, 0x0806, &arp_request([10, 0, 0, 254])),
        eth(MAC[0], PEER, None, 0x0800, &ipv4_udp([10, 0, 0, 254], 64, &[])),
    ];
    let (out, st) = run(Box::new(echo), &frames);
    assert_eq!(out.len(), 2);
    let r = &out[0];
    assert_eq!(&r[..12], &[PEER, MAC[0]].concat()[..]);
    assert_eq!(&r[26..30], &[10, 0, 0, 254], "source = our address");
    assert_eq!(&r[30..34], &[192, 0, 2, 1]);
    assert_eq!(r[34], 0, "echo reply");
    assert_eq!(checksum::sum(&r[14..34]), 0xffff);
    assert_eq!(checksum::sum(&r[34..44]), 0xffff, "ICMP checksum updated");
    assert_eq!(&out[1][20..22], &[0, 2], "ARP reply");
    assert_eq!(st.drops[DropReason::Filtered as usize].get(), 1);
    // With an address, ARP for any other is not ours; with none, testpmd's way: every
    // request is answered but probes (sender 0.0.0.0) and announcements (sender = target).
    let mut probe = arp_request([10, 0, 0, 9]);
    probe[14..18].fill(0);
    let arps = [
        eth([0xff; 6], PEER, None, 0x0806, &arp_request([10, 0, 0, 9])),
        eth([0xff; 6], PEER, None, 0x0806, &probe),
        eth([0xff; 6], PEER, None, 0x0806, &arp_request([10, 0, 0, 1])),
    ];
    let mut echo = IcmpEcho::new();
    echo.set_port_mac(0, MacAddr(MAC[0])).add_addr(0, Ipv4Addr::new(10, 0, 0, 254));
    let (out, st) = run(Box::new(echo), &arps);
    assert!(out.is_empty());
    assert_eq!(st.drops[DropReason::Filtered as usize].get(), 3);
    let mut any = IcmpEcho::new();
    any.set_port_mac(0, MacAddr(MAC[0]));
    let (out, st) = run(Box::new(any), &arps);
    assert_eq!(out.len(), 1, "only the plain request is answered");
    let r = &out[0];
    assert_eq!(&r[..12], &[PEER, MAC[0]].concat()[..]);
    assert_eq!(&r[20..22], &[0, 2], "ARP reply");
    assert_eq!(&r[22..28], &MAC[0], "sender hardware address: the port's");
    assert_eq!(&r[28..32], &[10, 0, 0, 9], "sender protocol address: the one asked for");
    assert_eq!(&r[32..38], &PEER);
    assert_eq!(&r[38..42], &[10, 0, 0, 1]);
    assert_eq!(st.drops[DropReason::Filtered as usize].get(), 2);
    // macswap on a single port paired with itself
    let mut ms = MacSwap::default();
    ms.pairs.pair(0, 0);
    let (out, _) = run(Box::new(ms), &frames[..1]);
    assert_eq!(&out[0][..12], &[PEER, MAC[0]].concat()[..]);
    // rxonly
    let rx = RxOnly::default();
    let c = rx.counter();
    let (out, st) = run(Box::new(rx), &frames);
    assert!(out.is_empty());
    assert_eq!(c.get(), 3);
    assert_eq!(st.drops.iter().map(|c| c.get()).sum::<u64>(), 0);
    assert_eq!(pool.in_use(), 0);
}

/// Exact match through the stage: four plain IPv4 packets in a row (the four-packet step),
/// then packets taken one at a time (IPv4 with options, a tagged one); hits leave with the
/// TTL decremented and the MACs rewritten, a flow with no rule is `NoRoute`, TTL 1 is
/// `TtlExpired`, a bad checksum inside a group of four is `BadChecksum`.
#[test]
fn exact_match_routes_by_five_tuple() {
    use dataplane::lpm::{EmRoute4, Ipv4FiveTuple};
    let pool = pool(256);
    let key = |dst: [u8; 4]| Ipv4FiveTuple {
        src_ip: u32::from_be_bytes([192, 0, 2, 1]),
        dst_ip: u32::from_be_bytes(dst),
        src_port: 0x3039,
        dst_port: 9,
        proto: 17,
    };
    let routes = [[10, 0, 0, 1], [10, 0, 0, 2]].map(|d| EmRoute4 { key: key(d), port: 0 });
    let tables = L3FwdTables::from_em_routes(&routes, &[]).unwrap();
    let mut fwd = L3Fwd::with_tables(Arc::new(tables));
    fwd.set_port_mac(0, MacAddr(MAC[0]));
    let plain = |dst, ttl| eth(PEER, PEER, None, 0x0800, &ipv4_udp(dst, ttl, &[]));
    let mut bad = plain([10, 0, 0, 2], 64);
    bad[24] ^= 1;
    let frames = [
        plain([10, 0, 0, 1], 64),
        plain([10, 0, 0, 3], 64),
        bad,
        plain([10, 0, 0, 2], 1),
        plain([10, 0, 0, 2], 9),
        eth(PEER, PEER, None, 0x0800, &ipv4_udp([10, 0, 0, 1], 64, &[1, 1, 1, 0])),
        eth(PEER, PEER, Some(5), 0x0800, &ipv4_udp([10, 0, 0, 2], 64, &[])),
    ];
    let (mut outer, mut vnf) = RingPort::<Mbuf>::pair(10, 0, 1, 64).unwrap();
    let mut l = Lcore::new("em", None, fwd);
    l.add_rx(0, vnf.rx_queue(0).unwrap());
    l.add_tx(0, vnf.tx_queue(0).unwrap()).unwrap();
    let mut b = Burst::new();
    for f in &frames {
        b.push(Mbuf::from_slice(&pool, f).unwrap()).unwrap();
    }
    assert_eq!(outer.tx_queue(0).unwrap().tx_burst(&mut b), frames.len());
    let stats = l.stats();
    let mut burst = Burst::new();
    assert_eq!(l.poll_once(&mut burst, true), frames.len());
    let mut got = Burst::new();
    outer.rx_queue(0).unwrap().rx_burst(&mut got, 64);
    let out: Vec<Vec<u8>> = got.iter().map(|m| m.data().to_vec()).collect();
    let routed =
        |vlan, dst, ttl, opts: &[u8]| eth(MacAddr::local(0).0, MAC[0], vlan, 0x0800, &ipv4_udp(dst, ttl, opts));
    assert_eq!(
        out,
        vec![
            routed(None, [10, 0, 0, 1], 63, &[]),
            routed(None, [10, 0, 0, 2], 8, &[]),
            routed(None, [10, 0, 0, 1], 63, &[1, 1, 1, 0]),
            routed(Some(5), [10, 0, 0, 2], 63, &[]),
        ]
    );
    let drops = |r: DropReason| stats.drops[r as usize].get();
    assert_eq!((drops(DropReason::NoRoute), drops(DropReason::BadChecksum), drops(DropReason::TtlExpired)), (1, 1, 1));
    drop((got, l, outer, vnf));
    assert_eq!(pool.in_use(), 0);
}
