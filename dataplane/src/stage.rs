//! The stage contract: what a processing stage ([`Forward`]) is handed and what it hands
//! back. A stage receives a classified burst and, for every packet, either sends it to a
//! port through the lcore's transmit side ([`Tx::send`]) or drops it with a [`DropReason`]
//! ([`Tx::drop_pkt`]); [`LcoreStats`] counts both.
//!
//! This module sits below both the poll loop ([`crate::lcore`], which owns a [`Tx`] per lcore
//! and calls the stage) and the stages ([`crate::fwd`], [`crate::l3fwd`]), so neither depends
//! on the other.

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::classify::Level;
use crate::port::{BoxTx, MAX_PORTS};
use crate::stats::Counter;
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;

/// Why the data path dropped a packet. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// The output port refused it (its queue was full).
    TxFull = 0,
    /// No route for the destination.
    NoRoute,
    /// TTL or hop limit expired.
    TtlExpired,
    /// Bad IPv4 header checksum.
    BadChecksum,
    /// Malformed or truncated headers.
    Malformed,
    /// The destination port has no tx queue on this lcore or does not exist.
    NoTxPort,
    /// Filtered by configuration (port mask, unsupported protocol, …).
    Filtered,
    /// No free mbuf for a reply or copy.
    NoMbuf,
    /// Larger than the configured maximum packet length.
    TooLong,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 9;
    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TxFull,
        DropReason::NoRoute,
        DropReason::TtlExpired,
        DropReason::BadChecksum,
        DropReason::Malformed,
        DropReason::NoTxPort,
        DropReason::Filtered,
        DropReason::NoMbuf,
        DropReason::TooLong,
    ];

    /// A short snake_case name for statistics and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TxFull => "tx_full",
            DropReason::NoRoute => "no_route",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Malformed => "malformed",
            DropReason::NoTxPort => "no_tx_port",
            DropReason::Filtered => "filtered",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::TooLong => "too_long",
        }
    }
}

/// Per-port counters of one lcore (DPDK l2fwd's `struct l2fwd_port_statistics`).
#[derive(Debug, Default)]
pub struct LcorePortStats {
    /// Received from the port by this lcore.
    pub rx: Counter,
    /// Sent to the port by this lcore.
    pub tx: Counter,
    /// Refused by the port's tx queue and freed.
    pub dropped: Counter,
}

/// The statistics of one lcore: written by it, read by anyone.
#[derive(Debug)]
pub struct LcoreStats {
    /// Per port.
    pub ports: [CachePadded<LcorePortStats>; MAX_PORTS],
    /// Drops by reason.
    pub drops: [Counter; DropReason::COUNT],
    /// Loop iterations.
    pub loops: Counter,
    /// Iterations that received at least one packet.
    pub busy_loops: Counter,
    /// Timer cycles ([`crate::arch::cycles`]) spent in iterations that received at least one
    /// packet, from the start of such an iteration to the start of the next: the work per
    /// packet, with idle polls left out (as testpmd's `--record-core-cycles`).
    pub busy_cycles: Counter,
    /// Received bursts run through the classifier (a debug counter: the classifier is seen
    /// running on every received burst).
    pub classified_bursts: Counter,
    /// Packets in those bursts.
    pub classified_pkts: Counter,
}

impl Default for LcoreStats {
    fn default() -> Self {
        LcoreStats {
            ports: std::array::from_fn(|_| CachePadded::new(LcorePortStats::default())),
            drops: std::array::from_fn(|_| Counter::new()),
            loops: Counter::new(),
            busy_loops: Counter::new(),
            busy_cycles: Counter::new(),
            classified_bursts: Counter::new(),
            classified_pkts: Counter::new(),
        }
    }
}

impl LcoreStats {
    /// Counts a drop.
    #[inline(always)]
    pub fn drop_reason(&self, r: DropReason, n: u64) {
        self.drops[r as usize].add(n);
    }
}

