//! A frame generator polled like a receive queue: testpmd's `txonly` forwarding mode.
//!
//! [`TxGen`] allocates a burst from a pool, fills every buffer with an Ethernet/IPv4/UDP
//! frame built once from a [`TxGenConfig`], and hands the burst to the lcore as if it had been
//! received; an [`crate::fwd::Io`] stage pairing each port with itself then sends it. Add it
//! with [`crate::lcore::Lcore::add_source`], which does not count generated frames as
//! received. With several flows the IPv4 source address steps through `flows` consecutive
//! addresses, the header checksum updated incrementally (RFC 1624), so a receiver's RSS
//! spreads them. The UDP checksum is 0 (none), as testpmd's txonly sends.
//!
//! No allocation per packet: the template is built once, and a pool that runs dry makes the
//! burst empty and is counted ([`TxGen::alloc_failures`]).

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use crate::port::{MacAddr, RxQueue};
use crate::stats::Counter;
use crate::wire::{checksum, EthernetAddress, Udp4FrameRepr};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Smallest frame: Ethernet + IPv4 + UDP headers (42 bytes; the wire pads to 60).
pub const MIN_FRAME: usize = 14 + 20 + 8;
/// Largest frame the generator builds (a jumbo frame; the pool's buffers must hold it).
pub const MAX_FRAME: usize = 9000;

/// A pool a generator allocates from, for each buffer kind.
pub trait BufPool: Send + 'static {
    /// The buffers it hands out.
    type Buf: PacketBuf;
    /// Appends `n` fresh, empty buffers to `out`, all or none; false when the pool has fewer
    /// than `n` or `out` has no room for them.
    fn alloc_into(&self, out: &mut Burst<Self::Buf>, n: usize) -> bool;
}

impl BufPool for Mempool {
    type Buf = Mbuf;
    #[inline]
    fn alloc_into(&self, out: &mut Burst<Mbuf>, n: usize) -> bool {
        self.alloc_bulk(out, n).is_ok()
    }
}

#[cfg(feature = "dpdk")]
impl BufPool for crate::dpdk::DpdkMempool {
    type Buf = crate::dpdk::RteMbuf;
    #[inline]
    fn alloc_into(&self, out: &mut Burst<crate::dpdk::RteMbuf>, n: usize) -> bool {
        self.alloc_bulk(out, n).is_ok()
    }
}

/// What the generator sends (testpmd's `--txpkts`, `--eth-peer`, `--tx-ip`, `--tx-udp`,
/// `--txonly-multi-flow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxGenConfig {
    /// Source MAC (the sending port's).
    pub src_mac: MacAddr,
    /// Destination MAC (the peer's).
    pub dst_mac: MacAddr,
    /// IPv4 source address (the first one with several flows).
    pub src_ip: Ipv4Addr,
    /// IPv4 destination address.
    pub dst_ip: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// Frame length without FCS, [`MIN_FRAME`] to [`MAX_FRAME`] (testpmd's default is 64).
    pub frame_len: usize,
    /// Flows (consecutive source addresses), at least 1.
    pub flows: u32,
}

impl Default for TxGenConfig {
    /// testpmd's txonly defaults: 64-byte frames, 198.18.0.1 → 198.18.0.2 (the benchmarking
    /// range), UDP 9 → 9, one flow.
    fn default() -> Self {
        TxGenConfig {
            src_mac: MacAddr::local(1),
            dst_mac: MacAddr::local(2),
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 9,
            frame_len: 64,
            flows: 1,
        }
    }
}

/// Why a [`TxGenConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxGenError {
    /// The frame length is out of range.
    #[error("frame length {0} must be {MIN_FRAME} to {MAX_FRAME} bytes")]
    FrameLen(usize),
    /// Zero flows.
    #[error("the number of flows must be at least 1")]
    Flows,
}

/// Builds the frame of flow 0 (see the module docs).
///
/// # Errors
/// A length out of range or zero flows.
pub fn build_frame(c: &TxGenConfig) -> Result<Vec<u8>, TxGenError> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&c.frame_len) {
        return Err(TxGenError::FrameLen(c.frame_len));
    }
    if c.flows == 0 {
        return Err(TxGenError::Flows);
    }
    let mut f = vec![0u8; c.frame_len];
    let mut repr = Udp4FrameRepr::new(
        EthernetAddress(c.dst_mac.0),
        EthernetAddress(c.src_mac.0),
        c.src_ip,
        c.dst_ip,
        c.src_port,
        c.dst_port,
    );
    // DPDK's txonly leaves DF clear.
    repr.ip.dont_frag = false;
    // MIN_FRAME leaves room for the 42 bytes of headers.
    repr.emit(&mut f).map_err(|_| TxGenError::FrameLen(c.frame_len))?;
    Ok(f)
}

