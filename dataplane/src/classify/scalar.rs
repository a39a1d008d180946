//! The scalar twin: the header parser every implementation shares, and the portable hash
//! kernels (table-driven Toeplitz, slicing-by-8 CRC32C), plus the bit-by-bit Toeplitz
//! reference used as the test oracle.

use super::{ptype, Classified, ClassifyConfig, FlowKey, Kernel, KeyKind, Rows, CHUNK};

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
    const BATCHED_TOEPLITZ: bool = false;
    const SCREEN: bool = false;

    #[inline(always)]
    unsafe fn crc32c<const N: usize>(b: &[u8; N]) -> u32 {
        crc32c(b)
    }

    #[inline(always)]
    unsafe fn matches16(h: &[u8; 60], pat: &Pattern16) -> bool {
        pat.matches(h)
    }

    #[inline(always)]
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, _max_len: usize, out: &mut [u32; CHUNK]) {
        // Not used by `run` (Toeplitz is hashed in the parse pass here); kept for completeness.
        let rows_used = rows.row.iter().zip(&rows.len).take(m);
        for (o, (row, &len)) in out.iter_mut().zip(rows_used) {
            *o = cfg.rss.hash(&row[..(len as usize).min(48)]);
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

/// Where the parser sends each packet's hash input.
///
/// The fast path hands over the input as a fixed-size view straight into the packet (for
/// IPv4 without options and IPv6 without extension headers the RSS-order input — addresses
/// then ports — is contiguous in the packet), so nothing is copied when the hash is computed
/// right away.
pub(crate) trait Sink {
    /// The next packet is packet `i` of the call (for sinks that collect rows).
    #[inline(always)]
    fn at(&mut self, _i: usize) {}

    /// Takes the next packet's hash input `b` (called exactly once per packet, in order) and
    /// returns its hash, or 0 when the hash is computed later for the whole chunk.
    fn input<const N: usize>(&mut self, b: &[u8; N]) -> u32;

    /// Whether the fast path screens the frame's shape with [`matches`](Self::matches)
    /// (the vector implementations: one vector compare per shape) or field by field (the
    /// portable code, where the 128-bit compare costs more than the field tests it replaces;
    /// figures in `benches/CLASSIFY_RESULTS.md`, round 5).
    const SCREEN: bool = false;

    /// True when the 16 bytes of the frame's first 60 `h` from [`SCREEN_AT`] match `pat`
    /// ([`Pattern16::matches`]); the sinks of the vector implementations answer with one
    /// vector compare ([`Kernel::matches16`]).
    #[inline(always)]
    fn matches(h: &[u8; 60], pat: &Pattern16) -> bool {
        pat.matches(h)
    }

    /// [`input`](Self::input) for the hash input of `key` (0, 8, 12, 32 or 36 bytes).
    #[inline(always)]
    fn key(&mut self, key: &FlowKey) -> u32 {
        let mut row = [0u8; 48];
        match key.hash_input(&mut row) {
            8 => self.input::<8>(sub(&row, 0)),
            12 => self.input::<12>(sub(&row, 0)),
            32 => self.input::<32>(sub(&row, 0)),
            36 => self.input::<36>(sub(&row, 0)),
            _ => self.input::<0>(&[]),
        }
    }
}

/// Scalar Toeplitz, computed in the parse pass; header patterns matched by kernel `K`.
pub(crate) struct ToeplitzNow<'a, K>(pub(crate) &'a super::RssKey, pub(crate) core::marker::PhantomData<K>);

impl<K: Kernel> Sink for ToeplitzNow<'_, K> {
    const SCREEN: bool = K::SCREEN;

    #[inline(always)]
    fn input<const N: usize>(&mut self, b: &[u8; N]) -> u32 {
        self.0.hash(b)
    }

    #[inline(always)]
    fn matches(h: &[u8; 60], pat: &Pattern16) -> bool {
        // SAFETY: `ToeplitzNow<K>` is only built by `run::<_, K>`, whose caller guarantees K's
        // features.
        unsafe { K::matches16(h, pat) }
    }
}

