//! The built-in ICMP echo against a veth peer in another network namespace (root needed;
//! skipped without it, failing under CI=true): the datagram socket where
//! `net.ipv4.ping_group_range` allows it, the raw socket, the refusal message, two raw pingers
//! side by side ignoring each other's replies, and a silent target.

use netns::{veth_pair, Netns};
use pktgen::icmp::{ping, PingConfig, PingError, SocketKind};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 2);

/// Pinger namespace with p0 198.18.7.1 <-> peer namespace with q0 198.18.7.2.
fn pair() -> (Netns, Netns, netns::Veth) {
    let a = Netns::new("icmp_a").unwrap();
    let b = Netns::new("icmp_b").unwrap();
    let v = veth_pair(&a, "p0", &b, "q0").unwrap();
    a.set_mac("p0", [2, 0, 0, 0, 7, 1]).unwrap();
    b.set_mac("q0", [2, 0, 0, 0, 7, 2]).unwrap();
    a.add_addr("p0", "198.18.7.1/24").unwrap();
    b.add_addr("q0", "198.18.7.2/24").unwrap();
    (a, b, v)
}

fn group_range(ns: &Netns, range: &str) {
    ns.exec(&["sysctl", "-qw", &format!("net.ipv4.ping_group_range={range}")]).unwrap();
}

fn cfg(socket: SocketKind, count: u32) -> PingConfig {
    PingConfig { payload: 200, interval: Duration::from_millis(50), socket, ..PingConfig::new(PEER, count) }
}

#[test]
fn pings_a_veth_peer_on_datagram_and_raw_sockets() {
    if !netns::require_or_skip("pings_a_veth_peer_on_datagram_and_raw_sockets") {
        return;
    }
    let (a, _b, _v) = pair();

    // A new namespace starts with ping_group_range "1 0" (nobody): the datagram socket is refused
    // and the error says what to change.
    group_range(&a, "1 0");
    let c = cfg(SocketKind::Dgram, 1);
    let e = a.run(move || ping(&c)).unwrap().unwrap_err();
    assert!(matches!(e, PingError::Socket(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("ping_group_range = \"1 0\"") && msg.contains("group 0"), "{msg}");

    // Root has CAP_NET_RAW: auto falls back to the raw socket.
    let c = cfg(SocketKind::Auto, 5);
    let s = a.run(move || ping(&c)).unwrap().unwrap();
    assert_eq!((s.socket, s.transmitted, s.received, s.duplicates, s.loss_pct), ("raw", 5, 5, 0, 0.0), "{s:?}");
    let (min, avg, max, mdev) = (s.min_ms.unwrap(), s.avg_ms.unwrap(), s.max_ms.unwrap(), s.mdev_ms.unwrap());
    assert!(0.0 <= min && min <= avg && avg <= max && mdev >= 0.0, "{s:?}");
    assert!(s.summary().contains("5 packets transmitted, 5 received, 0% packet loss"), "{}", s.summary());

    // With root's group in the range, auto takes the datagram socket.
    group_range(&a, "0 0");
    let c = cfg(SocketKind::Auto, 5);
    let s = a.run(move || ping(&c)).unwrap().unwrap();
    assert_eq!((s.socket, s.received, s.ignored.total()), ("dgram", 5, 0), "{s:?}");
    assert!(s.summary().contains("rtt min/avg/max/mdev = "), "{}", s.summary());
}

#[test]
fn raw_pingers_side_by_side_ignore_each_others_replies() {
    if !netns::require_or_skip("raw_pingers_side_by_side_ignore_each_others_replies") {
        return;
    }
    let (a, _b, _v) = pair();
    let c = cfg(SocketKind::Raw, 20);
    let h1 = a.spawn(move || ping(&c)).unwrap();
    let h2 = a.spawn(move || ping(&c)).unwrap();
    for s in [h1.join().unwrap().unwrap(), h2.join().unwrap().unwrap()] {
        assert_eq!((s.transmitted, s.received, s.duplicates), (20, 20, 0), "{s:?}");
        // Each raw socket sees every echo reply arriving in the namespace: the other pinger's
        // (another identifier and cookie) are ignored as foreign. The runs overlap for ~1 s.
        assert!(s.ignored.foreign > 0, "{s:?}");
        assert_eq!(s.ignored.bad_checksum + s.ignored.bad_data + s.ignored.short + s.ignored.unknown_seq, 0);
    }
}

#[test]
fn a_silent_target_is_full_loss_after_the_timeout() {
    if !netns::require_or_skip("a_silent_target_is_full_loss_after_the_timeout") {
        return;
    }
    let (a, _b, _v) = pair();
    // Nobody answers ARP for .99 on the link.
    let c = PingConfig {
        target: Ipv4Addr::new(198, 18, 7, 99),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        ..PingConfig::new(PEER, 3)
    };
    let t = Instant::now();
    let s = a.run(move || ping(&c)).unwrap().unwrap();
    let took = t.elapsed();
    assert_eq!((s.transmitted, s.received, s.loss_pct, s.max_ms), (3, 0, 100.0, None), "{s:?}");
    // Two intervals and the timeout, not more than a generous bound.
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "{took:?}");
    assert!(!s.summary().contains("rtt"), "{}", s.summary());
}
