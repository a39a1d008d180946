//! Tests: RSS verification vectors, CRC32C check value, annotated fixtures, a packet generator
//! used as an oracle, and equivalence of every available implementation with the scalar one.

use super::*;
use crate::buf::PacketMeta;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// A Vec-backed PacketBuf for tests.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct VecBuf {
    data: Vec<u8>,
    meta: PacketMeta,
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    fn headroom(&self) -> usize {
        0
    }
    fn tailroom(&self) -> usize {
        0
    }
    fn prepend(&mut self, _n: usize) -> Option<&mut [u8]> {
        None
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.data.len() {
            return false;
        }
        self.data.drain(..n);
        true
    }
    fn append(&mut self, _n: usize) -> Option<&mut [u8]> {
        None
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.data.len() {
            return false;
        }
        self.data.truncate(self.data.len() - n);
        true
    }
    fn meta(&self) -> PacketMeta {
        self.meta
    }
    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
    fn port(&self) -> u16 {
        self.meta.port
    }
    fn set_port(&mut self, port: u16) {
        self.meta.port = port;
    }
    fn hash(&self) -> u32 {
        self.meta.hash
    }
    fn set_hash(&mut self, hash: u32) {
        self.meta.hash = hash;
    }
}

fn available() -> impl Iterator<Item = Impl> {
    Impl::ALL.into_iter().filter(|i| i.is_available())
}

// ---------------------------------------------------------------------------------------------
// Hash vectors
// ---------------------------------------------------------------------------------------------

/// One row of Microsoft's "Verifying the RSS Hash Calculation" tables:
/// (destination address, destination port, source address, source port, hash of the two
/// addresses, hash of addresses and ports).
type RssVector<A> = (A, u16, A, u16, u32, u32);

/// The IPv4 table.
const RSS_V4: [RssVector<[u8; 4]>; 5] = [
    ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e_8fc2, 0x51cc_c178),
    ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718_262a, 0xc626_b0ea),
    ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0_a5de, 0x5c2b_394a),
    ([209, 142, 163, 6], 2217, [38, 27, 205, 30], 48228, 0x8298_9176, 0xafc7_327f),
    ([202, 188, 127, 2], 1303, [153, 39, 163, 191], 44251, 0x5d18_09c5, 0x10e8_28a2),
];

fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The IPv6 table of the same page.
fn rss_v6() -> [RssVector<[u8; 16]>; 3] {
    [
        (v6("3ffe:2501:200:3::1"), 1766, v6("3ffe:2501:200:1fff::7"), 2794, 0x2cc1_8cd5, 0x4020_7d3d),
        (v6("ff02::1"), 4739, v6("3ffe:501:8::260:97ff:fe40:efab"), 14230, 0x0f0c_461c, 0xdde5_1bbf),
        (
            v6("fe80::200:f8ff:fe21:67cf"),
            38024,
            v6("3ffe:1900:4545:3:200:f8ff:fe21:67cf"),
            44251,
            0x4b61_e985,
            0x02d1_feef,
        ),
    ]
}