/// The generator: see the module docs.
pub struct TxGen<P: BufPool> {
    pool: P,
    frame: Vec<u8>,
    src_ip: u32,
    csum0: u16,
    flows: u32,
    next_flow: u32,
    failures: Arc<Counter>,
}

impl<P: BufPool> std::fmt::Debug for TxGen<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxGen").field("len", &self.frame.len()).field("flows", &self.flows).finish()
    }
}

impl<P: BufPool> TxGen<P> {
    /// A generator of `cfg`'s frames from `pool`.
    ///
    /// # Errors
    /// A length out of range or zero flows.
    pub fn new(pool: P, cfg: &TxGenConfig) -> Result<Self, TxGenError> {
        let frame = build_frame(cfg)?;
        let csum0 = u16::from_be_bytes([frame[24], frame[25]]);
        Ok(TxGen {
            pool,
            frame,
            src_ip: u32::from(cfg.src_ip),
            csum0,
            flows: cfg.flows,
            next_flow: 0,
            failures: Arc::new(Counter::new()),
        })
    }

    /// Bursts not generated because the pool was empty (written by the polling lcore).
    pub fn alloc_failures(&self) -> Arc<Counter> {
        self.failures.clone()
    }
}

impl<P: BufPool> RxQueue for TxGen<P> {
    type Buf = P::Buf;

    fn rx_burst(&mut self, out: &mut Burst<P::Buf>, max: usize) -> usize {
        let n = max.min(out.spare());
        let start = out.len();
        if n == 0 {
            return 0;
        }
        if !self.pool.alloc_into(out, n) {
            self.failures.inc();
            return 0;
        }
        let (len, flows) = (self.frame.len(), self.flows);
        for m in out[start..].iter_mut() {
            let Some(d) = m.append(len) else {
                // Buffers too small for the frame (all of a pool's are alike): give the burst
                // back and count it like an empty pool.
                out.truncate(start);
                self.failures.inc();
                return 0;
            };
            d.copy_from_slice(&self.frame);
            if flows > 1 {
                let ip = self.src_ip.wrapping_add(self.next_flow);
                d[26..30].copy_from_slice(&ip.to_be_bytes());
                let sum = checksum::update_u32(self.csum0, self.src_ip, ip);
                d[24..26].copy_from_slice(&sum.to_be_bytes());
                self.next_flow += 1;
                if self.next_flow == flows {
                    self.next_flow = 0;
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EthernetFrame, Ipv4Packet, UdpPacket};

    #[test]
    fn frames_parse_and_checksums_hold() {
        let pool = Mempool::new(crate::MempoolConfig::new("txgen", 256)).unwrap();
        let cfg = TxGenConfig { flows: 3, frame_len: 128, ..Default::default() };
        let mut g = TxGen::new(pool.clone(), &cfg).unwrap();
        let mut b: Burst<Mbuf> = Burst::new();
        assert_eq!(g.rx_burst(&mut b, 7), 7);
        let mut srcs = vec![];
        for m in b.iter() {
            assert_eq!(m.len(), 128);
            let eth = EthernetFrame::new_checked(m.data()).unwrap();
            assert_eq!(eth.dst_addr(), cfg.dst_mac);
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.dst_addr(), cfg.dst_ip);
            srcs.push(ip.src_addr());
            let udp = UdpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!(udp.dst_port(), 9);
            assert_eq!(udp.len() as usize, 128 - 34);
        }
        let a = |x| Ipv4Addr::new(198, 18, 0, x);
        assert_eq!(srcs, vec![a(1), a(2), a(3), a(1), a(2), a(3), a(1)]);
        drop(b);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn empty_pool_is_counted_not_fatal() {
        let pool = Mempool::new(crate::MempoolConfig::new("txgen2", 8)).unwrap();
        let mut g = TxGen::new(pool.clone(), &TxGenConfig::default()).unwrap();
        let mut b: Burst<Mbuf> = Burst::new();
        assert_eq!(g.rx_burst(&mut b, 32), 0);
        assert_eq!(g.alloc_failures().get(), 1);
        assert_eq!(g.rx_burst(&mut b, 8), 8);
        drop(b);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bad_configs() {
        for len in [0, 41, 9001] {
            let c = TxGenConfig { frame_len: len, ..Default::default() };
            assert_eq!(build_frame(&c), Err(TxGenError::FrameLen(len)));
        }
        let c = TxGenConfig { flows: 0, ..Default::default() };
        assert_eq!(build_frame(&c), Err(TxGenError::Flows));
        assert_eq!(build_frame(&TxGenConfig { frame_len: 42, ..Default::default() }).unwrap().len(), 42);
    }
}