/// What becomes of one packet, in one byte: sent on a port (below [`MAX_PORTS`]) or dropped
/// with a [`DropReason`]. The compact form of `Result<u16, DropReason>`, for stages that decide
/// each packet before handing it to [`Tx::send_each`].
///
/// # Examples
/// ```
/// use dataplane::stage::{DropReason, Verdict};
/// assert_eq!(Verdict::port(3).get(), Ok(3));
/// assert_eq!(Verdict::drop(DropReason::NoRoute).get(), Err(DropReason::NoRoute));
/// assert_eq!(Verdict::port(40_000).get(), Err(DropReason::NoTxPort));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Verdict(u8);

impl Verdict {
    /// The bit that marks a drop; the reason is in the bits below it.
    const DROP: u8 = 0x80;

    /// Sent on `port`; a port not below [`MAX_PORTS`] is a drop as `NoTxPort` (what
    /// [`Tx::send`] does with it).
    #[inline(always)]
    pub const fn port(port: u16) -> Self {
        if (port as usize) < MAX_PORTS {
            Verdict(port as u8)
        } else {
            Verdict::drop(DropReason::NoTxPort)
        }
    }

    /// Dropped for `reason`.
    #[inline(always)]
    pub const fn drop(reason: DropReason) -> Self {
        Verdict(Self::DROP | reason as u8)
    }

    /// True for a drop.
    #[inline(always)]
    pub const fn is_drop(self) -> bool {
        self.0 & Self::DROP != 0
    }

    /// The port, or the drop reason.
    #[inline(always)]
    pub fn get(self) -> Result<u16, DropReason> {
        if self.is_drop() {
            Err(self.reason())
        } else {
            Ok(u16::from(self.0))
        }
    }

    /// The drop reason (`NoTxPort` for a port, which only a missing tx queue drops).
    #[inline(always)]
    fn reason(self) -> DropReason {
        match DropReason::ALL.get(usize::from(self.0 & !Self::DROP)) {
            Some(&r) if self.is_drop() => r,
            _ => DropReason::NoTxPort,
        }
    }
}

struct TxPort<B: PacketBuf> {
    q: BoxTx<B>,
    buf: Burst<B>,
}

/// The transmit side of an lcore: one tx queue and one buffer per output port.
pub struct Tx<B: PacketBuf> {
    ports: Box<[Option<TxPort<B>>; MAX_PORTS]>,
    stats: Arc<LcoreStats>,
    burst: usize,
}

impl<B: PacketBuf> fmt::Debug for Tx<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("ports", &self.ports.iter().filter(|p| p.is_some()).count()).finish()
    }
}

impl<B: PacketBuf> Tx<B> {
    pub(crate) fn new(stats: Arc<LcoreStats>, burst: usize) -> Self {
        // Built on the heap (a buffer per port is ~4 KiB); a fixed length makes the port check a
        // compare with a constant.
        let ports: Box<[Option<TxPort<B>>]> = (0..MAX_PORTS).map(|_| None).collect();
        let Ok(ports) = ports.try_into() else { unreachable!("MAX_PORTS slots were collected") };
        Tx { ports, stats, burst }
    }

    /// Gives port `port` the tx queue `q` (the lcore's `add_tx`); the message says why not
    /// when `port` is not below [`MAX_PORTS`] or already has one.
    pub(crate) fn attach(&mut self, port: u16, q: BoxTx<B>) -> Result<(), String> {
        match self.ports.get_mut(port as usize) {
            None => Err(format!("port {port} is not below {MAX_PORTS}")),
            Some(Some(_)) => Err(format!("port {port} already has a tx queue")),
            Some(slot) => {
                *slot = Some(TxPort { q, buf: Burst::new() });
                Ok(())
            }
        }
    }

    /// Sets the tx burst size (the lcore checked it against the buffers' capacity).
    pub(crate) fn set_burst(&mut self, n: usize) {
        self.burst = n;
    }