fn tuple(src: &[u8], dst: &[u8], ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut v = [src, dst].concat();
    if let Some((s, d)) = ports {
        v.extend_from_slice(&s.to_be_bytes());
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn toeplitz_matches_microsoft_vectors() {
    let key = RssKey::default();
    for (dst, dport, src, sport, h2, h4) in RSS_V4 {
        for (input, want) in [(tuple(&src, &dst, None), h2), (tuple(&src, &dst, Some((sport, dport))), h4)] {
            assert_eq!(toeplitz_reference(&DEFAULT_RSS_KEY, &input), want);
            assert_eq!(key.hash(&input), want);
        }
    }
    for (dst, dport, src, sport, h2, h4) in rss_v6() {
        for (input, want) in [(tuple(&src, &dst, None), h2), (tuple(&src, &dst, Some((sport, dport))), h4)] {
            assert_eq!(toeplitz_reference(&DEFAULT_RSS_KEY, &input), want);
            assert_eq!(key.hash(&input), want);
        }
    }
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c(b""), 0);
}

#[test]
fn short_key_is_rejected_long_key_accepted() {
    assert_eq!(RssKey::new(&[0u8; 39]).unwrap_err(), KeyTooShort(39));
    let mut long = [0u8; 52];
    long[..40].copy_from_slice(&DEFAULT_RSS_KEY);
    long[40..].fill(0xff);
    let k = RssKey::new(&long).unwrap();
    assert_eq!(k.hash(&tuple(&[66, 9, 149, 187], &[161, 142, 100, 80], Some((2794, 1766)))), 0x51cc_c178);
}

// ---------------------------------------------------------------------------------------------
// Packet builder (annotated fixtures and the random generator)
// ---------------------------------------------------------------------------------------------

const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_S: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn eth(tags: &[u16], ethertype: u16) -> Vec<u8> {
    let mut v = [MAC_D, MAC_S].concat();
    for (i, _) in tags.iter().enumerate() {
        v.extend_from_slice(&(if i == 0 && tags.len() == 2 { 0x88a8u16 } else { 0x8100 }).to_be_bytes());
        v.extend_from_slice(&tags[i].to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v
}

/// IPv4 header (no checksum: the classifier does not verify it).
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, opt_words: usize, frag: u16, payload_len: usize) -> Vec<u8> {
    let ihl = 5 + opt_words;
    let tot = (ihl * 4 + payload_len) as u16;
    let mut v = vec![0x40 | ihl as u8, 0];
    v.extend_from_slice(&tot.to_be_bytes());
    v.extend_from_slice(&[0, 1]); // id
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend(std::iter::repeat(1u8).take(opt_words * 4)); // NOP options
    v
}

fn ipv6(src: [u8; 16], dst: [u8; 16], nh: u8, payload_len: usize) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload_len as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v
}

fn tcp(sport: u16, dport: u16, opt_words: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0; 8]);
    v.push(((5 + opt_words) as u8) << 4);
    v.extend_from_slice(&[0x10, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend(std::iter::repeat(1u8).take(opt_words * 4));
    v
}

fn udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

/// A tiny deterministic generator (xorshift64*), so a proptest seed names a whole packet.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.iter_mut().for_each(|b| *b = self.next() as u8);
        a
    }
}

/// What the generator expects the classifier to report (hash excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Expect {
    ptype: u32,
    l2_len: u16,
    l3_len: u16,
    l4_len: u16,
    inner: (u16, u16, u16),
    key: FlowKey,
}

fn expect_of(c: &Classified, frame: &[u8]) -> Expect {
    Expect {
        ptype: c.ptype,
        l2_len: c.l2_len,
        l3_len: c.l3_len,
        l4_len: c.l4_len,
        inner: (c.inner_l2_len, c.inner_l3_len, c.inner_l4_len),
        key: c.flow_key(frame),
    }
}

