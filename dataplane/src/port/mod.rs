//! Ports: one trait for every backend.
//!
//! A [`Port`] is the control-plane object (MAC address, link, counters, configuration); its
//! queues are split off as owned [`RxQueue`] / [`TxQueue`] objects so that each worker core
//! owns the queues it polls, as with DPDK's `(port, queue, lcore)` assignment. A queue names
//! its buffer type, so processing is monomorphised per buffer kind; the only dynamic dispatch
//! is one call per burst (as with a DPDK PMD's burst function pointer).
//!
//! Backends here: [`null`] (like net_null), [`ring`] (like net_ring) and [`pcap`] (files).
//! AF_XDP, AF_PACKET, native PCI drivers on vfio-pci ([`pci`]: virtio-net) and DPDK ethdev
//! ports implement the same traits.

#[cfg(target_os = "linux")]
pub mod af_packet;
#[cfg(target_os = "linux")]
pub mod af_xdp;
pub mod null;
pub mod pcap;
pub mod pci;
pub mod ring;
pub mod spec;

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::stats::Counter;
use crossbeam_utils::CachePadded;
use std::sync::Arc;

/// The largest number of ports a runtime handles (DPDK's RTE_MAX_ETHPORTS default).
pub const MAX_PORTS: usize = 32;

/// The MAC address type of ports: [`crate::wire::EthernetAddress`].
pub use crate::wire::EthernetAddress as MacAddr;

/// Link state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s, 0 when unknown.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Port counters, named as DPDK's `rte_eth_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the backend dropped on receive (ring full, kernel drops).
    pub imissed: u64,
    /// Receive errors (bad frames, too large for an mbuf).
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive attempts that found no free mbuf.
    pub rx_nombuf: u64,
}

impl std::ops::AddAssign for PortStats {
    fn add_assign(&mut self, o: Self) {
        self.ipackets += o.ipackets;
        self.opackets += o.opackets;
        self.ibytes += o.ibytes;
        self.obytes += o.obytes;
        self.imissed += o.imissed;
        self.ierrors += o.ierrors;
        self.oerrors += o.oerrors;
        self.rx_nombuf += o.rx_nombuf;
    }
}

/// Counters of one queue. Each is written by the one thread that owns the queue and read by
/// anyone; see [`Counter`].
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Packets.
    pub packets: Counter,
    /// Bytes.
    pub bytes: Counter,
    /// Missed (rx) / errors (tx).
    pub missed: Counter,
    /// Errors.
    pub errors: Counter,
    /// No mbuf (rx).
    pub nombuf: Counter,
}

/// The counters of every queue of a port, shared between the port (reader) and its queues
/// (writers).
#[derive(Debug)]
pub struct PortCounters {
    rx: Box<[CachePadded<QueueCounters>]>,
    tx: Box<[CachePadded<QueueCounters>]>,
}

impl PortCounters {
    /// Counters for `rxq` receive and `txq` transmit queues.
    pub fn new(rxq: usize, txq: usize) -> Arc<Self> {
        Arc::new(PortCounters {
            rx: (0..rxq).map(|_| CachePadded::new(QueueCounters::default())).collect(),
            tx: (0..txq).map(|_| CachePadded::new(QueueCounters::default())).collect(),
        })
    }

    /// Receive queue `q`'s counters.
    pub fn rx(&self, q: usize) -> &QueueCounters {
        &self.rx[q]
    }

    /// Transmit queue `q`'s counters.
    pub fn tx(&self, q: usize) -> &QueueCounters {
        &self.tx[q]
    }

    /// Sum over all queues.
    pub fn snapshot(&self) -> PortStats {
        let mut s = PortStats::default();
        for q in self.rx.iter() {
            s.ipackets += q.packets.get();
            s.ibytes += q.bytes.get();
            s.imissed += q.missed.get();
            s.ierrors += q.errors.get();
            s.rx_nombuf += q.nombuf.get();
        }
        for q in self.tx.iter() {
            s.opackets += q.packets.get();
            s.obytes += q.bytes.get();
            s.oerrors += q.errors.get();
        }
        s
    }
}

/// A line for the final summary about something a backend met that its counters alone do not
/// explain (see [`Port::notes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortNote {
    /// What happened, for a person, naming the port: `port 0 (pcap0): 2 frames larger than
    /// the mbuf data room (1728 bytes) skipped, …`.
    pub text: String,
    /// The run did not do what it was asked because of it (a pcap input whose replay ended at
    /// a corrupt record, the rest of the capture unread): the run should fail.
    pub fatal: bool,
}

