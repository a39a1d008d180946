use super::*;
use dataplane::wire::checksum::checksum;

const T: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// An echo reply to what `build_request` built: type 0, checksum fixed up.
fn reply_to(req: &[u8]) -> Vec<u8> {
    let mut r = req.to_vec();
    r[0] = ECHO_REPLY;
    r[2..4].fill(0);
    let c = checksum(&r);
    r[2..4].copy_from_slice(&c.to_be_bytes());
    r
}

fn with_ip(icmp: &[u8], src: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
    p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&[198, 18, 0, 1]);
    p.extend_from_slice(icmp);
    p
}

#[test]
fn checksum_matches_rfc1071_examples() {
    // RFC 1071 section 3's example words sum to 0xddf2; the checksum is its complement.
    assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    assert_eq!(checksum(&[]), 0xffff);
    // An odd length pads with a zero byte.
    assert_eq!(checksum(&[0x01]), !0x0100);
    let mut b = Vec::new();
    build_request(&mut b, 0x1234, 7, 13, 42);
    assert_eq!(checksum(&b), 0, "a built request checks out");
    assert_eq!(&b[..8], &[8, 0, b[2], b[3], 0x12, 0x34, 0, 7]);
    assert_eq!(b.len(), 21);
}

#[test]
fn parses_replies_with_and_without_ip_header() {
    let mut b = Vec::new();
    build_request(&mut b, 9, 3, 20, 1);
    let r = reply_to(&b);
    let p = parse_reply(&r, false, T).unwrap();
    assert_eq!((p.ident, p.seq, p.payload.len(), p.src), (9, 3, 20, T));
    let ip = with_ip(&r, Ipv4Addr::new(198, 18, 9, 9));
    let p = parse_reply(&ip, true, Ipv4Addr::UNSPECIFIED).unwrap();
    assert_eq!((p.ident, p.seq, p.src), (9, 3, Ipv4Addr::new(198, 18, 9, 9)));
    // Trailing bytes beyond the IP total length are not payload.
    let mut padded = ip.clone();
    padded.extend_from_slice(&[0xee; 6]);
    assert_eq!(parse_reply(&padded, true, T).unwrap().payload.len(), 20);
}

#[test]
fn bad_replies_are_rejected_by_reason() {
    let mut b = Vec::new();
    build_request(&mut b, 9, 3, 20, 1);
    let r = reply_to(&b);
    assert_eq!(parse_reply(&r[..7], false, T), Err(Reject::Short));
    assert_eq!(parse_reply(&[0x45; 19], true, T), Err(Reject::Short));
    assert_eq!(parse_reply(&b, false, T), Err(Reject::OtherType), "our own request");
    let mut bad = r.clone();
    bad[10] ^= 1;
    assert_eq!(parse_reply(&bad, false, T), Err(Reject::BadChecksum));
    let mut ip = with_ip(&r, T);
    ip[9] = 17;
    assert_eq!(parse_reply(&ip, true, T), Err(Reject::OtherType), "not ICMP");
    let mut ip = with_ip(&r, T);
    ip[0] = 0x4f;
    assert_eq!(parse_reply(&ip, true, T), Err(Reject::Short), "IHL beyond the packet");
    let mut ip = with_ip(&r, T);
    ip[2..4].copy_from_slice(&24u16.to_be_bytes());
    assert_eq!(parse_reply(&ip, true, T), Err(Reject::Short), "total cuts the ICMP header");
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x = 0x1234_5678u32;
    for n in 0..400 {
        let v: Vec<u8> = (0..n % 90)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = parse_reply(&v, true, T);
        let _ = parse_reply(&v, false, T);
    }
}

fn tracker(payload: usize) -> Tracker {
    let mut t = Tracker::new(T, payload, 77);
    t.set_ident(5);
    t
}

fn reply(seq: u16, payload: usize) -> Vec<u8> {
    let mut b = Vec::new();
    build_request(&mut b, 5, seq, payload, 77);
    reply_to(&b)
}

