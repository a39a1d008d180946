//! DPDK l3fwd as a [`Forward`] stage: IPv4/IPv6 routing by longest-prefix match or exact
//! match, with RFC 1812 checks, TTL/hop-limit decrement and next-hop MAC rewrite.
//!
//! Per burst, in chunks of 64 packets, each packet classified by the lcore beforehand
//! (packet type through L3 and the L2 length in its metadata, [`Level::L3`](crate::classify::Level::L3)):
//! 1. every packet is dispatched on its packet type (Ethernet, up to two VLAN tags which are
//!    kept, then IPv4, IPv6 or ARP). Four IPv4 packets without options in a row are checked
//!    together (`x4`: the four header checksums summed at once, with NEON on aarch64, as
//!    DPDK's `l3fwd_lpm_neon.h` steps four packets). IPv4 gets the RFC 1812 §5.2.2 checks — frame long enough, version
//!    4, IHL ≥ 5, total length between IHL·4 and the frame length ([`DropReason::Malformed`]),
//!    header checksum ([`DropReason::BadChecksum`]) — then TTL ≤ 1 is
//!    [`DropReason::TtlExpired`], else the TTL is decremented with an RFC 1624 incremental
//!    checksum update. IPv6: length, version and payload length, then hop limit ≤ 1 →
//!    `TtlExpired`, else decremented (IPv6 has no header checksum). ARP requests and IPv6
//!    neighbor solicitations for one of the addresses configured on the receiving port
//!    ([`L3Fwd::add_addr`]) are turned into the reply in place and sent back out of that port,
//!    so real neighbors can resolve the VNF. Other non-IP frames are
//!    [`DropReason::Filtered`];
//! 2. the destination addresses of the chunk go through one burst lookup
//!    ([`Lpm4::lookup_bulk`](crate::lpm::Lpm4::lookup_bulk) / [`Lpm6::lookup_bulk`](crate::lpm::Lpm6::lookup_bulk), or [`EmTable::lookup_bulk`](crate::lpm::EmTable::lookup_bulk) on the
//!    5-tuples); a miss goes to the default port when one is set, else
//!    [`DropReason::NoRoute`];
//! 3. routed packets get the destination MAC of their output port (`--eth-dest`, by default
//!    `02:00:00:00:00:<port>` as in DPDK) and the port's own MAC as source, and go to the
//!    port's tx buffer.
//!
//! A chunk whose packets are all IPv4 without options (the classifier's packet type), the
//! common case of a router, takes a shorter path with the same outcomes, as DPDK's
//! `l3fwd_lpm_sse.h` does: no dispatch and no index arrays, and each step of four packets
//! checked, looked up ([`Lpm4::lookup_x4`](crate::lpm::Lpm4::lookup_x4)) and rewritten at
//! once, while their lines are in the cache, with one-byte outcomes ([`Verdict`]) at the
//! packets' own indexes that [`Tx::send_each`] then follows.
//!
//! Nothing allocates per packet or per burst: the scratch arrays live in the stage, built once.
//!
//! The files: the stage and its loop here; `tables` (route tables, reload, build progress),
//! `rfc1812` (the IPv4/IPv6 checks and TTL decrement), `neigh` (ARP and neighbor discovery
//! replies), `x4`, `sse2` and `neon` (the four-packet IPv4 step).
//!
//! # Route reload without stopping
//! The tables ([`L3FwdTables`]) are immutable and shared through an `Arc`. A [`TableHandle`]
//! holds the current one in an [`ArcSwap`](arc_swap::ArcSwap) slot with a generation counter; each lcore's
//! [`L3Fwd`] keeps its own `Arc` and compares generations in
//! [`Forward::housekeeping`] (every 4096 loop iterations), picking up a table that was built
//! aside and [`TableHandle::swap`]ped in. The old table is freed when the last lcore lets go
//! of it. A lookup never takes a lock or touches a shared reference count.
//!
//! Building a big table takes a while (reading and parsing a million-line file, then the
//! LPM build), so a VNF builds it on a thread of its own with
//! [`L3FwdTables::from_files_with_progress`]: a [`BuildProgress`] shows the stage and the
//! routes parsed so far to the control thread, and lets it cancel the build.

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::fwd::MacRewrite;
use crate::lpm::{EmKey, Ipv4FiveTuple, Ipv6FiveTuple, MISS};
use crate::port::MacAddr;
use crate::stage::{DropReason, Forward, Tx, Verdict};
use crate::wire::{EtherType, Ipv4Packet, Ipv6Packet, UdpPacket};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