/// Where the 16 bytes that [`Pattern16`]s describe start in a frame: the outer EtherType.
pub(crate) const SCREEN_AT: usize = 12;

/// A shape of the 16 header bytes from [`SCREEN_AT`] (EtherType onwards): the bits set in
/// `mask` must equal those of `want`; the others are free (`want` is 0 there).
#[derive(Clone, Copy)]
pub(crate) struct Pattern16 {
    pub(crate) want: [u8; 16],
    pub(crate) mask: [u8; 16],
}

impl Pattern16 {
    /// Portable test: `w & mask == want` for the 16 bytes `w` of `h` from [`SCREEN_AT`], as one
    /// 128-bit compare.
    #[inline(always)]
    pub(crate) fn matches(&self, h: &[u8; 60]) -> bool {
        let w = u128::from_ne_bytes(*sub::<60, 16>(h, SCREEN_AT));
        let (m, want) = (u128::from_ne_bytes(self.mask), u128::from_ne_bytes(self.want));
        w & m == want
    }
}

/// The `N`-byte view of `h` at `o` (`o + N <= M`; with constant offsets, as everywhere here,
/// the check folds away).
#[inline(always)]
fn sub<const M: usize, const N: usize>(h: &[u8; M], o: usize) -> &[u8; N] {
    match h.get(o..).and_then(|t| t.first_chunk::<N>()) {
        Some(a) => a,
        None => unreachable!("constant offset {o} + {N} past {M}"),
    }
}

/// Parses one frame into `c` and passes its hash input to `sink`; `c.hash`
/// is what the sink returned.
///
/// The common shapes (Ethernet or one VLAN tag; IPv4 without options or IPv6 without
/// extension headers; TCP or non-VXLAN UDP; not a fragment; ARP) take a straight-line fast
/// path with one length check and fixed-size reads; so do frames shorter than 60 bytes whose
/// outcome their length fixes ([`parse_short`]); everything else goes through [`parse`].
#[inline(always)]
pub(crate) fn parse_into<S: Sink>(d: &[u8], hash_inner: bool, c: &mut Classified, sink: &mut S) {
    if let Some(h) = d.first_chunk::<60>() {
        if !parse_fast(d, h, c, sink) {
            parse_fallback(d, hash_inner, c, sink);
        }
    } else {
        cold();
        if !parse_short(d, c, sink) {
            parse_fallback(d, hash_inner, c, sink);
        }
    }
}

/// Everything the fast paths declined, kept out of line (and cold, so the fast path's blocks
/// are laid out straight) so the burst loop around the fast path stays small and carries no
/// state for it.
#[cold]
#[inline(never)]
fn parse_fallback<S: Sink>(d: &[u8], hash_inner: bool, c: &mut Classified, sink: &mut S) {
    let (mut r, key) = parse(d, hash_inner);
    r.hash = sink.key(&key);
    *c = r;
}

/// Frames shorter than 60 bytes (the Ethernet minimum) with an outcome fixed by their length
/// (the same as the general parser's): shorter than Ethernet, or untagged IPv4/IPv6 cut inside
/// the L3 header. False (nothing written) for any other short frame.
///
/// Inline, behind a cold branch: a call here cost more than the work itself (argument moves,
/// the callee's register saves, the caller's vector constants reloaded after it), and a runt
/// then took as long as in etherparse.
#[inline(always)]
fn parse_short<S: Sink>(d: &[u8], c: &mut Classified, sink: &mut S) -> bool {
    let Some(h) = d.first_chunk::<14>() else {
        // Shorter than Ethernet: nothing parsed, no key.
        c.set_outer(ptype::MALFORMED, sink.input::<0>(&[]), 0, 0, 0);
        return true;
    };
    let cut = match u16::from_be_bytes([h[12], h[13]]) {
        ETH_P_IPV4 => d.len() < 14 + 20,
        ETH_P_IPV6 => d.len() < 14 + 40,
        _ => false,
    };
    if cut {
        // Untagged IPv4/IPv6 whose header does not fit in the frame: only L2 is valid.
        fast_l2_only(h, ptype::L2_ETHER, 14, true, c, sink);
    }
    cut
}