/// Why a port or queue operation failed (control plane).
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Queue index out of range.
    #[error("port {port}: no {dir} queue {queue} (the port has {count})")]
    NoSuchQueue {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        dir: &'static str,
        /// Queue asked for.
        queue: u16,
        /// Queues configured.
        count: u16,
    },
    /// The queue was already handed to a worker.
    #[error("port {port}: {dir} queue {queue} is already in use by a worker")]
    QueueTaken {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        dir: &'static str,
        /// Queue.
        queue: u16,
    },
    /// Invalid configuration.
    #[error("port {port}: {msg}")]
    Config {
        /// Port name or spec.
        port: String,
        /// What is wrong.
        msg: String,
    },
    /// An OS call failed.
    #[error("port {port}: {what}: {source}{hint}")]
    Os {
        /// Port name.
        port: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
        /// What to do about it (starts with "; " when present).
        hint: String,
    },
    /// A mempool problem.
    #[error("port {port}: {source}")]
    Mempool {
        /// Port name.
        port: String,
        /// The pool error.
        source: crate::mbuf::MempoolError,
    },
    /// A native PCI driver could not open or drive its device.
    #[error("port {port}: {source}")]
    Pci {
        /// Port name (the PCI address).
        port: String,
        /// What went wrong (boxed to keep the error small).
        source: Box<pci::PciError>,
    },
}

/// A receive queue, owned by the worker that polls it.
pub trait RxQueue: Send {
    /// The buffer type it produces.
    type Buf: PacketBuf;
    /// Receives up to `max` packets (bounded by `out`'s spare room), appending them to `out`.
    /// Returns how many. Never blocks.
    fn rx_burst(&mut self, out: &mut Burst<Self::Buf>, max: usize) -> usize;
    /// True when the queue (its hardware) already fills each packet's type (in
    /// [`crate::classify::ptype`]'s encoding), header lengths and flow hash in the metadata, so
    /// the lcore skips its classifier pass on these bursts. The stages rely on those fields:
    /// a queue that says so and leaves them zero gets its packets dropped as malformed.
    fn fills_ptype(&self) -> bool {
        false
    }
}

/// A transmit queue, owned by the worker that sends on it.
pub trait TxQueue: Send {
    /// The buffer type it takes.
    type Buf: PacketBuf;
    /// Sends packets from the front of `pkts` and returns how many it took; the rest stay in
    /// `pkts`, in order, for the caller to retry or free. Never blocks.
    fn tx_burst(&mut self, pkts: &mut Burst<Self::Buf>) -> usize;
    /// Pushes out anything the backend batches internally (a kick, a file flush). Called by
    /// the worker's drain timer and at stop.
    fn flush(&mut self) {}
}

/// A boxed receive queue of buffer type `B`.
pub type BoxRx<B> = Box<dyn RxQueue<Buf = B>>;
/// A boxed transmit queue of buffer type `B`.
pub type BoxTx<B> = Box<dyn TxQueue<Buf = B>>;

/// Static facts about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Name (interface, file, vdev).
    pub name: String,
    /// Backend ("null", "ring", "pcap", "af_xdp", "af_packet", `"dpdk:<driver>"`).
    pub driver: String,
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
}

/// A port of any backend. See the module docs.
pub trait Port: Send {
    /// The buffer type its queues carry.
    type Buf: PacketBuf;
    /// Static facts.
    fn info(&self) -> PortInfo;
    /// The port's MAC address.
    fn mac(&self) -> MacAddr;
    /// Current link state.
    fn link(&self) -> LinkStatus;
    /// Counters summed over all queues.
    fn stats(&self) -> PortStats;
    /// Turns promiscuous mode on or off (a no-op for backends without the notion).
    ///
    /// # Errors
    /// When the backend refuses.
    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        let _ = on;
        Ok(())
    }
    /// Takes receive queue `q` (once).
    ///
    /// # Errors
    /// No such queue, or already taken.
    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Self::Buf>, PortError>;
    /// Takes transmit queue `q` (once).
    ///
    /// # Errors
    /// No such queue, or already taken.
    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Self::Buf>, PortError>;
    /// What the final summary should say about the port beyond its counters, one
    /// [`PortNote`] per problem (the pcap port: frames over the mbuf data room, a replay that
    /// ended at a bad record). Nothing by default.
    fn notes(&self) -> Vec<PortNote> {
        Vec::new()
    }
}

/// Tracks which queues of a port were handed out, for backends' `rx_queue`/`tx_queue`.
#[derive(Debug)]
pub(crate) struct QueueClaims {
    rx: Vec<bool>,
    tx: Vec<bool>,
}

impl QueueClaims {
    pub(crate) fn new(rx: u16, tx: u16) -> Self {
        QueueClaims { rx: vec![false; rx as usize], tx: vec![false; tx as usize] }
    }

