//! The scalar twin: the header parser every implementation shares, and the portable hash
//! kernels (table-driven Toeplitz, slicing-by-8 CRC32C), plus the bit-by-bit Toeplitz
//! reference used as the test oracle.

use super::{ptype, Classified, ClassifyConfig, FlowKey, HashKind, Kernel, KeyKind, Rows, CHUNK};

// ---------------------------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------------------------

/// Reflected CRC32C (Castagnoli) polynomial.
const CRC32C_POLY: u32 = 0x82f6_3b78;

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ CRC32C_POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// CRC32C (Castagnoli; initial value and final XOR `!0`) of `data`, slicing-by-8 in software.
/// `crc32c(b"123456789") == 0xe306_9283`.
pub fn crc32c(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][ch[4] as usize]
            ^ t[2][ch[5] as usize]
            ^ t[1][ch[6] as usize]
            ^ t[0][ch[7] as usize];
    }
    for &b in chunks.remainder() {
        c = (c >> 8) ^ t[0][((c ^ b as u32) & 0xff) as usize];
    }
    !c
}

/// Bit-by-bit Toeplitz hash of `input` under `key` (Microsoft RSS definition): for every set
/// input bit `i` (most significant bit of byte 0 first), XOR the 32 key bits starting at bit
/// `i`. Key bits past the end of `key` count as zero. Slow; the reference the table-driven
/// and vector kernels are tested against.
pub fn toeplitz_reference(key: &[u8], input: &[u8]) -> u32 {
    let kbit = |i: usize| -> u32 { key.get(i / 8).map_or(0, |b| ((b >> (7 - i % 8)) & 1) as u32) };
    // `w` is the 32-bit key window starting at the current input bit.
    let mut w = (0..32).fold(0u32, |w, i| (w << 1) | kbit(i));
    let mut next = 32;
    let mut h = 0u32;
    for &b in input {
        for j in 0..8 {
            if b & (0x80 >> j) != 0 {
                h ^= w;
            }
            w = (w << 1) | kbit(next);
            next += 1;
        }
    }
    h
}

/// Portable kernel: table-driven Toeplitz or slicing-by-8 CRC32C, one row at a time.
pub(crate) struct ScalarKernel;

impl Kernel for ScalarKernel {
    #[inline(always)]
    unsafe fn crc32c(row: &[u8; 48], len: usize) -> u32 {
        crc32c(&row[..len.min(48)])
    }