/// A frame with only a valid L2 header of `l2_len` bytes (type bits `l2t`): hashed over the MAC
/// pair, [`ptype::MALFORMED`] when `malformed`.
#[inline(always)]
fn fast_l2_only<const N: usize, S: Sink>(
    h: &[u8; N],
    l2t: u32,
    l2_len: u16,
    malformed: bool,
    c: &mut Classified,
    sink: &mut S,
) {
    // The MAC pair in RSS order (source, destination): its first 8 bytes from two loads, a
    // shift and an OR rather than byte copies.
    let src = u64::from_le_bytes(*sub(h, 4)) >> 16;
    let dst01 = u64::from(u16::from_le_bytes(*sub(h, 0)));
    let mut mac = [0u8; 12];
    mac[..8].copy_from_slice(&(src | dst01 << 48).to_le_bytes());
    mac[8..].copy_from_slice(sub::<N, 4>(h, 2));
    let hash = sink.input::<12>(&mac);
    let ptype = if malformed { l2t | ptype::MALFORMED } else { l2t };
    c.set_outer(ptype, hash, l2_len, 0, 0);
}

/// Byte patterns for [`Pattern16`]: `want` and `mask` from `(offset from byte 12, want, mask)`
/// triples.
const fn pattern(fields: &[(usize, u8, u8)]) -> Pattern16 {
    let mut p = Pattern16 { want: [0; 16], mask: [0; 16] };
    let mut i = 0;
    while i < fields.len() {
        let (o, want, mask) = fields[i];
        p.want[o] = want & mask;
        p.mask[o] = mask;
        i += 1;
    }
    p
}

/// Untagged IPv4 without options, not a fragment: EtherType 0x0800, version 4 and IHL 5, and
/// MF and the fragment offset clear (bytes 20–21 but the reserved and DF bits).
const SHAPE_V4: Pattern16 = pattern(&[(0, 0x08, 0xff), (1, 0x00, 0xff), (2, 0x45, 0xff), (8, 0, 0x3f), (9, 0, 0xff)]);
/// Untagged IPv6: EtherType 0x86dd and version 6.
const SHAPE_V6: Pattern16 = pattern(&[(0, 0x86, 0xff), (1, 0xdd, 0xff), (2, 0x60, 0xf0)]);
/// IPv4 as [`SHAPE_V4`] behind one 802.1Q tag (any TCI).
const SHAPE_VLAN_V4: Pattern16 = pattern(&[
    (0, 0x81, 0xff),
    (1, 0x00, 0xff),
    (4, 0x08, 0xff),
    (5, 0x00, 0xff),
    (6, 0x45, 0xff),
    (12, 0, 0x3f),
    (13, 0, 0xff),
]);