/// Builds a random well-formed frame: eth/vlan/qinq × ipv4(+options)/ipv6(+ext headers) ×
/// tcp/udp/icmp/other/fragment/vxlan (vxlan only when `outer`). Returns the frame (with
/// random Ethernet padding) and what the classifier must report with `hash_inner`.
fn gen_frame(r: &mut Rng, outer: bool, hash_inner: bool) -> (Vec<u8>, Expect) {
    let ntags = r.below(3) as usize;
    let tags: Vec<u16> = (0..ntags).map(|_| r.next() as u16).collect();
    let mut e = Expect { l2_len: 14 + 4 * ntags as u16, ..Expect::default() };
    let l2v = [ptype::L2_ETHER, ptype::L2_ETHER_VLAN, ptype::L2_ETHER_QINQ][ntags];
    e.ptype = if outer { l2v } else { [0x1, 0x2, 0x3][ntags] << 16 };

    // L4 kind: 0 tcp, 1 udp, 2 icmp, 3 other, 4 fragment, 5 vxlan.
    let l4k = r.below(if outer { 6 } else { 5 });
    let (sport, dport) = (r.next() as u16, if l4k == 5 { VXLAN_PORT } else { r.next() as u16 });
    let payload: Vec<u8> = (0..r.below(24)).map(|_| r.next() as u8).collect();
    let mut inner_expect = None;
    let (mut l4, l4_len, l4bits): (Vec<u8>, u16, u32) = match l4k {
        0 => {
            let t = tcp(sport, if dport == VXLAN_PORT { 1 } else { dport }, r.below(4) as usize);
            let len = t.len() as u16;
            (t, len, 0x1)
        }
        1 | 5 => {
            let mut body = payload.clone();
            if l4k == 5 {
                let (inner, ie) = gen_frame(r, false, false);
                body = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
                body.extend_from_slice(&inner);
                inner_expect = Some(ie);
            }
            let d = if l4k == 1 && dport == VXLAN_PORT { 53 } else { dport };
            let mut u = udp(sport, d, body.len());
            u.extend_from_slice(&body);
            (u, 8, 0x2)
        }
        2 => (vec![8, 0, 0, 0, 0, 1, 0, 1], 8, 0x5),
        3 => (Vec::new(), 0, 0x6),
        _ => (Vec::new(), 0, 0x3),
    };
    let has_ports = matches!(l4k, 0 | 1 | 5);
    if l4k != 1 && l4k != 5 {
        l4.extend_from_slice(&payload);
    }
    let is_v6 = r.below(2) == 1;
    let ext = r.below(2) == 1;
    let mut key = FlowKey {
        has_ports,
        sport: if has_ports { sport } else { 0 },
        dport: if has_ports { u16::from_be_bytes([l4[2], l4[3]]) } else { 0 },
        ..FlowKey::default()
    };
    let l3: Vec<u8>;
    let (l3_len, l3bits);
    if !is_v6 {
        let (src, dst) = (r.bytes::<4>(), r.bytes::<4>());
        let proto = [6u8, 17, 1, 47, 6, 17][l4k as usize];
        let opts = if ext { 1 + r.below(10) as usize } else { 0 };
        let frag = if l4k == 4 { 0x2000 | r.below(0x2000) as u16 } else { 0x4000 };
        l3 = ipv4(src, dst, proto, opts, frag, l4.len());
        l3_len = 20 + 4 * opts as u16;
        l3bits = if ext { 0x3 } else { 0x1 };
        key.kind = KeyKind::Ipv4;
        key.proto = proto;
        key.src[..4].copy_from_slice(&src);
        key.dst[..4].copy_from_slice(&dst);
    } else {
        let (src, dst) = (r.bytes::<16>(), r.bytes::<16>());
        let l4proto = [6u8, 17, 58, 47, 6, 17][l4k as usize];
        // Extension headers: a chain of hop-by-hop / routing / dest-opts, then a fragment
        // header for fragments.
        let mut exts: Vec<(u8, Vec<u8>)> = Vec::new();
        if ext || l4k == 4 {
            for _ in 0..if ext { 1 + r.below(3) } else { 0 } {
                let t = [0u8, 43, 60][r.below(3) as usize];
                let units = r.below(3) as usize;
                exts.push((t, vec![0u8; 8 * (units + 1)]));
            }
        }
        if l4k == 4 {
            exts.push((44, vec![0u8; 8]));
        }
        let mut chain = Vec::new();
        for i in 0..exts.len() {
            let next = exts.get(i + 1).map_or(l4proto, |x| x.0);
            let mut h = exts[i].1.clone();
            h[0] = next;
            if exts[i].0 != 44 {
                h[1] = (h.len() / 8 - 1) as u8;
            } else {
                h[2] = 0x01; // offset 32, more fragments
            }
            chain.extend_from_slice(&h);
        }
        let first = exts.first().map_or(l4proto, |x| x.0);
        let mut h = ipv6(src, dst, first, chain.len() + l4.len());
        h.extend_from_slice(&chain);
        l3_len = h.len() as u16;
        l3 = h;
        l3bits = if exts.is_empty() { 0x4 } else { 0xe };
        key.kind = KeyKind::Ipv6;
        key.proto = l4proto;
        key.src = src;
        key.dst = dst;
    }
    e.ptype |=
        if outer { l3bits << 4 } else { [0, 0x1, 0, 0x2, 0x3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x5][l3bits as usize] << 20 };
    e.ptype |= if outer { l4bits << 8 } else { l4bits << 24 };
    e.l3_len = l3_len;
    e.l4_len = l4_len;
    e.key = key;
    if let Some(ie) = inner_expect {
        e.ptype |= ptype::TUNNEL_VXLAN | ie.ptype;
        e.inner = (ie.l2_len, ie.l3_len, ie.l4_len);
        if hash_inner {
            e.key = ie.key;
        }
    }
    let ethertype = if is_v6 { 0x86dd } else { 0x0800 };
    let mut f = eth(&tags, ethertype);
    f.extend_from_slice(&l3);
    f.extend_from_slice(&l4);
    if outer {
        let pad = r.below(12) as usize;
        f.extend(std::iter::repeat(0u8).take(pad));
    }
    (f, e)
}