    /// Claims queue `q` and takes it out of `slots`, where a backend keeps its queues until a
    /// worker asks for them.
    pub(crate) fn take<Q>(&mut self, port: &str, rx: bool, q: u16, slots: &mut [Option<Q>]) -> Result<Q, PortError> {
        self.claim(port, rx, q)?;
        slots.get_mut(q as usize).and_then(Option::take).ok_or_else(|| PortError::QueueTaken {
            port: port.to_string(),
            dir: if rx { "rx" } else { "tx" },
            queue: q,
        })
    }

    pub(crate) fn claim(&mut self, port: &str, rx: bool, q: u16) -> Result<(), PortError> {
        let (v, dir) = if rx { (&mut self.rx, "rx") } else { (&mut self.tx, "tx") };
        match v.get_mut(q as usize) {
            None => Err(PortError::NoSuchQueue { port: port.to_string(), dir, queue: q, count: v.len() as u16 }),
            Some(true) => Err(PortError::QueueTaken { port: port.to_string(), dir, queue: q }),
            Some(s) => {
                *s = true;
                Ok(())
            }
        }
    }
}

/// The longest frame a kernel interface of a given MTU transmits: the MTU plus the Ethernet
/// header, and 4 bytes more for a frame whose EtherType is 0x8100 (one 802.1Q tag: the
/// kernel's `packet_extra_vlan_len_allowed`). The kernel-socket transmit queues count a frame
/// over it as a transmit error instead of handing it over: AF_PACKET with `PACKET_LOSS` would
/// let it go uncounted, AF_XDP would leave it to the driver (veth drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameLimit {
    untagged: usize,
    tagged: usize,
}

impl FrameLimit {
    /// For an interface of `mtu` bytes, and at most `room` bytes in any case (what a transmit
    /// slot holds).
    pub(crate) fn new(mtu: u32, room: usize) -> Self {
        let untagged = (mtu as usize).saturating_add(14);
        FrameLimit { untagged: untagged.min(room), tagged: untagged.saturating_add(4).min(room) }
    }

    /// Whether `frame` is within the limit.
    #[inline(always)]
    pub(crate) fn allows(&self, frame: &[u8]) -> bool {
        frame.len() <= self.untagged || self.tagged_fits(frame)
    }

    #[cold]
    fn tagged_fits(&self, frame: &[u8]) -> bool {
        use crate::wire::{EtherType, EthernetFrame};
        frame.len() <= self.tagged && EthernetFrame::new_checked(frame).is_ok_and(|e| e.ethertype() == EtherType::Vlan)
    }
}

/// For a transmit queue `q` being dropped whose frames would be discarded by the close (a
/// kernel socket's ring the kernel has not taken them from, a device reset before the device
/// sent them): `kick` (or reclaim) until `pending` (frames not yet gone) reaches 0. Bounded:
/// gives up after 500 ms without progress or 5 s in all. Returns what is still pending, for
/// the caller to count as transmit errors.
pub(crate) fn drain_at_close<Q>(q: &mut Q, pending: impl Fn(&Q) -> u64, mut kick: impl FnMut(&mut Q)) -> u64 {
    use std::time::{Duration, Instant};
    const STALL: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(5);
    let start = Instant::now();
    let mut progress = start;
    let mut left = pending(q);
    while left > 0 && progress.elapsed() < STALL && start.elapsed() < MAX {
        kick(q);
        let now = pending(q);
        if now < left {
            progress = Instant::now();
        } else {
            std::thread::sleep(Duration::from_micros(500));
        }
        left = now;
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_limit_takes_the_tag_only_on_a_tagged_frame() {
        let l = FrameLimit::new(1500, 4096);
        let tagged = |len: usize, tpid: [u8; 2]| {
            let mut f = vec![0u8; len];
            f[12..14].copy_from_slice(&tpid);
            f
        };
        assert!(l.allows(&[0u8; 1514]));
        assert!(!l.allows(&[0u8; 1515]), "untagged: MTU + 14");
        assert!(l.allows(&tagged(1518, [0x81, 0x00])));
        assert!(!l.allows(&tagged(1519, [0x81, 0x00])));
        assert!(!l.allows(&tagged(1518, [0x88, 0xa8])), "802.1ad is not the kernel's exception");
        assert!(!l.allows(&[0u8; 1516][..]));
        let small = FrameLimit::new(9000, 2000);
        assert!(small.allows(&[0u8; 2000]) && !small.allows(&tagged(2001, [0x81, 0x00])), "the slot bounds both");
        assert!(FrameLimit::new(u32::MAX, usize::MAX).allows(&[0u8; 64]));
    }

    #[test]
    fn claims() {
        let mut c = QueueClaims::new(1, 2);
        assert!(c.claim("p", true, 0).is_ok());
        assert!(matches!(c.claim("p", true, 0), Err(PortError::QueueTaken { .. })));
        assert!(matches!(c.claim("p", true, 1), Err(PortError::NoSuchQueue { count: 1, .. })));
        assert!(c.claim("p", false, 1).is_ok());
    }
}