mod neigh;
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon;
mod rfc1812;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2;
mod tables;
mod x4;

pub(crate) use neigh::{arp_reply, ArpOwner};
use neigh::{ndp_reply, ndp_solicit};
pub use rfc1812::{ipv4_check, ipv4_check_and_decrement, ipv6_check_and_decrement};
pub use tables::{BuildProgress, BuildStage, L3FwdTables, Lookup, TableError, TableHandle};

/// Packets per processing chunk (the scratch arrays' size).
const CHUNK: usize = 64;
/// How many packets ahead to prefetch.
const PREFETCH_OFFSET: usize = 4;
/// What becomes of one packet: sent on a port, or dropped for a reason.
type Outcome = Result<u16, DropReason>;
/// The fast path's mark of a packet that passed the checks (any port: routing replaces
/// it).
const PASS: Verdict = Verdict::port(0);

/// Per-chunk scratch arrays, allocated once per stage.
#[derive(Clone)]
struct Scratch {
    outs: [Outcome; CHUNK],
    /// The fast path's outcomes of the checks: a drop, or [`PASS`] (to be routed).
    verdicts: [Verdict; CHUNK],
    idx4: [u8; CHUNK],
    dst4: [u32; CHUNK],
    hash4: [u32; CHUNK],
    key4: [Ipv4FiveTuple; CHUNK],
    nh4: [u32; CHUNK],
    idx6: [u8; CHUNK],
    dst6: [[u8; 16]; CHUNK],
    hash6: [u32; CHUNK],
    key6: [Ipv6FiveTuple; CHUNK],
    nh6: [u32; CHUNK],
}

impl Scratch {
    fn boxed() -> Box<Self> {
        Box::new(Scratch {
            outs: [Err(DropReason::Filtered); CHUNK],
            verdicts: [PASS; CHUNK],
            idx4: [0; CHUNK],
            dst4: [0; CHUNK],
            hash4: [0; CHUNK],
            key4: [Ipv4FiveTuple::default(); CHUNK],
            nh4: [0; CHUNK],
            idx6: [0; CHUNK],
            dst6: [[0; 16]; CHUNK],
            hash6: [0; CHUNK],
            key6: [Ipv6FiveTuple::default(); CHUNK],
            nh6: [0; CHUNK],
        })
    }
}

impl Scratch {
    /// The IPv4 burst lookup of keys `from..to` (addresses for LPM, hashes and 5-tuples for
    /// EM) into `nh4[from..to]`; every key misses when the table has no IPv4 side.
    #[inline(always)]
    fn lookup4(&mut self, t: &L3FwdTables, from: usize, to: usize) {
        let Some(nh) = self.nh4.get_mut(from..to) else { return };
        match (t.lookup == Lookup::Em, &t.lpm4, &t.em4) {
            (false, Some(l), _) => {
                l.lookup_bulk(&self.dst4[from..to], nh);
            }
            (true, _, Some(e)) => {
                e.lookup_bulk(&self.hash4[from..to], &self.key4[from..to], nh);
            }
            _ => nh.fill(MISS),
        }
    }
}

/// Per-port configuration of the stage (MACs, own addresses, limits).
#[derive(Debug, Clone)]
struct PortConf {
    /// Destination + source MAC written per output port.
    rewrite: MacRewrite,
    /// Own addresses, answered by ARP / neighbor advertisement on that port.
    addrs4: Vec<(u16, [u8; 4])>,
    addrs6: Vec<(u16, [u8; 16])>,
    default_port: Option<u16>,
    max_pkt_len: usize,
    /// Tests: every chunk through the general path, as the oracle of [`L3Fwd::forward_v4`].
    #[cfg(test)]
    general_only: bool,
}

impl PortConf {
    fn mac(&self, port: u16) -> [u8; 6] {
        self.rewrite.port_mac(port)
    }

    /// The output port for lookup result `nh` (a miss goes to the default port, if any),
    /// with the packet's MACs rewritten for it.
    #[inline(always)]
    fn route<B: PacketBuf>(&self, nh: u32, pkt: &mut B) -> Verdict {
        // A next hop that is a port with a rewrite, the common case, in one compare.
        let (out, r) = match self.rewrite.get_wide(nh) {
            Some(r) => (nh as u16, r),
            None => {
                let out = match (nh, self.default_port) {
                    (MISS, Some(p)) => p,
                    (MISS, None) => return Verdict::drop(DropReason::NoRoute),
                    (p, _) => match u16::try_from(p) {
                        Ok(p) => p,
                        Err(_) => return Verdict::drop(DropReason::NoTxPort),
                    },
                };
                match self.rewrite.get(out) {
                    Some(r) => (out, r),
                    None => return Verdict::drop(DropReason::NoTxPort),
                }
            }
        };
        match pkt.data_mut().get_mut(..12) {
            Some(h) => {
                h.copy_from_slice(r);
                Verdict::port(out)
            }
            None => Verdict::drop(DropReason::Malformed),
        }
    }
}