/// The fast path of [`parse_into`] for a frame of at least 60 bytes (the Ethernet minimum;
/// `h` is their fixed-size view): false (with nothing written) when the frame is not one of
/// the common shapes.
///
/// The L2/L3 shape is screened first by matching the 16 bytes from the EtherType against
/// whole-header patterns ([`Pattern16`]: EtherType, IP version and IHL, fragment bits at
/// once; one vector compare on the SIMD implementations) — untagged IPv4, untagged IPv6,
/// 802.1Q-tagged IPv4 — and the field-by-field tests run only for the frames that match none.
///
/// With that view (78 bytes for IPv6) and the L2 length a const parameter, every header read
/// is at a constant offset into an array: no per-field bounds checks and nothing that can
/// panic.
#[inline(always)]
fn parse_fast<S: Sink>(d: &[u8], h: &[u8; 60], c: &mut Classified, sink: &mut S) -> bool {
    if !S::SCREEN {
        return parse_fast_fields(d, h, c, sink);
    }
    if S::matches(h, &SHAPE_V4) {
        return fast_v4_plain::<14, S>(d.len(), h, ptype::L2_ETHER, c, sink);
    }
    if S::matches(h, &SHAPE_V6) {
        return fast_v6::<14, S>(d, ptype::L2_ETHER, c, sink);
    }
    if S::matches(h, &SHAPE_VLAN_V4) {
        return fast_v4_plain::<18, S>(d.len(), h, ptype::L2_ETHER_VLAN, c, sink);
    }
    parse_fast_rest(d, h, c, sink)
}

// Ethertypes as they lie in memory (compared without a byte swap).
const RAW_IPV4: u16 = ETH_P_IPV4.to_be();
const RAW_IPV6: u16 = ETH_P_IPV6.to_be();
const RAW_VLAN: u16 = ETH_P_8021Q.to_be();
const RAW_ARP: u16 = ETH_P_ARP.to_be();

/// [`parse_fast`] field by field, for the sinks that do not screen ([`Sink::SCREEN`]).
#[inline(always)]
fn parse_fast_fields<S: Sink>(d: &[u8], h: &[u8; 60], c: &mut Classified, sink: &mut S) -> bool {
    let raw = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
    // Untagged IPv4 first, on its own: one compare with memory and a branch. (As one `match`
    // on the ethertype, LLVM built a balanced tree of the four types: two compares for each.)
    if raw(12) == RAW_IPV4 {
        return fast_v4::<14, S>(d.len(), h, ptype::L2_ETHER, c, sink);
    }
    // Then untagged IPv6: the ethertype and the version nibble (bytes 12–14, little-endian)
    // in one masked 32-bit compare. Being a different value from the ethertype above, it also
    // keeps LLVM from merging the tests back into one tree.
    const V6_MASK: u32 = 0x00f0_ffff;
    const V6_WANT: u32 = u32::from_le_bytes([ETH_P_IPV6.to_be_bytes()[0], ETH_P_IPV6.to_be_bytes()[1], 0x60, 0]);
    if u32::from_le_bytes(*sub(h, 12)) & V6_MASK == V6_WANT {
        return fast_v6::<14, S>(d, ptype::L2_ETHER, c, sink);
    }
    match raw(12) {
        RAW_VLAN => match raw(16) {
            RAW_IPV4 => fast_v4::<18, S>(d.len(), h, ptype::L2_ETHER_VLAN, c, sink),
            RAW_IPV6 if h[18] >> 4 == 6 => fast_v6::<18, S>(d, ptype::L2_ETHER_VLAN, c, sink),
            _ => false,
        },
        RAW_ARP => {
            // Rarer than tagged IP: marked cold so that LLVM tests VLAN first.
            cold();
            fast_l2_only(h, ptype::L2_ETHER_ARP, 14, false, c, sink);
            true
        }
        // Anything else, untagged IPv6 of another version included: the general parser.
        _ => false,
    }
}

/// The frames of at least 60 bytes that matched none of [`parse_fast`]'s shapes: IPv4 with
/// options, a fragment or an invalid version/IHL (untagged or tagged), tagged IPv6, ARP;
/// false for anything else.
#[inline(always)]
fn parse_fast_rest<S: Sink>(d: &[u8], h: &[u8; 60], c: &mut Classified, sink: &mut S) -> bool {
    let raw = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
    match raw(12) {
        RAW_IPV4 => fast_v4::<14, S>(d.len(), h, ptype::L2_ETHER, c, sink),
        RAW_VLAN => match raw(16) {
            RAW_IPV4 => fast_v4::<18, S>(d.len(), h, ptype::L2_ETHER_VLAN, c, sink),
            RAW_IPV6 if h[18] >> 4 == 6 => fast_v6::<18, S>(d, ptype::L2_ETHER_VLAN, c, sink),
            _ => false,
        },
        RAW_ARP => {
            fast_l2_only(h, ptype::L2_ETHER_ARP, 14, false, c, sink);
            true
        }
        // Anything else, untagged IPv6 of another version included: the general parser.
        _ => false,
    }
}