fn hash_of(cfg: &ClassifyConfig, key: &FlowKey) -> u32 {
    let mut row = [0u8; 48];
    let l = key.hash_input(&mut row);
    match cfg.hash {
        HashKind::Toeplitz => toeplitz_reference(cfg.rss_key().key(), &row[..l]),
        HashKind::Crc32c => crc32c(&row[..l]),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn rss_vectors_through_whole_packets_on_every_impl() {
    let cfg = ClassifyConfig::default();
    for imp in available() {
        for (dst, dport, src, sport, h2, h4) in RSS_V4 {
            let mut f = eth(&[], 0x0800);
            let t = tcp(sport, dport, 0);
            f.extend_from_slice(&ipv4(src, dst, 6, 0, 0x4000, t.len()));
            f.extend_from_slice(&t);
            let c = classify_one_with(imp, &f, &cfg).unwrap();
            assert_eq!(c.ptype, ptype::L2_ETHER | ptype::L3_IPV4 | ptype::L4_TCP, "{imp:?}");
            assert_eq!(c.hash, h4, "{imp:?}");
            // GRE (47): no ports, so the 2-tuple hash.
            let mut g = eth(&[], 0x0800);
            g.extend_from_slice(&ipv4(src, dst, 47, 0, 0, 4));
            g.extend_from_slice(&[0; 4]);
            let c = classify_one_with(imp, &g, &cfg).unwrap();
            assert_eq!(c.ptype, ptype::L2_ETHER | ptype::L3_IPV4 | ptype::L4_NONFRAG);
            assert_eq!(c.hash, h2, "{imp:?}");
        }
        for (dst, dport, src, sport, h2, h4) in rss_v6() {
            let mut f = eth(&[7], 0x86dd);
            let t = tcp(sport, dport, 2);
            f.extend_from_slice(&ipv6(src, dst, 6, t.len()));
            f.extend_from_slice(&t);
            let c = classify_one_with(imp, &f, &cfg).unwrap();
            assert_eq!(c.ptype, ptype::L2_ETHER_VLAN | ptype::L3_IPV6 | ptype::L4_TCP);
            assert_eq!((c.l2_len, c.l3_len, c.l4_len), (18, 40, 28));
            assert_eq!(c.hash, h4, "{imp:?}");
            let mut g = eth(&[], 0x86dd);
            g.extend_from_slice(&ipv6(src, dst, 59, 0));
            let c = classify_one_with(imp, &g, &cfg).unwrap();
            assert_eq!(c.hash, h2, "{imp:?}");
        }
    }
}

/// A 60-byte ARP request: L2 only, hashed over the MAC pair.
#[rustfmt::skip]
const ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: broadcast
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
    0x08, 0x06,                         // ethertype ARP
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // htype, ptype, hlen, plen, op request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 0, 0, 1, // sender
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
];

#[test]
fn arp_and_unknown_ethertypes_hash_the_mac_pair() {
    let cfg = ClassifyConfig::crc32c();
    let c = classify_one(&ARP_REQUEST, &cfg);
    assert_eq!(c.ptype, ptype::L2_ETHER_ARP);
    let key = c.flow_key(&ARP_REQUEST);
    assert_eq!(key.kind, KeyKind::Mac);
    assert_eq!(&key.src[..6], &ARP_REQUEST[6..12]);
    assert_eq!(&key.dst[..6], &ARP_REQUEST[..6]);
    let mut input = ARP_REQUEST[6..12].to_vec();
    input.extend_from_slice(&ARP_REQUEST[..6]);
    assert_eq!(c.hash, crc32c(&input));
    assert_eq!(c.l2_len, 14);
}

#[test]
fn malformed_frames_report_the_valid_prefix() {
    let cfg = ClassifyConfig::default();
    // Shorter than Ethernet: nothing, hash 0.
    let c = classify_one(&[0u8; 13], &cfg);
    assert_eq!((c.ptype, c.hash, c.flow_key(&[0u8; 13]).kind), (ptype::MALFORMED, 0, KeyKind::None));
    // Truncated VLAN tag.
    let f = eth(&[], 0x8100);
    let c = classify_one(&f, &cfg);
    assert_eq!(c.ptype, ptype::L2_ETHER | ptype::MALFORMED);
    assert_eq!(c.flow_key(&f).kind, KeyKind::Mac);
    assert_ne!(c.hash, 0);
    // IPv4 header cut short.
    let mut f = eth(&[], 0x0800);
    f.extend_from_slice(&ipv4([1; 4], [2; 4], 6, 0, 0, 20)[..19]);
    let c = classify_one(&f, &cfg);
    assert_eq!(c.ptype, ptype::L2_ETHER | ptype::MALFORMED);
    assert_eq!((c.l2_len, c.l3_len), (14, 0));
    // IHL below 5.
    let mut f = eth(&[], 0x0800);
    let mut ip = ipv4([1; 4], [2; 4], 17, 0, 0, 0);
    ip[0] = 0x44;
    f.extend_from_slice(&ip);
    assert_eq!(classify_one(&f, &cfg).ptype, ptype::L2_ETHER | ptype::MALFORMED);
    // TCP header cut short: L3 valid (2-tuple key), L4 not reported.
    let mut f = eth(&[], 0x0800);
    f.extend_from_slice(&ipv4([1; 4], [2; 4], 6, 0, 0, 10));
    f.extend_from_slice(&tcp(1, 2, 0)[..10]);
    let c = classify_one(&f, &cfg);
    assert_eq!(c.ptype, ptype::L2_ETHER | ptype::L3_IPV4 | ptype::MALFORMED);
    let key = c.flow_key(&f);
    assert_eq!((key.kind, key.has_ports, c.l4_len), (KeyKind::Ipv4, false, 0));
    assert_eq!(c.hash, toeplitz_reference(&DEFAULT_RSS_KEY, &[1, 1, 1, 1, 2, 2, 2, 2]));
    // IPv4 total length beyond the frame.
    let mut f = eth(&[], 0x0800);
    f.extend_from_slice(&ipv4([1; 4], [2; 4], 17, 0, 0, 100));
    f.extend_from_slice(&udp(1, 2, 0));
    assert_eq!(classify_one(&f, &cfg).ptype, ptype::L2_ETHER | ptype::MALFORMED);
}

#[test]
fn vxlan_reports_inner_layers_and_hashes_inner_on_request() {
    let mut inner = eth(&[], 0x0800);
    let t = tcp(1000, 80, 0);
    inner.extend_from_slice(&ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 0, 0, t.len()));
    inner.extend_from_slice(&t);
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend_from_slice(&inner);
    let mut f = eth(&[], 0x0800);
    f.extend_from_slice(&ipv4([192, 0, 2, 1], [192, 0, 2, 2], 17, 0, 0, 8 + vx.len()));
    f.extend_from_slice(&udp(5555, VXLAN_PORT, vx.len()));
    f.extend_from_slice(&vx);
    for inner_hash in [false, true] {
        let cfg = ClassifyConfig::default().with_hash_inner(inner_hash);
        let c = classify_one(&f, &cfg);
        assert_eq!(
            c.ptype,
            ptype::L2_ETHER
                | ptype::L3_IPV4
                | ptype::L4_UDP
                | ptype::TUNNEL_VXLAN
                | ptype::INNER_L2_ETHER
                | ptype::INNER_L3_IPV4
                | ptype::INNER_L4_TCP
        );
        assert_eq!(c.inner_offset(), Some(14 + 20 + 8 + 8));
        assert_eq!((c.inner_l2_len, c.inner_l3_len, c.inner_l4_len), (14, 20, 20));
        let want_src = if inner_hash { [10, 0, 0, 1] } else { [192, 0, 2, 1] };
        assert_eq!(c.inner_key, inner_hash);
        let key = c.flow_key(&f);
        assert_eq!(&key.src[..4], &want_src);
        assert_eq!(c.hash, hash_of(&cfg, &key));
    }
}