#[test]
fn replies_match_by_identifier_and_sequence() {
    let mut t = tracker(16);
    for i in 0..3 {
        t.on_send(1_000_000 * i);
    }
    let r1 = reply(1, 16);
    let p = parse_reply(&r1, false, T).unwrap();
    assert_eq!(t.on_reply(&p, 1_000_000 + 250_400), Outcome::Matched { index: 1, rtt_us: 250 });
    assert_eq!(t.on_reply(&p, 1_000_000 + 300_000), Outcome::Duplicate);
    // Out of order is fine.
    let r0 = reply(0, 16);
    let p = parse_reply(&r0, false, T).unwrap();
    assert_eq!(t.on_reply(&p, 2_000_000), Outcome::Matched { index: 0, rtt_us: 2000 });
    // Never sent, another identifier, another source, wrong payload: ignored and counted.
    let r9 = reply(9, 16);
    assert_eq!(t.on_reply(&parse_reply(&r9, false, T).unwrap(), 0), Outcome::Ignored);
    let mut other = Vec::new();
    build_request(&mut other, 6, 2, 16, 77);
    let other = reply_to(&other);
    assert_eq!(t.on_reply(&parse_reply(&other, false, T).unwrap(), 0), Outcome::Ignored);
    let r2 = reply(2, 16);
    let elsewhere = parse_reply(&r2, false, Ipv4Addr::new(198, 18, 0, 3)).unwrap();
    assert_eq!(t.on_reply(&elsewhere, 0), Outcome::Ignored);
    let short = reply(2, 15);
    assert_eq!(t.on_reply(&parse_reply(&short, false, T).unwrap(), 0), Outcome::Ignored);
    let mut cookie = Vec::new();
    build_request(&mut cookie, 5, 2, 16, 78);
    let cookie = reply_to(&cookie);
    assert_eq!(t.on_reply(&parse_reply(&cookie, false, T).unwrap(), 0), Outcome::Ignored);
    let mut data = reply(2, 16);
    data[8 + 12] ^= 0xff;
    data[2..4].fill(0);
    let c = checksum(&data);
    data[2..4].copy_from_slice(&c.to_be_bytes());
    assert_eq!(t.on_reply(&parse_reply(&data, false, T).unwrap(), 0), Outcome::Ignored);
    t.on_reject(Reject::Short);
    t.on_reject(Reject::BadChecksum);
    t.on_reject(Reject::OtherType);
    let s = t.stats("dgram", 2_000_000);
    assert_eq!((s.transmitted, s.received, s.duplicates), (3, 2, 1));
    assert_eq!(
        s.ignored,
        Ignored { short: 1, bad_checksum: 1, other_type: 1, foreign: 3, unknown_seq: 1, bad_data: 2 }
    );
    assert_eq!(s.ignored.total(), 9);
}

#[test]
fn sequence_numbers_wrap_to_the_latest_request() {
    let mut t = tracker(0);
    for i in 0..70_000u64 {
        t.on_send(i);
    }
    // Sequence 3 was last used by request 65539.
    let r = reply(3, 0);
    assert_eq!(
        t.on_reply(&parse_reply(&r, false, T).unwrap(), 70_000_000),
        Outcome::Matched { index: 65_539, rtt_us: 69_934 }
    );
    assert_eq!(t.on_reply(&parse_reply(&r, false, T).unwrap(), 70_000_000), Outcome::Duplicate);
}