/// Marks the branch calling it as unlikely (`core::hint::cold_path` is newer than the MSRV).
#[cold]
#[inline]
fn cold() {}

#[inline(always)]
fn be16a<const N: usize>(h: &[u8; N], o: usize) -> u16 {
    u16::from_be_bytes([h[o], h[o + 1]])
}

/// What [`fast_l4`] calls on success with the L4 type bits and header length.
trait L4Done {
    fn done(self, l4t: u32, l4_len: u16);
}

/// [`L4Done`] for the fast paths: hashes the `N` key bytes at `key_at` in `h` and writes the
/// record. A struct with an always-inlined method rather than a closure: LLVM kept the
/// IPv6/TCP closure out of line in the portable build (a call per packet).
struct Record<'a, const M: usize, const N: usize, S> {
    h: &'a [u8; M],
    key_at: usize,
    sink: &'a mut S,
    c: &'a mut Classified,
    ptype: u32,
    l2_len: u16,
    l3_len: u16,
}

impl<const M: usize, const N: usize, S: Sink> L4Done for Record<'_, M, N, S> {
    #[inline(always)]
    fn done(self, l4t: u32, l4_len: u16) {
        let hash = self.sink.input::<N>(sub(self.h, self.key_at));
        self.c.set_outer(self.ptype | l4t, hash, self.l2_len, self.l3_len, l4_len);
    }
}

/// TCP or non-VXLAN UDP at `L4` inside `h` whose IP payload (L4 header and data) is `room`
/// bytes, `room >= 8`: calls `done.done(ptype bits, header length)` and returns true, or returns
/// false.
///
/// `done` is called in each protocol's arm, so that each gets its own copy of the hashing and
/// the record write, with the type bits and (for UDP) the header length as constants, rather
/// than one copy fed by both arms.
///
/// Every range check is one unsigned compare: the fast path may decline more than the
/// general parser does (a declined frame just takes the slow path), never less.
#[inline(always)]
fn fast_l4<const N: usize, const L4: usize>(h: &[u8; N], proto: u8, room: usize, done: impl L4Done) -> bool {
    match proto {
        IPPROTO_UDP => {
            // 8 <= UDP length <= room, and not VXLAN.
            let ulen = be16a(h, L4 + 4) as usize;
            if ulen.wrapping_sub(8) > room - 8 || be16a(h, L4 + 2) == super::VXLAN_PORT {
                return false;
            }
            done.done(ptype::L4_UDP, 8);
            true
        }
        IPPROTO_TCP => {
            // 20 <= data offset <= room.
            let doff = (h[L4 + 12] >> 4) as usize * 4;
            if doff < 20 || doff > room {
                return false;
            }
            done.done(ptype::L4_TCP, doff as u16);
            true
        }
        _ => false,
    }
}