/// What pass 1 decided for one packet.
enum Step {
    V4,
    V6,
    Out(Outcome),
}

/// DPDK l3fwd's forwarding stage. See the [module docs](self).
#[derive(Clone)]
pub struct L3Fwd {
    tables: Arc<L3FwdTables>,
    handle: Option<TableHandle>,
    gen: u64,
    conf: PortConf,
    scratch: Box<Scratch>,
}

impl fmt::Debug for L3Fwd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L3Fwd").field("tables", &self.tables).field("gen", &self.gen).field("conf", &self.conf).finish()
    }
}

impl L3Fwd {
    /// A stage routing with the current tables of `handle` and following its swaps.
    pub fn new(handle: &TableHandle) -> Self {
        let mut s = Self::with_tables(handle.current());
        s.gen = handle.generation();
        s.handle = Some(handle.clone());
        s
    }

    /// A stage routing with fixed `tables`.
    pub fn with_tables(tables: Arc<L3FwdTables>) -> Self {
        L3Fwd {
            tables,
            handle: None,
            gen: 0,
            conf: PortConf {
                rewrite: MacRewrite::new(),
                addrs4: vec![],
                addrs6: vec![],
                default_port: None,
                max_pkt_len: usize::MAX,
                #[cfg(test)]
                general_only: false,
            },
            scratch: Scratch::boxed(),
        }
    }