#[test]
fn burst_writes_metadata_and_keeps_port() {
    let cfg = ClassifyConfig::default();
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut pkts: Vec<VecBuf> = (0..40)
        .map(|i| VecBuf {
            data: gen_frame(&mut r, true, false).0,
            meta: PacketMeta { port: i, ..PacketMeta::default() },
        })
        .collect();
    let mut out = [Classified::default(); 40];
    assert_eq!(classify_burst(&mut pkts[..], &cfg, &mut out[..35]), 35);
    for (i, (p, c)) in pkts.iter().zip(out.iter()).enumerate() {
        let m = p.meta();
        assert_eq!(m.port, i as u16);
        if i < 35 {
            assert_eq!((m.ptype, m.hash), (c.ptype, c.hash));
            assert_eq!((m.l2_len as u16, m.l3_len, m.l4_len as u16), (c.l2_len, c.l3_len, c.l4_len));
            assert_ne!(m.ptype, 0);
        } else {
            assert_eq!(m.ptype, 0, "packet past out.len() was touched");
        }
    }
}

#[test]
fn picks_the_best_implementation() {
    let imp = implementation();
    #[cfg(target_arch = "aarch64")]
    assert_eq!(imp, Impl::Neon, "NEON path not selected: silent fallback");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("sse4.2") {
        assert_eq!(imp, Impl::Avx2, "AVX2 path not selected: silent fallback");
    }
    assert!(imp.is_available());
    assert!(!Impl::Avx512.is_available());
    assert_eq!(classify_one_with(Impl::Avx512, &[0u8; 64], &ClassifyConfig::default()), Err(Unavailable(Impl::Avx512)));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn configs() -> [ClassifyConfig; 4] {
    let mut odd_key = [0u8; 40];
    odd_key.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u8).wrapping_mul(37) ^ 0xa5);
    [
        ClassifyConfig::default(),
        ClassifyConfig::crc32c().with_hash_inner(true),
        ClassifyConfig::toeplitz(&odd_key).unwrap().with_hash_inner(true),
        ClassifyConfig::crc32c(),
    ]
}