/// The iputils arithmetic done by hand: RTTs 31, 45, 71, 33 µs + a 60 µs duplicate out of 5.
#[test]
fn summary_is_iputils_arithmetic() {
    let mut t = tracker(8);
    for i in 0..5 {
        t.on_send(i * 200_000_000);
    }
    for (seq, rtt_us) in [(0u16, 31u64), (1, 45), (2, 71), (3, 33), (3, 60)] {
        let r = reply(seq, 8);
        t.on_reply(&parse_reply(&r, false, T).unwrap(), u64::from(seq) * 200_000_000 + rtt_us * 1000 + 999);
    }
    let s = t.stats("raw", 812_400_000);
    // tsum = 240 over 5 timed replies: avg 48; tsum2 = 12716: var = (12716 - 57600/5)/5 = 1196/5 = 239,
    // mdev = isqrt(239) = 15.
    assert_eq!((s.min_ms, s.avg_ms, s.max_ms, s.mdev_ms), (Some(0.031), Some(0.048), Some(0.071), Some(0.015)));
    assert_eq!(s.loss_pct, 20.0);
    assert_eq!(
        s.summary(),
        "--- 198.18.0.2 ping statistics ---\n5 packets transmitted, 4 received, +1 duplicates, 20% packet loss, \
         time 812ms\nrtt min/avg/max/mdev = 0.031/0.048/0.071/0.015 ms\n"
    );
    // Large times take iputils' other branch: avg and var from the quotients.
    let mut t = tracker(0);
    for i in 0..3 {
        t.on_send(i);
    }
    for (seq, us) in [(0u16, 900_000_000u64), (1, 1_200_000_000), (2, 1_500_000_000)] {
        let r = reply(seq, 0);
        t.on_reply(&parse_reply(&r, false, T).unwrap(), u64::from(seq) + us * 1000);
    }
    let s = t.stats("raw", 0);
    // tsum = 3.6e9 µs > INT_MAX: avg = 1.2e9, var = tsum2/3 - avg^2 = 1.5e18 - 1.44e18 = 6e16.
    assert_eq!(s.mdev_ms, Some(f64::from(244_948_974u32) / 1000.0));
    assert!(s.summary().ends_with("rtt min/avg/max/mdev = 900000.000/1200000.000/1500000.000/244948.974 ms\n"));
}

#[test]
fn no_reply_means_full_loss_and_no_rtt_line() {
    let mut t = tracker(56);
    for i in 0..3 {
        t.on_send(i);
    }
    t.on_error(&io::Error::from_raw_os_error(libc::ENETUNREACH));
    let s = t.stats("dgram", 2_000_400_000);
    assert_eq!((s.received, s.loss_pct, s.min_ms, s.errors), (0, 100.0, None, 1));
    assert_eq!(
        s.summary(),
        "--- 198.18.0.2 ping statistics ---\n3 packets transmitted, 0 received, +1 errors, 100% packet loss, \
         time 2000ms\n"
    );
    assert!(s.first_error.unwrap().contains("unreachable"));
}

#[test]
fn loss_is_printed_like_printf_g() {
    for (v, s) in [
        (0.0, "0"),
        (20.0, "20"),
        (100.0, "100"),
        (33.333_332_061_767_58, "33.3333"),
        (0.5, "0.5"),
        (0.066_666_670_143_604_28, "0.0666667"),
        (2.777_777_7e-5, "2.77778e-05"),
        (99.999_9, "99.9999"),
        (99.999_999, "100"),
    ] {
        assert_eq!(fmt_g(v), s, "{v}");
    }
    // One in three lost, through the f32 rounding.
    let mut t = tracker(0);
    for i in 0..3 {
        t.on_send(i);
    }
    for seq in [0u16, 1] {
        t.on_reply(&parse_reply(&reply(seq, 0), false, T).unwrap(), 10_000);
    }
    assert!(t.stats("raw", 0).summary().contains(", 33.3333% packet loss"));
}

#[test]
fn isqrt_is_iputils_llsqrt() {
    // Newton's iteration stops one step late, as iputils' does: a = k^2 - 1 gives k, every
    // other a its floor root.
    for a in (0i64..5000).chain([1 << 40, (1 << 40) - 1, i64::MAX / 4]) {
        let r = isqrt(a);
        let floor = (a as f64).sqrt().floor() as i64;
        let k = floor + 1;
        let want = if k * k - 1 == a && a > 0 { k } else { floor };
        assert_eq!(r, want, "{a}");
    }
    assert_eq!((isqrt(3), isqrt(8), isqrt(239), isqrt(-5)), (2, 3, 15, 0));
}

#[test]
fn bad_configs_are_errors() {
    let ok = PingConfig::new(T, 1);
    for (c, what) in [
        (PingConfig { count: 0, ..ok }, "count"),
        (PingConfig { payload: MAX_PAYLOAD + 1, ..ok }, "payload"),
        (PingConfig { interval: Duration::ZERO, ..ok }, "interval"),
        (PingConfig { target: Ipv4Addr::BROADCAST, ..ok }, "unicast"),
    ] {
        let e = ping(&c).unwrap_err().to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}