    /// Sets port `port`'s own MAC (the source of routed packets and of ARP/ND replies).
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.conf.rewrite.set_port_mac(port, mac);
        self
    }

    /// Sets the next-hop MAC for packets routed out of `port` (`--eth-dest`).
    pub fn set_eth_dest(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.conf.rewrite.set_eth_dest(port, mac);
        self
    }

    /// Sends route misses to `port` instead of dropping them as `NoRoute`.
    pub fn set_default_port(&mut self, port: Option<u16>) -> &mut Self {
        self.conf.default_port = port;
        self
    }

    /// Drops frames longer than `len` bytes as `TooLong` (`--max-pkt-len`).
    pub fn set_max_pkt_len(&mut self, len: Option<usize>) -> &mut Self {
        self.conf.max_pkt_len = len.unwrap_or(usize::MAX);
        self
    }

    /// Gives port `port` the address `addr`: ARP requests (IPv4) or neighbor solicitations
    /// (IPv6) for it arriving on that port are answered.
    pub fn add_addr(&mut self, port: u16, addr: IpAddr) -> &mut Self {
        match addr {
            IpAddr::V4(a) => self.conf.addrs4.push((port, a.octets())),
            IpAddr::V6(a) => self.conf.addrs6.push((port, a.octets())),
        }
        self
    }

    /// The generation of the tables in use.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// True when every packet of the chunk is IPv4 without options by the classifier's packet
    /// type and not longer than `--max-pkt-len`: the chunk takes [`L3Fwd::forward_v4`].
    #[inline(always)]
    fn all_plain_v4<B: PacketBuf>(conf: &PortConf, pkts: &[B]) -> bool {
        use crate::classify::ptype;
        #[cfg(test)]
        if conf.general_only {
            return false;
        }
        let v4 = |m: &B| m.ptype() & ptype::L3_MASK == ptype::L3_IPV4;
        if conf.max_pkt_len == usize::MAX {
            // No --max-pkt-len: the packet type alone (no length to read).
            pkts.iter().fold(true, |ok, m| ok & v4(m))
        } else {
            pkts.iter().fold(true, |ok, m| ok & v4(m) & (m.len() <= conf.max_pkt_len))
        }
    }

    /// The common case of a router, a chunk of `n` packets that are all IPv4 without options
    /// ([`L3Fwd::all_plain_v4`]), without the index arrays: per step of four packets (the
    /// tail one by one), the checks (`x4`) with each packet's verdict and key written at its
    /// own index, the step's lookup (the keys of dropped packets are looked up too and their
    /// answers ignored) and the routing (output port and MAC rewrite) of the packets that
    /// passed; then [`Tx::send_each`] hands each packet to its port's tx buffer by its
    /// verdict. Outcomes, bytes and order are those of the general path (the tests run both).
    #[inline(always)]
    fn forward_v4<B: PacketBuf>(
        t: &L3FwdTables,
        conf: &PortConf,
        s: &mut Scratch,
        pkts: &mut Burst<B>,
        n: usize,
        tx: &mut Tx<B>,
    ) {
        let em = t.lookup == Lookup::Em;
        let lpm = if em { None } else { t.lpm4.as_ref() };
        debug_assert!(n <= CHUNK, "a step's slots are within the scratch arrays");
        let n = n.min(pkts.len());
        let mut i = 0;
        // Four at a time, the tail one by one with the full checks (as is a step that found
        // no header, should the metadata ever be wrong).
        while i < n {
            let stepped = if i + 4 <= n {
                if let Some(next) = pkts[..n].get(i + PREFETCH_OFFSET..i + PREFETCH_OFFSET + 4) {
                    next.iter().for_each(B::prefetch);
                }
                x4::step(&mut pkts[i..n], &mut s.verdicts[i..], &mut s.dst4[i..])
            } else {
                false
            };
            let k = if stepped {
                4
            } else {
                let m = &mut pkts[i];
                let l3 = usize::from(m.l2_len());
                let o = match m.data_mut().get_mut(l3..) {
                    Some(h) => ipv4_check_and_decrement(h).map(|()| u32::from_be_bytes([h[16], h[17], h[18], h[19]])),
                    None => Err(DropReason::Malformed),
                };
                (s.verdicts[i], s.dst4[i]) = pass_or_drop(o);
                1
            };
            if em {
                // Only routed packets get a key; a dropped one keeps an older key, whose
                // answer is ignored.
                for j in i..i + k {
                    if !s.verdicts[j].is_drop() {
                        let m = &pkts[j];
                        let key = key4(&m.data()[usize::from(m.l2_len())..]);
                        s.hash4[j] = key.flow_hash();
                        s.key4[j] = key;
                    }
                }
            }
            // The step's lookups and rewrites at once, while its packets' lines are in the
            // cache (as DPDK's `processx4_step2/3`); in callgrind's cache simulation a later
            // pass over the chunk found them evicted by the other packets' and the table's.
            match (lpm, s.dst4.get(i..i + 4), s.nh4.get_mut(i..i + 4)) {
                (Some(l), Some(&[a, b, c, d]), Some(nh)) if k == 4 => nh.copy_from_slice(&l.lookup_x4([a, b, c, d])),
                _ => s.lookup4(t, i, i + k),
            }
            if let (Some(vs), Some(nhs), Some(ms)) =
                (s.verdicts.get_mut(i..i + k), s.nh4.get(i..i + k), pkts.get_mut(i..i + k))
            {
                for ((v, &nh), m) in vs.iter_mut().zip(nhs).zip(ms) {
                    if !v.is_drop() {
                        *v = conf.route(nh, m);
                    }
                }
            }
            i += k;
        }
        let vs = &s.verdicts[..n];
        tx.send_each(pkts, n, |i, _| vs[i]);
    }

    /// Pass 1 for one packet: checks, TTL decrement, ARP/ND replies.
    #[inline(always)]
    fn classify_one<B: PacketBuf>(conf: &PortConf, rx_port: u16, pkt: &mut B) -> (Step, usize) {
        if pkt.len() > conf.max_pkt_len {
            return (Step::Out(Err(DropReason::TooLong)), 0);
        }
        let Some((l3, et)) = l3_of(pkt) else {
            return (Step::Out(Err(DropReason::Malformed)), 0);
        };
        let step = match EtherType::from(et) {
            EtherType::Ipv4 => match ipv4_check_and_decrement(&mut pkt.data_mut()[l3..]) {
                Ok(()) => Step::V4,
                Err(r) => Step::Out(Err(r)),
            },
            EtherType::Ipv6 => {
                let ns = if conf.addrs6.is_empty() { None } else { ndp_solicit(conf, rx_port, pkt.data(), l3) };
                match ns {
                    Some((target, src)) => Step::Out(if ndp_reply(conf, rx_port, pkt, l3, target, src) {
                        Ok(rx_port)
                    } else {
                        Err(DropReason::Malformed)
                    }),
                    None => match ipv6_check_and_decrement(&mut pkt.data_mut()[l3..]) {
                        Ok(()) => Step::V6,
                        Err(r) => Step::Out(Err(r)),
                    },
                }
            }
            EtherType::Arp
                if arp_reply(ArpOwner::Addrs(&conf.addrs4), conf.mac(rx_port), rx_port, pkt.data_mut(), l3) =>
            {
                Step::Out(Ok(rx_port))
            }
            _ => Step::Out(Err(DropReason::Filtered)),
        };
        (step, l3)
    }
}