/// Every available implementation gives exactly the scalar result.
fn assert_all_agree(frames: &[&[u8]]) -> Result<(), TestCaseError> {
    let mut want = vec![Classified::default(); frames.len()];
    let mut got = vec![Classified::default(); frames.len()];
    for cfg in configs() {
        classify_slices_with(Impl::Scalar, frames, &cfg, &mut want).unwrap();
        for (f, w) in frames.iter().zip(&want) {
            // The general parser alone (no fast path) is the oracle for the record and the key.
            let (mut full, key) = scalar::parse(f, cfg.hash_inner);
            full.hash = w.hash;
            prop_assert_eq!(*w, full, "fast path vs general parser, {:02x?}", f);
            prop_assert_eq!(w.flow_key(f), key, "flow_key vs parser key, {:02x?}", f);
            prop_assert_eq!(u16::from(ptype::l2_len(w.ptype)), w.l2_len, "l2_len from the L2 bits, {:02x?}", f);
            prop_assert_eq!(w.hash, hash_of(&cfg, &key), "scalar hash vs bitwise oracle, {:02x?}", f);
        }
        for imp in available() {
            got.fill(Classified::default());
            prop_assert_eq!(classify_slices_with(imp, frames, &cfg, &mut got), Ok(frames.len()));
            for i in 0..frames.len() {
                prop_assert_eq!(got[i], want[i], "{:?} differs from scalar on {:02x?}", imp, frames[i]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    /// The generator is the oracle for ptype, lengths and key.
    #[test]
    fn generated_frames_match_the_generator(seed in any::<u64>(), inner in any::<bool>()) {
        let mut r = Rng(seed | 1);
        let (f, e) = gen_frame(&mut r, true, inner);
        let cfg = ClassifyConfig::default().with_hash_inner(inner);
        let c = classify_one_with(Impl::Scalar, &f, &cfg).unwrap();
        prop_assert_eq!(expect_of(&c, &f), e, "frame {:02x?}", f);
        prop_assert_eq!(c.hash, hash_of(&cfg, &e.key));
    }

    /// Bursts of well-formed frames of every shape: all implementations agree.
    #[test]
    fn impls_agree_on_generated_bursts(seed in any::<u64>(), n in 1usize..80) {
        let mut r = Rng(seed | 1);
        let frames: Vec<Vec<u8>> = (0..n).map(|_| gen_frame(&mut r, true, false).0).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_all_agree(&refs)?;
    }

    /// Truncated and corrupted frames: all implementations agree and nothing panics.
    #[test]
    fn impls_agree_on_mutated_frames(seed in any::<u64>(), n in 1usize..48) {
        let mut r = Rng(seed | 1);
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let (mut f, _) = gen_frame(&mut r, true, false);
                match r.below(4) {
                    0 => f.truncate(r.below(f.len() as u64 + 1) as usize),
                    1 => {
                        for _ in 0..1 + r.below(4) {
                            let i = r.below(f.len() as u64) as usize;
                            f[i] = r.next() as u8;
                        }
                    }
                    2 => {
                        let i = r.below(f.len() as u64) as usize;
                        f[i] = r.next() as u8;
                        f.truncate(r.below(f.len() as u64 + 1) as usize);
                    }
                    _ => f = (0..r.below(100)).map(|_| r.next() as u8).collect(),
                }
                f
            })
            .collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_all_agree(&refs)?;
    }

    /// Arbitrary bytes.
    #[test]
    fn impls_agree_on_random_bytes(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..128), 1..40)) {
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_all_agree(&refs)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The shape screen (`scalar::Pattern16`, `Kernel::matches16`)
// ---------------------------------------------------------------------------------------------

/// One frame of each shape the screen looks for, and of the shapes next to them.
fn screen_fixtures() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let u = udp(1024, 53, 22);
    let t = tcp(40000, 443, 0);
    for tags in [&[][..], &[100][..], &[100, 200][..]] {
        for (proto, l4) in [(17u8, &u), (6, &t)] {
            let mut f = eth(tags, 0x0800);
            f.extend_from_slice(&ipv4([10, 0, 0, 1], [10, 1, 0, 2], proto, 0, 0x4000, l4.len() + 22));
            f.extend_from_slice(l4);
            f.resize(f.len() + 22, 0);
            v.push(f);
            let mut f = eth(tags, 0x86dd);
            f.extend_from_slice(&ipv6([1; 16], [2; 16], proto, l4.len() + 12));
            f.extend_from_slice(l4);
            f.resize(f.len() + 12, 0xab);
            v.push(f);
        }
    }
    let mut arp = ARP_REQUEST.to_vec();
    arp.resize(60, 0);
    v.push(arp);
    v
}

/// Every single-bit change of the 16 screened bytes (EtherType onwards) of every fixture: the
/// screen never lets a frame through that the field-by-field tests would stop, on every
/// implementation (checked against the general parser by `assert_all_agree`).
#[test]
fn screen_matches_the_field_tests_under_every_bit_flip() {
    for base in screen_fixtures() {
        let mut frames = vec![base.clone()];
        for byte in scalar::SCREEN_AT..scalar::SCREEN_AT + 16 {
            for bit in 0..8 {
                let mut f = base.clone();
                f[byte] ^= 1 << bit;
                frames.push(f);
            }
        }
        let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        assert_all_agree(&refs).unwrap();
    }
}

/// Bursts that mix the screened shapes with the others — short frames (under 14, under 34 and
/// under 60 bytes), VLAN and QinQ, ARP, bad IPv4 headers — in every order of every length up to
/// 12 (so each shape sits at every position of the main loop, its odd step and the tail).
#[test]
fn screen_on_mixed_bursts_in_every_position() {
    let mut kinds = screen_fixtures();
    let mut bad_ihl = kinds[0].clone();
    bad_ihl[14] = 0x44;
    let mut options = kinds[0].clone();
    options[14] = 0x46;
    let mut frag = kinds[0].clone();
    frag[20] = 0x20;
    kinds.extend([bad_ihl, options, frag]);
    kinds.push(kinds[0][..33].to_vec()); // IPv4 cut inside the header (< 34 bytes)
    kinds.push(kinds[0][..50].to_vec()); // IPv4 under 60 bytes, header whole
    kinds.push(kinds[1][..40].to_vec()); // IPv6 cut inside the header
    kinds.push(vec![0xff; 10]); // runt
    kinds.push(Vec::new());
    for len in 1..=12 {
        for start in 0..kinds.len() {
            let frames: Vec<&[u8]> = (0..len).map(|k| &kinds[(start + 5 * k) % kinds.len()][..]).collect();
            assert_all_agree(&frames).unwrap();
        }
    }
}

/// Each kernel's vector `matches16` gives the portable answer.
fn kernel_matches_portable<K: Kernel>(h: &[u8; 60], pat: &scalar::Pattern16) -> bool {
    // SAFETY: only called for kernels whose implementation `is_available()` on this CPU.
    let got = unsafe { K::matches16(h, pat) };
    got == pat.matches(h)
}

proptest! {
    /// Random patterns and headers (the header drawn near the pattern, so both answers occur):
    /// every kernel's `matches16` agrees with the portable 128-bit compare.
    #[test]
    fn matches16_agrees_with_the_portable_compare(
        want in any::<[u8; 16]>(),
        mask in any::<[u8; 16]>(),
        noise in any::<[u8; 16]>(),
        flips in 0u32..3,
        rest in any::<[u8; 44]>(),
    ) {
        let mut pat = scalar::Pattern16 { want, mask };
        pat.want.iter_mut().zip(&pat.mask).for_each(|(w, m)| *w &= m);
        let mut h = [0u8; 60];
        h[..12].copy_from_slice(&rest[..12]);
        h[28..].copy_from_slice(&rest[12..]);
        for (i, b) in h[scalar::SCREEN_AT..scalar::SCREEN_AT + 16].iter_mut().enumerate() {
            // Free bits random; constrained bits as wanted, but for `flips` random bits.
            *b = (noise[i] & !pat.mask[i]) | pat.want[i];
        }
        for k in 0..flips {
            let i = (noise[k as usize] % 16) as usize;
            h[scalar::SCREEN_AT + i] ^= 1 << (noise[15 - k as usize] % 8);
        }
        prop_assert!(kernel_matches_portable::<scalar::ScalarKernel>(&h, &pat));
        #[cfg(target_arch = "x86_64")]
        {
            if Impl::Sse42.is_available() {
                prop_assert!(kernel_matches_portable::<x86::Sse42Kernel>(&h, &pat));
            }
            if Impl::Avx2.is_available() {
                prop_assert!(kernel_matches_portable::<x86::Avx2Kernel>(&h, &pat));
            }
        }
        #[cfg(target_arch = "aarch64")]
        if Impl::Neon.is_available() {
            prop_assert!(kernel_matches_portable::<neon::NeonKernel>(&h, &pat));
        }
    }
}