/// IPv4 at `L2`, any header: version 4 with IHL 5 and not a fragment is
/// [`fast_v4_plain`]; options or a fragment go to the general parser; an invalid version or
/// IHL leaves only L2 valid.
#[inline(always)]
fn fast_v4<const L2: usize, S: Sink>(len: usize, h: &[u8; 60], l2t: u32, c: &mut Classified, sink: &mut S) -> bool {
    // Version 4 and IHL 5 (byte 0), then no fragment: MF clear and offset 0 (bytes 6 and 7
    // but the reserved and DF bits, one masked little-endian 16-bit test).
    if h[L2] != 0x45 {
        cold();
        // Version 4 with IHL > 5 (options, 0x46..=0x4f): the general parser. Anything else
        // (not version 4, or IHL < 5; the header is inside the 60 bytes) is an invalid IPv4
        // header, so only L2 is valid, as the general parser reports it.
        if (0x46..=0x4f).contains(&h[L2]) {
            return false;
        }
        fast_l2_only(h, l2t, L2 as u16, true, c, sink);
        return true;
    }
    if u16::from_le_bytes(*sub(h, L2 + 6)) & 0xff3f != 0 {
        return false;
    }
    fast_v4_plain::<{ L2 }, S>(len, h, l2t, c, sink)
}

/// IPv4 at `L2` whose version/IHL (0x45) and fragment bits (none) the caller checked.
#[inline(always)]
fn fast_v4_plain<const L2: usize, S: Sink>(
    len: usize,
    h: &[u8; 60],
    l2t: u32,
    c: &mut Classified,
    sink: &mut S,
) -> bool {
    // The total length is a load of its own (with `movbe` where available).
    let tot = be16a(h, L2 + 2) as usize;
    // 28 <= total length <= what the frame holds (len >= 60, so no underflow).
    if tot.wrapping_sub(28) > len - L2 - 28 {
        return false;
    }
    let proto = h[L2 + 9];
    // Source, destination address and the ports: 12 contiguous bytes in RSS order.
    let done =
        Record::<60, 12, S> { h, key_at: L2 + 12, sink, c, ptype: l2t | ptype::L3_IPV4, l2_len: L2 as u16, l3_len: 20 };
    match L2 {
        14 => fast_l4::<60, 34>(h, proto, tot - 20, done),
        _ => fast_l4::<60, 38>(h, proto, tot - 20, done),
    }
}

/// IPv6 at `L2` (its version already checked by the caller).
#[inline(always)]
fn fast_v6<const L2: usize, S: Sink>(d: &[u8], l2t: u32, c: &mut Classified, sink: &mut S) -> bool {
    let Some(h) = d.first_chunk::<78>() else {
        return false;
    };
    // 8 <= payload length <= what the frame holds (len >= 78, so no underflow).
    let plen = be16a(h, L2 + 4) as usize;
    if plen.wrapping_sub(8) > d.len() - L2 - 48 {
        return false;
    }
    let proto = h[L2 + 6];
    // Source, destination address and the ports: 36 contiguous bytes in RSS order.
    let done =
        Record::<78, 36, S> { h, key_at: L2 + 8, sink, c, ptype: l2t | ptype::L3_IPV6, l2_len: L2 as u16, l3_len: 40 };
    match L2 {
        14 => fast_l4::<78, 54>(h, proto, plen, done),
        _ => fast_l4::<78, 58>(h, proto, plen, done),
    }
}

/// The key [`parse`] hashed for the frame `d` that yielded `c`, read back from the packet at
/// the offsets in `c` (the L3 header is parsed again; nothing else is).
pub(crate) fn key_of(c: &Classified, d: &[u8]) -> FlowKey {
    let (v4, v6, off) = if c.inner_key {
        let Some(o) = c.inner_offset() else {
            return FlowKey::default();
        };
        let l3 = c.ptype & ptype::INNER_L3_MASK;
        (
            l3 == ptype::INNER_L3_IPV4 || l3 == ptype::INNER_L3_IPV4_EXT,
            l3 == ptype::INNER_L3_IPV6 || l3 == ptype::INNER_L3_IPV6_EXT,
            o + c.inner_l2_len as usize,
        )
    } else {
        let l3 = c.ptype & ptype::L3_MASK;
        (
            l3 == ptype::L3_IPV4 || l3 == ptype::L3_IPV4_EXT,
            l3 == ptype::L3_IPV6 || l3 == ptype::L3_IPV6_EXT,
            c.l3_offset(),
        )
    };
    // The L3 header was valid within its bounds (the frame, or the UDP datagram of a VXLAN
    // packet), so it is valid within the whole frame too and parses to the same key.
    if v4 {
        return parse_ipv4(d, off, d.len()).key;
    }
    if v6 {
        return parse_ipv6(d, off, d.len()).key;
    }
    let mut key = FlowKey::default();
    if c.ptype & ptype::L2_MASK != 0 {
        key.kind = KeyKind::Mac;
        copy_to(&mut key.dst, d, 0, 6);
        copy_to(&mut key.src, d, 6, 6);
    }
    key
}