    #[inline(always)]
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, _max_len: usize, out: &mut [u32; CHUNK]) {
        let rows_used = rows.row.iter().zip(&rows.len).take(m);
        for (o, (row, &len)) in out.iter_mut().zip(rows_used) {
            let input = &row[..(len as usize).min(48)];
            *o = match cfg.hash {
                HashKind::Toeplitz => cfg.rss.hash(input),
                HashKind::Crc32c => crc32c(input),
            };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_QINQ_OLD: u16 = 0x9100;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

/// At most this many IPv6 extension headers are walked; more is malformed.
const MAX_IPV6_EXT: usize = 8;

#[inline(always)]
fn byte(d: &[u8], o: usize) -> u8 {
    d.get(o).copied().unwrap_or(0)
}

#[inline(always)]
fn be16(d: &[u8], o: usize) -> u16 {
    match d.get(o..o + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

#[inline(always)]
fn copy_to(dst: &mut [u8], d: &[u8], o: usize, n: usize) {
    if let (Some(s), Some(t)) = (d.get(o..o + n), dst.get_mut(..n)) {
        t.copy_from_slice(s);
    }
}

#[inline(always)]
fn is_vlan(et: u16) -> bool {
    et == ETH_P_8021Q || et == ETH_P_8021AD || et == ETH_P_QINQ_OLD
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum L2Kind {
    Ether,
    Arp,
    Vlan,
    Qinq,
}

struct L2 {
    kind: L2Kind,
    len: usize,
    /// Ethertype of the payload, 0 when a VLAN tag was truncated.
    ethertype: u16,
    malformed: bool,
}

/// Parses Ethernet and up to two VLAN tags at `off`; `None` when fewer than 14 bytes remain.
#[inline(always)]
fn parse_l2(d: &[u8], off: usize, end: usize) -> Option<L2> {
    if off + 14 > end {
        return None;
    }
    let mut l2 = L2 { kind: L2Kind::Ether, len: 14, ethertype: be16(d, off + 12), malformed: false };
    if is_vlan(l2.ethertype) {
        if off + 18 > end {
            l2.ethertype = 0;
            l2.malformed = true;
            return Some(l2);
        }
        l2.kind = L2Kind::Vlan;
        l2.len = 18;
        l2.ethertype = be16(d, off + 16);
        if is_vlan(l2.ethertype) {
            if off + 22 > end {
                l2.ethertype = 0;
                l2.malformed = true;
                return Some(l2);
            }
            l2.kind = L2Kind::Qinq;
            l2.len = 22;
            l2.ethertype = be16(d, off + 20);
        }
    } else if l2.ethertype == ETH_P_ARP {
        l2.kind = L2Kind::Arp;
    }
    Some(l2)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum L3Kind {
    None,
    V4,
    V4Ext,
    V6,
    V6Ext,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum L4Kind {
    None,
    Tcp,
    Udp,
    Frag,
    Icmp,
    Other,
}

struct Ip {
    l3: L3Kind,
    l4: L4Kind,
    l3_len: usize,
    l4_len: usize,
    /// Offset of the UDP payload and end of the UDP datagram, for VXLAN.
    udp_payload: usize,
    udp_end: usize,
    key: FlowKey,
    malformed: bool,
}

impl Ip {
    #[inline(always)]
    fn none() -> Self {
        Ip {
            l3: L3Kind::None,
            l4: L4Kind::None,
            l3_len: 0,
            l4_len: 0,
            udp_payload: 0,
            udp_end: 0,
            key: FlowKey::default(),
            malformed: false,
        }
    }
    #[inline(always)]
    fn bad() -> Self {
        Ip { malformed: true, ..Ip::none() }
    }
}

/// Parses the L4 header at `off` (bounded by the IP datagram end `end`) into `ip`.
#[inline(always)]
fn parse_l4(d: &[u8], off: usize, end: usize, proto: u8, icmp: u8, ip: &mut Ip) {
    match proto {
        IPPROTO_TCP => {
            if off + 20 > end {
                ip.malformed = true;
                return;
            }
            let doff = (byte(d, off + 12) >> 4) as usize * 4;
            if doff < 20 || off + doff > end {
                ip.malformed = true;
                return;
            }
            ip.l4 = L4Kind::Tcp;
            ip.l4_len = doff;
            ip.key.has_ports = true;
            ip.key.sport = be16(d, off);
            ip.key.dport = be16(d, off + 2);
        }
        IPPROTO_UDP => {
            if off + 8 > end {
                ip.malformed = true;
                return;
            }
            let ulen = be16(d, off + 4) as usize;
            if ulen < 8 || off + ulen > end {
                ip.malformed = true;
                return;
            }
            ip.l4 = L4Kind::Udp;
            ip.l4_len = 8;
            ip.udp_payload = off + 8;
            ip.udp_end = off + ulen;
            ip.key.has_ports = true;
            ip.key.sport = be16(d, off);
            ip.key.dport = be16(d, off + 2);
        }
        p if p == icmp => {
            if off + 8 > end {
                ip.malformed = true;
                return;
            }
            ip.l4 = L4Kind::Icmp;
            ip.l4_len = 8;
        }
        _ => ip.l4 = L4Kind::Other,
    }
}

#[inline(always)]
fn parse_ipv4(d: &[u8], off: usize, end: usize) -> Ip {
    if off + 20 > end {
        return Ip::bad();
    }
    let vihl = byte(d, off);
    let ihl = (vihl & 15) as usize * 4;
    let tot = be16(d, off + 2) as usize;
    if vihl >> 4 != 4 || ihl < 20 || tot < ihl || off + tot > end {
        return Ip::bad();
    }
    let mut ip = Ip::none();
    ip.l3 = if ihl == 20 { L3Kind::V4 } else { L3Kind::V4Ext };
    ip.l3_len = ihl;
    ip.key.kind = KeyKind::Ipv4;
    let proto = byte(d, off + 9);
    ip.key.proto = proto;
    copy_to(&mut ip.key.src, d, off + 12, 4);
    copy_to(&mut ip.key.dst, d, off + 16, 4);
    if be16(d, off + 6) & 0x3fff != 0 {
        ip.l4 = L4Kind::Frag;
        return ip;
    }
    parse_l4(d, off + ihl, off + tot, proto, IPPROTO_ICMP, &mut ip);
    ip
}

#[inline(always)]
fn parse_ipv6(d: &[u8], off: usize, end: usize) -> Ip {
    if off + 40 > end || byte(d, off) >> 4 != 6 {
        return Ip::bad();
    }
    let ip_end = off + 40 + be16(d, off + 4) as usize;
    if ip_end > end {
        return Ip::bad();
    }
    let mut nh = byte(d, off + 6);
    let mut cur = off + 40;
    let mut ext = false;
    let mut frag = false;
    let mut walked = 0;
    loop {
        let hlen = match nh {
            // Hop-by-hop, routing, destination options: 8-byte units, not counting the first.
            0 | 43 | 60 => (byte(d, cur + 1) as usize + 1) * 8,
            // Authentication header: 4-byte units, not counting the first two.
            51 => (byte(d, cur + 1) as usize + 2) * 4,
            44 => 8,
            _ => break,
        };
        walked += 1;
        if walked > MAX_IPV6_EXT || cur + 8 > ip_end || cur + hlen > ip_end {
            return Ip::bad();
        }
        ext = true;
        let this = nh;
        nh = byte(d, cur);
        cur += hlen;
        if this == 44 {
            frag = true;
            break;
        }
    }
    let mut ip = Ip::none();
    ip.l3 = if ext { L3Kind::V6Ext } else { L3Kind::V6 };
    ip.l3_len = cur - off;
    ip.key.kind = KeyKind::Ipv6;
    ip.key.proto = nh;
    copy_to(&mut ip.key.src, d, off + 8, 16);
    copy_to(&mut ip.key.dst, d, off + 24, 16);
    if frag {
        ip.l4 = L4Kind::Frag;
        return ip;
    }
    parse_l4(d, cur, ip_end, nh, IPPROTO_ICMPV6, &mut ip);
    ip
}

#[inline(always)]
fn parse_ip(d: &[u8], off: usize, ethertype: u16, end: usize) -> Ip {
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(d, off, end),
        ETH_P_IPV6 => parse_ipv6(d, off, end),
        _ => Ip::none(),
    }
}

#[inline(always)]
fn l2_bits(k: L2Kind, inner: bool) -> u32 {
    match (k, inner) {
        (L2Kind::Ether, false) => ptype::L2_ETHER,
        (L2Kind::Arp, false) => ptype::L2_ETHER_ARP,
        (L2Kind::Vlan, false) => ptype::L2_ETHER_VLAN,
        (L2Kind::Qinq, false) => ptype::L2_ETHER_QINQ,
        (L2Kind::Ether | L2Kind::Arp, true) => ptype::INNER_L2_ETHER,
        (L2Kind::Vlan, true) => ptype::INNER_L2_ETHER_VLAN,
        (L2Kind::Qinq, true) => ptype::INNER_L2_ETHER_QINQ,
    }
}

#[inline(always)]
fn l3_bits(k: L3Kind, inner: bool) -> u32 {
    match (k, inner) {
        (L3Kind::None, _) => 0,
        (L3Kind::V4, false) => ptype::L3_IPV4,
        (L3Kind::V4Ext, false) => ptype::L3_IPV4_EXT,
        (L3Kind::V6, false) => ptype::L3_IPV6,
        (L3Kind::V6Ext, false) => ptype::L3_IPV6_EXT,
        (L3Kind::V4, true) => ptype::INNER_L3_IPV4,
        (L3Kind::V4Ext, true) => ptype::INNER_L3_IPV4_EXT,
        (L3Kind::V6, true) => ptype::INNER_L3_IPV6,
        (L3Kind::V6Ext, true) => ptype::INNER_L3_IPV6_EXT,
    }
}

#[inline(always)]
fn l4_bits(k: L4Kind) -> u32 {
    match k {
        L4Kind::None => 0,
        L4Kind::Tcp => ptype::L4_TCP,
        L4Kind::Udp => ptype::L4_UDP,
        L4Kind::Frag => ptype::L4_FRAG,
        L4Kind::Icmp => ptype::L4_ICMP,
        L4Kind::Other => ptype::L4_NONFRAG,
    }
}

/// Parses one frame into `c` (hash 0) and writes its hash input into `row[..len]`, returning
/// `len`. Bytes of `row` past `len` are left alone or zeroed, so a row that starts zeroed ends
/// zero-padded (which the batched Toeplitz kernels rely on).
///
/// The common shapes (Ethernet or one VLAN tag; IPv4 without options or IPv6 without
/// extension headers; TCP or non-VXLAN UDP; not a fragment) take a straight-line fast path
/// with one length check and fixed-size reads; everything else goes through [`parse`].
#[inline(always)]
pub(crate) fn parse_into(d: &[u8], hash_inner: bool, c: &mut Classified, row: &mut [u8; 48]) -> usize {
    match parse_fast(d, c, row) {
        0 => parse_slow(d, hash_inner, c, row),
        n => n,
    }
}

/// The general path, kept out of line so the burst loop around the fast path stays small.
#[inline(never)]
fn parse_slow(d: &[u8], hash_inner: bool, c: &mut Classified, row: &mut [u8; 48]) -> usize {
    *c = parse(d, hash_inner);
    *row = [0u8; 48]; // the fast path may have written part of it before giving up
    c.key.hash_input(row)
}

/// The fast path of [`parse_into`]: returns the hash input length, or 0 (with `row` possibly
/// scribbled on) when the frame is not one of the common shapes.
///
/// One length check gives a fixed-size view of the first 60 bytes (the Ethernet minimum; 78
/// for IPv6), and the L2 length is a const parameter, so every header read is at a constant
/// offset into an array: no per-field bounds checks and nothing that can panic.
#[inline(always)]
fn parse_fast(d: &[u8], c: &mut Classified, row: &mut [u8; 48]) -> usize {
    let Some(h) = d.first_chunk::<60>() else {
        return 0;
    };
    match be16a(h, 12) {
        ETH_P_IPV4 => fast_v4::<14>(d.len(), h, ptype::L2_ETHER, c, row),
        ETH_P_IPV6 => fast_v6::<14>(d, ptype::L2_ETHER, c, row),
        ETH_P_8021Q => match be16a(h, 16) {
            ETH_P_IPV4 => fast_v4::<18>(d.len(), h, ptype::L2_ETHER_VLAN, c, row),
            ETH_P_IPV6 => fast_v6::<18>(d, ptype::L2_ETHER_VLAN, c, row),
            _ => 0,
        },
        ETH_P_ARP => {
            let mut mac = [[0u8; 16]; 2];
            mac[0][..6].copy_from_slice(&h[6..12]);
            mac[1][..6].copy_from_slice(&h[..6]);
            row[..6].copy_from_slice(&h[6..12]);
            row[6..12].copy_from_slice(&h[..6]);
            *c = Classified {
                ptype: ptype::L2_ETHER_ARP,
                l2_len: 14,
                key: FlowKey { kind: KeyKind::Mac, src: mac[0], dst: mac[1], ..FlowKey::default() },
                ..Classified::default()
            };
            12
        }
        _ => 0,
    }
}

#[inline(always)]
fn be16a<const N: usize>(h: &[u8; N], o: usize) -> u16 {
    u16::from_be_bytes([h[o], h[o + 1]])
}

/// TCP or non-VXLAN UDP at `l4` inside `h`, bounded by the IP end `end`:
/// `(ptype bits, header length)`, or `None`.
#[inline(always)]
fn fast_l4<const N: usize, const L4: usize>(h: &[u8; N], proto: u8, end: usize) -> Option<(u32, u16)> {
    match proto {
        IPPROTO_UDP => {
            let ulen = be16a(h, L4 + 4) as usize;
            (ulen >= 8 && L4 + ulen <= end && be16a(h, L4 + 2) != super::VXLAN_PORT).then_some((ptype::L4_UDP, 8))
        }
        IPPROTO_TCP => {
            let doff = (h[L4 + 12] >> 4) as usize * 4;
            (doff >= 20 && L4 + doff <= end).then_some((ptype::L4_TCP, doff as u16))
        }
        _ => None,
    }
}

#[inline(always)]
fn fast_v4<const L2: usize>(len: usize, h: &[u8; 60], l2t: u32, c: &mut Classified, row: &mut [u8; 48]) -> usize {
    // IHL 5 only; no fragment (MF clear, offset 0).
    if h[L2] != 0x45 || h[L2 + 6] & 0x3f != 0 || h[L2 + 7] != 0 {
        return 0;
    }
    let end = L2 + be16a(h, L2 + 2) as usize;
    if end > len {
        return 0;
    }
    let proto = h[L2 + 9];
    // A total length too short for the L4 header fails the `L4 + len <= end` checks.
    let l4 = match L2 {
        14 => fast_l4::<60, 34>(h, proto, end),
        _ => fast_l4::<60, 38>(h, proto, end),
    };
    let Some((l4t, l4_len)) = l4 else {
        return 0;
    };
    let (ip, p) = (L2 + 12, L2 + 20);
    row[..8].copy_from_slice(&h[ip..ip + 8]);
    row[8..12].copy_from_slice(&h[p..p + 4]);
    let mut a = [[0u8; 16]; 2];
    a[0][..4].copy_from_slice(&h[ip..ip + 4]);
    a[1][..4].copy_from_slice(&h[ip + 4..ip + 8]);
    *c = Classified {
        ptype: l2t | ptype::L3_IPV4 | l4t,
        hash: 0,
        l2_len: L2 as u16,
        l3_len: 20,
        l4_len,
        inner_l2_len: 0,
        inner_l3_len: 0,
        inner_l4_len: 0,
        key: FlowKey {
            kind: KeyKind::Ipv4,
            proto,
            has_ports: true,
            sport: be16a(h, p),
            dport: be16a(h, p + 2),
            src: a[0],
            dst: a[1],
        },
    };
    12
}

#[inline(always)]
fn fast_v6<const L2: usize>(d: &[u8], l2t: u32, c: &mut Classified, row: &mut [u8; 48]) -> usize {
    let Some(h) = d.first_chunk::<78>() else {
        return 0;
    };
    let end = L2 + 40 + be16a(h, L2 + 4) as usize;
    if h[L2] >> 4 != 6 || end > d.len() {
        return 0;
    }
    let proto = h[L2 + 6];
    let l4 = match L2 {
        14 => fast_l4::<78, 54>(h, proto, end),
        _ => fast_l4::<78, 58>(h, proto, end),
    };
    let Some((l4t, l4_len)) = l4 else {
        return 0;
    };
    let (ip, p) = (L2 + 8, L2 + 40);
    row[..32].copy_from_slice(&h[ip..ip + 32]);
    row[32..36].copy_from_slice(&h[p..p + 4]);
    let mut a = [[0u8; 16]; 2];
    a[0].copy_from_slice(&h[ip..ip + 16]);
    a[1].copy_from_slice(&h[ip + 16..ip + 32]);
    *c = Classified {
        ptype: l2t | ptype::L3_IPV6 | l4t,
        hash: 0,
        l2_len: L2 as u16,
        l3_len: 40,
        l4_len,
        inner_l2_len: 0,
        inner_l3_len: 0,
        inner_l4_len: 0,
        key: FlowKey {
            kind: KeyKind::Ipv6,
            proto,
            has_ports: true,
            sport: be16a(h, p),
            dport: be16a(h, p + 2),
            src: a[0],
            dst: a[1],
        },
    };
    36
}

/// Parses one frame. The hash is left 0; the key is the one to hash.
#[inline(always)]
pub(crate) fn parse(d: &[u8], hash_inner: bool) -> Classified {
    let mut c = Classified::default();
    let end = d.len();
    let Some(l2) = parse_l2(d, 0, end) else {
        c.ptype = ptype::MALFORMED;
        return c;
    };
    c.ptype = l2_bits(l2.kind, false);
    c.l2_len = l2.len as u16;
    c.key.kind = KeyKind::Mac;
    copy_to(&mut c.key.dst, d, 0, 6);
    copy_to(&mut c.key.src, d, 6, 6);
    if l2.malformed {
        c.ptype |= ptype::MALFORMED;
        return c;
    }
    let ip = parse_ip(d, l2.len, l2.ethertype, end);
    if ip.malformed {
        c.ptype |= ptype::MALFORMED;
    }
    if ip.l3 == L3Kind::None {
        return c;
    }
    c.ptype |= l3_bits(ip.l3, false) | l4_bits(ip.l4);
    c.l3_len = ip.l3_len as u16;
    c.l4_len = ip.l4_len as u16;
    c.key = ip.key;

    // VXLAN: UDP to 4789 with room for the VXLAN header and the I flag set.
    if ip.l4 != L4Kind::Udp || ip.key.dport != super::VXLAN_PORT {
        return c;
    }
    let vx = ip.udp_payload;
    let vend = ip.udp_end;
    if vx + 8 > vend || byte(d, vx) & 0x08 == 0 {
        return c;
    }
    c.ptype |= ptype::TUNNEL_VXLAN;
    let Some(il2) = parse_l2(d, vx + 8, vend) else {
        c.ptype |= ptype::MALFORMED;
        return c;
    };
    c.ptype |= l2_bits(il2.kind, true);
    c.inner_l2_len = il2.len as u16;
    if il2.malformed {
        c.ptype |= ptype::MALFORMED;
        return c;
    }
    let iip = parse_ip(d, vx + 8 + il2.len, il2.ethertype, vend);
    if iip.malformed {
        c.ptype |= ptype::MALFORMED;
    }
    if iip.l3 == L3Kind::None {
        return c;
    }
    c.ptype |= l3_bits(iip.l3, true) | (l4_bits(iip.l4) << 16);
    c.inner_l3_len = iip.l3_len as u16;
    c.inner_l4_len = iip.l4_len as u16;
    if hash_inner {
        c.key = iip.key;
    }
    c
}