/// The L3 offset and the EtherType of what follows the L2 header(s), from the classifier's
/// metadata (the lcore classified the packet before the stage ran); `None` when the frame is
/// shorter than an Ethernet header or a VLAN tag is cut short.
///
/// IPv4, IPv6 and untagged ARP come from the packet type alone. Otherwise (no valid IP
/// header, tagged ARP, other protocols) the EtherType is the last two bytes of the L2 header
/// the classifier measured, so a stage tells a malformed IP header (checked again by the
/// stage, for the reason counter) from a protocol it does not handle.
#[inline(always)]
pub(crate) fn l3_of<B: PacketBuf>(pkt: &B) -> Option<(usize, u16)> {
    use crate::classify::ptype;
    use crate::wire::EtherType;
    let pt = pkt.ptype();
    let l3 = usize::from(pkt.l2_len());
    match pt & ptype::L3_MASK {
        ptype::L3_IPV4 | ptype::L3_IPV4_EXT => return Some((l3, u16::from(EtherType::Ipv4))),
        ptype::L3_IPV6 | ptype::L3_IPV6_EXT => return Some((l3, u16::from(EtherType::Ipv6))),
        _ => {}
    }
    match pt & ptype::L2_MASK {
        0 => return None,
        ptype::L2_ETHER_ARP => return Some((l3, u16::from(EtherType::Arp))),
        _ => {}
    }
    let et = pkt.data().get(l3.checked_sub(2)?..l3).map(|b| u16::from_be_bytes([b[0], b[1]]))?;
    // A tag the classifier stopped at: cut short (a third tag is a protocol not handled).
    if EtherType::from(et).is_vlan_tpid() && pt & ptype::MALFORMED != 0 {
        return None;
    }
    Some((l3, et))
}

/// The fast path's verdict and lookup key from a packet's checks: [`PASS`] and the
/// destination address, or the drop (key 0, looked up and ignored).
#[inline(always)]
fn pass_or_drop(o: Result<u32, DropReason>) -> (Verdict, u32) {
    match o {
        Ok(dst) => (PASS, dst),
        Err(r) => (Verdict::drop(r), 0),
    }
}

/// The EM key of an IPv4 packet (`h` from L3 on, already checked): ports for TCP, UDP and
/// SCTP when not a fragment, else zero.
#[inline(always)]
fn key4(h: &[u8]) -> Ipv4FiveTuple {
    let ip = Ipv4Packet::new_unchecked(h);
    let proto = u8::from(ip.next_header());
    let (sp, dp) = match h.get(ip.header_len()..) {
        Some(l4) if l4.len() >= 4 && matches!(proto, 6 | 17 | 132) && !ip.is_fragment() => {
            // TCP, UDP and SCTP all start with the two ports.
            let p = UdpPacket::new_unchecked(l4);
            (p.src_port(), p.dst_port())
        }
        _ => (0, 0),
    };
    Ipv4FiveTuple {
        src_ip: u32::from(ip.src_addr()),
        dst_ip: u32::from(ip.dst_addr()),
        src_port: sp,
        dst_port: dp,
        proto,
    }
}

/// The EM key of an IPv6 packet (`h` from L3 on, already checked).
#[inline(always)]
fn key6(h: &[u8]) -> Ipv6FiveTuple {
    let ip = Ipv6Packet::new_unchecked(h);
    let proto = u8::from(ip.next_header());
    let (sp, dp) = match h.get(40..) {
        Some(l4) if l4.len() >= 4 && matches!(proto, 6 | 17 | 132) => {
            let p = UdpPacket::new_unchecked(l4);
            (p.src_port(), p.dst_port())
        }
        _ => (0, 0),
    };
    Ipv6FiveTuple { src_port: sp, dst_port: dp, proto, src_ip: ip.src_addr().octets(), dst_ip: ip.dst_addr().octets() }
}