    /// Buffers `pkt` for port `port`; flushes the buffer when it reaches the tx burst size.
    #[inline(always)]
    pub fn send(&mut self, port: u16, pkt: B) {
        match self.ports.get_mut(port as usize) {
            Some(Some(tp)) => {
                // The buffer is flushed at `burst` (<= MAX_BURST), so it always has room.
                let _ = tp.buf.push(pkt);
                if tp.buf.len() >= self.burst {
                    Self::flush_one(tp, &self.stats, port);
                }
            }
            _ => {
                drop(pkt);
                self.stats.drop_reason(DropReason::NoTxPort, 1);
            }
        }
    }

    /// Sends the first `k` packets of `pkts` (all bound for port `port`) and moves the rest of
    /// `pkts` to its front: the burst form of [`Tx::send`], for stages that decide a whole
    /// burst at once.
    ///
    /// When the port's buffer is empty and these are all of `pkts`, at least a tx burst of
    /// them, they go to the queue straight from `pkts` in one `tx_burst` (no copy into the
    /// buffer, as testpmd does); what the queue refuses is freed and counted as dropped
    /// (`TxFull`), as a flush does. Otherwise they are buffered one by one as by
    /// [`Tx::send`]. Without a tx queue for `port`, they are dropped as `NoTxPort`.
    #[inline]
    pub fn send_front(&mut self, port: u16, pkts: &mut Burst<B>, k: usize) {
        let k = k.min(pkts.len());
        if k == 0 {
            return;
        }
        let burst = self.burst;
        let stats = &self.stats;
        match self.ports.get_mut(port as usize) {
            Some(Some(tp)) => {
                if k == pkts.len() && k >= burst && tp.buf.is_empty() {
                    let sent = tp.q.tx_burst(pkts);
                    Self::account(stats, port, sent, pkts);
                } else {
                    pkts.drain_front(k, |m| {
                        let _ = tp.buf.push(m);
                        if tp.buf.len() >= burst {
                            Self::flush_one(tp, stats, port);
                        }
                    });
                }
            }
            _ => {
                pkts.drain_front(k, drop);
                stats.drop_reason(DropReason::NoTxPort, k as u64);
            }
        }
    }

    /// Sends or drops the first `n` packets of `pkts` (at most all of them) and moves the rest
    /// of `pkts` to its front; packet `i`'s verdict is computed by `f(i, &mut packet)` just
    /// before it is sent or dropped. The same as [`Tx::send`] or [`Tx::drop_pkt`] on each in
    /// order, for stages that finish a packet (a rewrite) and send it in one pass.
    #[inline(always)]
    pub fn send_each(&mut self, pkts: &mut Burst<B>, n: usize, mut f: impl FnMut(usize, &mut B) -> Verdict) {
        let burst = self.burst;
        let stats = &self.stats;
        let ports = &mut self.ports;
        pkts.drain_front_indexed(n, |mut m, i| {
            let v = f(i, &mut m);
            match ports.get_mut(usize::from(v.0)) {
                Some(Some(tp)) => {
                    // The buffer is flushed at `burst` (<= MAX_BURST), so it always has room;
                    // its length is read before the store of the packet, which might alias it.
                    let full = tp.buf.len() + 1 >= burst;
                    let _ = tp.buf.push(m);
                    if full {
                        Self::flush_cold(tp, stats, u16::from(v.0));
                    }
                }
                _ => {
                    drop(m);
                    stats.drop_reason(v.reason(), 1);
                }
            }
        });
    }

    /// Drops `pkt` (returns it to its pool), counting it under `reason`.
    #[inline(always)]
    pub fn drop_pkt(&mut self, pkt: B, reason: DropReason) {
        drop(pkt);
        self.stats.drop_reason(reason, 1);
    }

    /// The lcore's statistics (for stages that count more).
    pub fn stats(&self) -> &LcoreStats {
        &self.stats
    }