/// Parses one frame: the record (hash left 0) and the key to hash.
#[inline(always)]
pub(crate) fn parse(d: &[u8], hash_inner: bool) -> (Classified, FlowKey) {
    let mut c = Classified::default();
    let mut key = FlowKey::default();
    let end = d.len();
    let Some(l2) = parse_l2(d, 0, end) else {
        c.ptype = ptype::MALFORMED;
        return (c, key);
    };
    c.ptype = l2_bits(l2.kind, false);
    c.l2_len = l2.len as u16;
    key.kind = KeyKind::Mac;
    copy_to(&mut key.dst, d, 0, 6);
    copy_to(&mut key.src, d, 6, 6);
    if l2.malformed {
        c.ptype |= ptype::MALFORMED;
        return (c, key);
    }
    let ip = parse_ip(d, l2.len, l2.ethertype, end);
    if ip.malformed {
        c.ptype |= ptype::MALFORMED;
    }
    if ip.l3 == L3Kind::None {
        return (c, key);
    }
    c.ptype |= l3_bits(ip.l3, false) | l4_bits(ip.l4);
    c.l3_len = ip.l3_len as u16;
    c.l4_len = ip.l4_len as u16;
    key = ip.key;

    // VXLAN: UDP to 4789 with room for the VXLAN header and the I flag set.
    if ip.l4 != L4Kind::Udp || ip.key.dport != super::VXLAN_PORT {
        return (c, key);
    }
    let vx = ip.udp_payload;
    let vend = ip.udp_end;
    if vx + 8 > vend || byte(d, vx) & 0x08 == 0 {
        return (c, key);
    }
    c.ptype |= ptype::TUNNEL_VXLAN;
    let Some(il2) = parse_l2(d, vx + 8, vend) else {
        c.ptype |= ptype::MALFORMED;
        return (c, key);
    };
    c.ptype |= l2_bits(il2.kind, true);
    c.inner_l2_len = il2.len as u16;
    if il2.malformed {
        c.ptype |= ptype::MALFORMED;
        return (c, key);
    }
    let iip = parse_ip(d, vx + 8 + il2.len, il2.ethertype, vend);
    if iip.malformed {
        c.ptype |= ptype::MALFORMED;
    }
    if iip.l3 == L3Kind::None {
        return (c, key);
    }
    c.ptype |= l3_bits(iip.l3, true) | (l4_bits(iip.l4) << 16);
    c.inner_l3_len = iip.l3_len as u16;
    c.inner_l4_len = iip.l4_len as u16;
    if hash_inner {
        key = iip.key;
        c.inner_key = true;
    }
    (c, key)
}

/// The L2 layer alone, for [`super::Level::L2`]: the L2 packet type bits (with
/// [`ptype::MALFORMED`] when the frame is shorter than an Ethernet header or a VLAN tag is cut
/// short) and the L2 length, as [`parse`] reports them.
#[inline(always)]
pub(crate) fn parse_l2_only(d: &[u8]) -> (u32, u16) {
    match parse_l2(d, 0, d.len()) {
        None => (ptype::MALFORMED, 0),
        Some(l2) => {
            let bad = if l2.malformed { ptype::MALFORMED } else { 0 };
            (l2_bits(l2.kind, false) | bad, l2.len as u16)
        }
    }
}