impl<B: PacketBuf> Forward<B> for L3Fwd {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::L3
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let t: &L3FwdTables = &self.tables;
        let conf = &self.conf;
        let s = &mut *self.scratch;
        let em = t.lookup == Lookup::Em;
        for p in pkts.iter().take(PREFETCH_OFFSET) {
            p.prefetch();
        }
        while !pkts.is_empty() {
            let n = pkts.len().min(CHUNK);
            if Self::all_plain_v4(conf, &pkts[..n]) {
                Self::forward_v4(t, conf, s, pkts, n, tx);
                continue;
            }
            let (mut n4, mut n6) = (0usize, 0usize);
            // Pass 1: check, decrement, answer ARP/ND; collect the lookup keys. Four IPv4
            // packets without options at a time when the classifier says so, else one.
            let mut i = 0;
            while i < n {
                if i + 4 <= n && x4::eligible(&pkts[i..n], conf.max_pkt_len) {
                    for p in pkts[..n].iter().skip(i + PREFETCH_OFFSET).take(4) {
                        p.prefetch();
                    }
                    let (mut v, mut d) = ([PASS; 4], [0u32; 4]);
                    if x4::step(&mut pkts[i..n], &mut v, &mut d) {
                        for (k, (v, dst)) in v.into_iter().zip(d).enumerate() {
                            match v.get() {
                                Err(e) => s.outs[i + k] = Err(e),
                                Ok(_) => {
                                    s.idx4[n4] = (i + k) as u8;
                                    if em {
                                        let l3 = usize::from(pkts[i + k].l2_len());
                                        let key = key4(&pkts[i + k].data()[l3..]);
                                        s.hash4[n4] = key.flow_hash();
                                        s.key4[n4] = key;
                                    } else {
                                        s.dst4[n4] = dst;
                                    }
                                    n4 += 1;
                                }
                            }
                        }
                        i += 4;
                        continue;
                    }
                }
                if let Some(p) = pkts.get(i + PREFETCH_OFFSET) {
                    p.prefetch();
                }
                let m = &mut pkts[i];
                let (step, l3) = Self::classify_one(conf, rx_port, m);
                match step {
                    Step::Out(o) => s.outs[i] = o,
                    Step::V4 => {
                        let h = &m.data()[l3..];
                        s.idx4[n4] = i as u8;
                        if em {
                            let k = key4(h);
                            s.hash4[n4] = k.flow_hash();
                            s.key4[n4] = k;
                        } else {
                            s.dst4[n4] = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
                        }
                        n4 += 1;
                    }
                    Step::V6 => {
                        let h = &m.data()[l3..];
                        s.idx6[n6] = i as u8;
                        if em {
                            let k = key6(h);
                            s.hash6[n6] = k.flow_hash();
                            s.key6[n6] = k;
                        } else {
                            s.dst6[n6].copy_from_slice(&h[24..40]);
                        }
                        n6 += 1;
                    }
                }
                i += 1;
            }
            // Pass 2: burst lookups.
            s.lookup4(t, 0, n4);
            let nh6 = &mut s.nh6[..n6];
            match (em, &t.lpm6, &t.em6) {
                (false, Some(l), _) => {
                    l.lookup_bulk(&s.dst6[..n6], nh6);
                }
                (true, _, Some(e)) => {
                    e.lookup_bulk(&s.hash6[..n6], &s.key6[..n6], nh6);
                }
                _ => nh6.fill(MISS),
            }
            // Pass 3: output port and MAC rewrite of the routed packets.
            for (&i, &nh) in
                s.idx4[..n4].iter().zip(s.nh4[..n4].iter()).chain(s.idx6[..n6].iter().zip(s.nh6[..n6].iter()))
            {
                let i = usize::from(i);
                s.outs[i] = conf.route(nh, &mut pkts[i]).get();
            }
            // Pass 4: hand each packet to its tx buffer or drop it.
            let mut i = 0;
            let outs = &s.outs;
            pkts.drain_front(n, |m| {
                let o = outs[i];
                i += 1;
                match o {
                    Ok(port) => tx.send(port, m),
                    Err(r) => tx.drop_pkt(m, r),
                }
            });
        }
    }

    fn housekeeping(&mut self) {
        if let Some(h) = &self.handle {
            let g = h.generation();
            if g != self.gen {
                self.tables = h.current();
                self.gen = g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
    use crate::port::TxQueue;
    use crate::stage::LcoreStats;
    use proptest::prelude::*;
    use std::sync::Mutex;

    /// What a tx queue was given: (port, frame bytes), in order.
    type Sent = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;

    struct Capture(u16, Sent);

    impl TxQueue for Capture {
        type Buf = Mbuf;
        fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
            let n = pkts.len();
            let mut g = self.1.lock().unwrap();
            pkts.drain_front(n, |m| g.push((self.0, m.data().to_vec())));
            n
        }
    }

    /// One frame of the differential test: an option-less IPv4/UDP packet (checksum valid or
    /// not, any TTL, optionally VLAN-tagged) or, in mixed chunks, something else.
    #[derive(Debug, Clone)]
    enum Frame {
        V4 { dst: [u8; 4], ttl: u8, good_sum: bool, vlan: bool, pad: usize },
        Other(Vec<u8>),
    }

    fn frame_bytes(f: &Frame) -> Vec<u8> {
        match f {
            Frame::Other(b) => b.clone(),
            Frame::V4 { dst, ttl, good_sum, vlan, pad } => {
                let mut e = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8];
                if *vlan {
                    e.extend_from_slice(&[0x81, 0, 0, 7]);
                }
                e.extend_from_slice(&[0x08, 0]);
                let total = 28u16;
                let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, *ttl, 17, 0, 0, 198, 18, 0, 1];
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h.extend_from_slice(dst);
                let c = crate::wire::checksum::checksum(&h);
                h[10..12].copy_from_slice(&(if *good_sum { c } else { c ^ 0x0101 }).to_be_bytes());
                e.extend_from_slice(&h);
                e.extend_from_slice(&[0x30, 0x39, 0, 9, 0, 8, 0, 0]);
                e.resize(e.len() + pad, 0);
                e
            }
        }
    }

    fn v4_frame() -> impl Strategy<Value = Frame> {
        let dst = prop::sample::select(vec![
            [198, 18, 0, 5],
            [198, 18, 1, 5],
            [198, 19, 2, 5],
            [198, 19, 3, 9],
            [203, 0, 113, 1],
        ]);
        (
            dst,
            prop::sample::select(vec![0u8, 1, 2, 64, 255]),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.2),
            0usize..40,
        )
            .prop_map(|(dst, ttl, good_sum, vlan, pad)| Frame::V4 { dst, ttl, good_sum, vlan, pad })
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            6 => v4_frame(),
            1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Frame::Other),
            1 => v4_frame().prop_map(|f| {
                // IPv4 with options, or IPv6/ARP by EtherType: not the fast path.
                let mut b = frame_bytes(&f);
                let et = if b[12] == 0x81 { 16 } else { 12 };
                b[et..et + 2].copy_from_slice(&[0x86, 0xdd]);
                Frame::Other(b)
            }),
        ]
    }

    /// Runs `frames` through an l3fwd stage (LPM or EM) as bursts of `burst`; returns what
    /// each tx queue got and the drop counters.
    fn run(
        frames: &[Frame],
        em: bool,
        default_port: Option<u16>,
        max_len: Option<usize>,
        burst: usize,
        general_only: bool,
    ) -> (Vec<(u16, Vec<u8>)>, Vec<u64>) {
        use crate::lpm::rules::{EmRoute4, Route4};
        use std::net::Ipv4Addr;
        let tables = if em {
            let key = |d: [u8; 4]| Ipv4FiveTuple {
                src_ip: u32::from(Ipv4Addr::new(198, 18, 0, 1)),
                dst_ip: u32::from(Ipv4Addr::from(d)),
                src_port: 12345,
                dst_port: 9,
                proto: 17,
            };
            let r = [([198, 18, 0, 5], 0), ([198, 18, 1, 5], 1), ([198, 19, 2, 5], 2), ([198, 19, 3, 9], 3)]
                .map(|(d, port)| EmRoute4 { key: key(d), port });
            L3FwdTables::from_em_routes(&r, &[]).unwrap()
        } else {
            let r = [
                ([198, 18, 0, 0], 24, 0),
                ([198, 18, 1, 0], 24, 1),
                ([198, 19, 0, 0], 16, 2),
                ([198, 19, 3, 0], 24, 3),
            ]
            .map(|(p, depth, next_hop)| Route4 { prefix: Ipv4Addr::from(p), depth, next_hop });
            L3FwdTables::from_lpm_routes(&r, &[]).unwrap()
        };
        let mut stage = L3Fwd::with_tables(Arc::new(tables));
        stage.set_default_port(default_port);
        stage.set_max_pkt_len(max_len);
        stage.set_eth_dest(1, MacAddr([2, 0xbb, 0, 0, 0, 1]));
        stage.set_port_mac(0, MacAddr([2, 0xaa, 0, 0, 0, 0]));
        stage.conf.general_only = general_only;
        let stats = Arc::new(LcoreStats::default());
        let mut tx: Tx<Mbuf> = Tx::new(stats.clone(), 32);
        let sent: Sent = Arc::default();
        // Port 3 has no tx queue (NoTxPort).
        for p in 0..3 {
            tx.attach(p, Box::new(Capture(p, sent.clone()))).unwrap();
        }
        let mut c = MempoolConfig::new("l3fwd-diff", 512);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        for chunk in frames.chunks(burst) {
            let mut b: Burst<Mbuf> = Burst::new();
            for f in chunk {
                let _ = b.push(Mbuf::from_slice(&pool, &frame_bytes(f)).unwrap());
            }
            crate::classify::classify_burst_l3(&mut b[..]);
            Forward::forward(&mut stage, 0, &mut b, &mut tx);
            assert!(b.is_empty());
        }
        tx.flush_all();
        let drops = stats.drops.iter().map(|c| c.get()).collect();
        let out = sent.lock().unwrap().clone();
        (out, drops)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// The all-IPv4 fast path (`forward_v4`) gives exactly the general path's output:
        /// bytes, ports, order and drop reasons, for LPM and EM, with and without a default
        /// port, for chunks that are all IPv4 and for mixed ones.
        #[test]
        fn fast_path_matches_the_general_path(
            all_v4 in proptest::collection::vec(v4_frame(), 1..140),
            mixed in proptest::collection::vec(any_frame(), 1..140),
            em in any::<bool>(),
            default_port in prop::option::of(0u16..4),
            max_len in prop::option::of(prop::sample::select(vec![50usize, 64, 80])),
            burst in prop::sample::select(vec![1usize, 3, 4, 7, 32, 64, 128]),
        ) {
            for frames in [&all_v4, &mixed] {
                let fast = run(frames, em, default_port, max_len, burst, false);
                let general = run(frames, em, default_port, max_len, burst, true);
                prop_assert_eq!(&fast, &general);
            }
            // Every frame is accounted for.
            let (out, drops) = run(&all_v4, em, default_port, max_len, burst, false);
            prop_assert_eq!(out.len() as u64 + drops.iter().sum::<u64>(), all_v4.len() as u64);
        }
    }

    /// The L3 offset and EtherType come from the classifier's metadata, VLAN tags skipped;
    /// a frame shorter than Ethernet or a tag cut short is `None`.
    #[test]
    fn l3_of_reads_the_classifier_metadata() {
        use crate::classify::classify_burst_l3;
        use crate::mbuf::{MemBacking, Mempool, MempoolConfig};
        let mut c = MempoolConfig::new("l3-of", 64);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let l3 = |f: &[u8]| {
            let mut m = [crate::mbuf::Mbuf::from_slice(&pool, f).unwrap()];
            classify_burst_l3(&mut m);
            l3_of(&m[0])
        };
        let mut f = vec![0u8; 34];
        f[12..16].copy_from_slice(&[0x08, 0x00, 0x45, 0]);
        f[16..18].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(l3(&f), Some((14, 0x0800)));
        let mut f = vec![0u8; 30];
        f[12..18].copy_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd]);
        assert_eq!(l3(&f), Some((18, 0x86dd)), "a bad IPv6 header still says IPv6");
        f[12..22].copy_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x06]);
        assert_eq!(l3(&f), Some((22, 0x0806)));
        f[12..14].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(l3(&f), Some((14, 0x1234)));
        f[12..22].copy_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x06]);
        assert_eq!(l3(&f[..13]), None);
        assert_eq!(l3(&f[..20]), None);
    }

    #[test]
    fn from_files_reports_line_numbers_and_handle_swaps() {
        let dir = std::env::temp_dir().join(format!("l3fwd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r4.cfg");
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/16 1\n").unwrap();
        let t = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap();
        assert_eq!(t.routes(), (2, 0));
        assert!(!t.has_ipv6());
        let h = TableHandle::new(t);
        assert_eq!(h.generation(), 0);
        // A syntax error, and a port the table refuses: both name line 4.
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/33 1\n").unwrap();
        let e = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/16 40\n").unwrap();
        let e = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("40"), "{e}");
        // EM file.
        std::fs::write(&f, "R10.0.0.2 10.0.0.1 9 9 0x11 1\n").unwrap();
        let t = L3FwdTables::from_files(&f, None, Lookup::Em).unwrap();
        assert_eq!(t.lookup(), Lookup::Em);
        let fwd = L3Fwd::new(&h);
        assert_eq!(h.swap(t), 1);
        assert_eq!(h.generation(), 1);
        let mut fwd2 = fwd.clone();
        <L3Fwd as Forward<crate::mbuf::Mbuf>>::housekeeping(&mut fwd2);
        assert_eq!(fwd2.generation(), 1);
        assert_eq!(fwd2.tables.lookup(), Lookup::Em);
        assert_eq!(fwd.generation(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