    /// True when this lcore can send on `port`.
    pub fn has_port(&self, port: u16) -> bool {
        matches!(self.ports.get(port as usize), Some(Some(_)))
    }

    /// [`Tx::flush_one`] out of line, once per tx burst: the per-packet loop around it keeps
    /// its values in registers.
    #[cold]
    #[inline(never)]
    fn flush_cold(tp: &mut TxPort<B>, stats: &LcoreStats, port: u16) {
        Self::flush_one(tp, stats, port)
    }

    #[inline(always)]
    fn flush_one(tp: &mut TxPort<B>, stats: &LcoreStats, port: u16) {
        let sent = tp.q.tx_burst(&mut tp.buf);
        Self::account(stats, port, sent, &mut tp.buf);
    }

    /// Counts `sent` packets out on `port`, and what is left in `unsent` as dropped (freed).
    #[inline(always)]
    fn account(stats: &LcoreStats, port: u16, sent: usize, unsent: &mut Burst<B>) {
        let ps = &stats.ports[port as usize];
        ps.tx.add(sent as u64);
        if !unsent.is_empty() {
            let n = unsent.len() as u64;
            ps.dropped.add(n);
            stats.drop_reason(DropReason::TxFull, n);
            unsent.clear();
        }
    }

    /// Flushes every tx buffer and the queues' internal batching.
    pub fn flush_all(&mut self) {
        for (port, tp) in self.ports.iter_mut().enumerate() {
            if let Some(tp) = tp {
                if !tp.buf.is_empty() {
                    Self::flush_one(tp, &self.stats, port as u16);
                }
                tp.q.flush();
            }
        }
    }

    /// At stop: tries to send what is buffered a few times before freeing it (counted).
    pub(crate) fn final_flush(&mut self) {
        for (port, tp) in self.ports.iter_mut().enumerate() {
            if let Some(tp) = tp {
                for _ in 0..100 {
                    if tp.buf.is_empty() {
                        break;
                    }
                    let sent = tp.q.tx_burst(&mut tp.buf);
                    self.stats.ports[port].tx.add(sent as u64);
                    tp.q.flush();
                    if sent == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    }
                }
                let n = tp.buf.len() as u64;
                if n > 0 {
                    self.stats.ports[port].dropped.add(n);
                    self.stats.drop_reason(DropReason::TxFull, n);
                    tp.buf.clear();
                }
                tp.q.flush();
            }
        }
    }
}

/// A processing stage: takes every packet of a received burst and either sends it
/// ([`Tx::send`]) or drops it with a reason ([`Tx::drop_pkt`]). Leaving a packet in the burst
/// is a bug: asserted in debug builds, freed and counted as `Filtered` in release builds.
///
/// Before [`forward`](Self::forward) the lcore has classified the burst at the stage's
/// [`classify_level`](Self::classify_level): packet type, header lengths and (at
/// [`Level::Full`]) the flow hash are in each packet's [`PacketMeta`](crate::buf::PacketMeta).
pub trait Forward<B: PacketBuf>: Send {
    /// Processes `pkts` (received on `rx_port`), leaving it empty.
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>);
    /// What the stage reads from the classifier's metadata; asked once, when the lcore is
    /// built. [`Level::Full`] unless the stage says less.
    fn classify_level(&self) -> Level {
        Level::Full
    }
    /// Periodic work on the lcore (every 4096 loop iterations): table swaps and the like.
    fn housekeeping(&mut self) {}
}

/// Boxed stages, so lcores running different stages (a pipeline's distributor and its
/// workers) can share one [`Runtime`](crate::lcore::Runtime); the cost is one indirect call per burst.
impl<B: PacketBuf> Forward<B> for Box<dyn Forward<B>> {
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        (**self).forward(rx_port, pkts, tx)
    }
    fn classify_level(&self) -> Level {
        (**self).classify_level()
    }
    fn housekeeping(&mut self) {
        (**self).housekeeping()
    }
}
