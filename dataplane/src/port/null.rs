//! The null port, like DPDK's `net_null`: receive yields frames of a configured size as fast
//! as mbufs can be allocated; transmit frees what it is given. For benchmarks and tests of
//! everything above the ports.
//!
//! By default received frames carry whatever bytes the mbuf held (as net_null without
//! `copy=1`); with [`NullConfig::template`] each frame is filled from a template.

use super::{
    BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims, RxQueue,
    TxQueue,
};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use std::sync::Arc;

/// Null port configuration.
#[derive(Debug, Clone)]
pub struct NullConfig {
    /// Port name.
    pub name: String,
    /// Frame size of received packets (64 default).
    pub frame_size: usize,
    /// Bytes copied into each received frame (truncated or zero-padded to `frame_size`);
    /// `None` leaves the mbuf's bytes as they are.
    pub template: Option<Vec<u8>>,
    /// The port's MAC address.
    pub mac: MacAddr,
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
}

impl NullConfig {
    /// One rx and one tx queue, 64-byte frames, MAC `02:00:00:00:00:<id>`.
    pub fn new(id: u16) -> Self {
        NullConfig {
            name: format!("null{id}"),
            frame_size: 64,
            template: None,
            mac: MacAddr::local(id as u8),
            rx_queues: 1,
            tx_queues: 1,
        }
    }
}

/// A null port. See the module docs.
#[derive(Debug)]
pub struct NullPort {
    cfg: NullConfig,
    pool: Mempool,
    counters: Arc<PortCounters>,
    claims: QueueClaims,
    id: u16,
}

impl NullPort {
    /// Creates a null port with port id `id` whose receive queues allocate from `pool`.
    ///
    /// # Errors
    /// When the frame size does not fit the pool's mbufs or no queue is configured.
    pub fn new(id: u16, cfg: NullConfig, pool: Mempool) -> Result<Self, PortError> {
        let room = pool.config().chunk_size as usize - crate::mbuf::MBUF_HEADER - pool.config().headroom as usize;
        if cfg.frame_size == 0 || cfg.frame_size > room {
            return Err(PortError::Config {
                port: cfg.name.clone(),
                msg: format!("frame size {} must be between 1 and the mbuf data room {room}", cfg.frame_size),
            });
        }
        if cfg.rx_queues == 0 && cfg.tx_queues == 0 {
            return Err(PortError::Config { port: cfg.name.clone(), msg: "a port needs at least one queue".into() });
        }
        Ok(NullPort {
            counters: PortCounters::new(cfg.rx_queues as usize, cfg.tx_queues as usize),
            claims: QueueClaims::new(cfg.rx_queues, cfg.tx_queues),
            cfg,
            pool,
            id,
        })
    }
}

impl Port for NullPort {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.cfg.name.clone(),
            driver: "null".into(),
            rx_queues: self.cfg.rx_queues,
            tx_queues: self.cfg.tx_queues,
        }
    }

    fn mac(&self) -> MacAddr {
        self.cfg.mac
    }

    fn link(&self) -> LinkStatus {
        LinkStatus { up: true, speed_mbps: 100_000, full_duplex: true }
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        self.claims.claim(&self.cfg.name, true, q)?;
        let mut template = [0u8; 128];
        let tlen = match &self.cfg.template {
            Some(t) => {
                let n = t.len().min(self.cfg.frame_size).min(template.len());
                template[..n].copy_from_slice(&t[..n]);
                Some(self.cfg.frame_size.min(template.len()))
            }
            None => None,
        };
        Ok(Box::new(NullRx {
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            q,
            port: self.id,
            size: self.cfg.frame_size,
            template,
            tlen,
        }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        self.claims.claim(&self.cfg.name, false, q)?;
        Ok(Box::new(NullTx { counters: self.counters.clone(), q }))
    }
}

struct NullRx {
    pool: Mempool,
    counters: Arc<PortCounters>,
    q: u16,
    port: u16,
    size: usize,
    template: [u8; 128],
    tlen: Option<usize>,
}

impl RxQueue for NullRx {
    type Buf = Mbuf;

    #[inline]
    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        let n = max.min(out.spare());
        if n == 0 {
            return 0;
        }
        let start = out.len();
        if self.pool.alloc_bulk(out, n).is_err() {
            self.counters.rx(self.q as usize).nombuf.inc();
            return 0;
        }
        for m in out[start..].iter_mut() {
            // frame_size fits the data room (checked at creation).
            m.set_len(self.size);
            m.set_port(self.port);
            if let Some(t) = self.tlen {
                m.data_mut()[..t].copy_from_slice(&self.template[..t]);
            }
        }
        let c = self.counters.rx(self.q as usize);
        c.packets.add(n as u64);
        c.bytes.add((n * self.size) as u64);
        n
    }
}

struct NullTx {
    counters: Arc<PortCounters>,
    q: u16,
}

impl TxQueue for NullTx {
    type Buf = Mbuf;

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        let n = pkts.len();
        let bytes: usize = pkts.iter().map(|m| m.len()).sum();
        Mbuf::free_bulk(pkts);
        let c = self.counters.tx(self.q as usize);
        c.packets.add(n as u64);
        c.bytes.add(bytes as u64);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MemBacking, MempoolConfig};

    fn pool() -> Mempool {
        let mut c = MempoolConfig::new("null-test", 256);
        c.backing = MemBacking::Normal;
        Mempool::new(c).unwrap()
    }

    #[test]
    fn rx_tx_counts_and_frees() {
        let pool = pool();
        let mut cfg = NullConfig::new(0);
        cfg.template = Some(vec![0xaa; 14]);
        let mut p = NullPort::new(0, cfg, pool.clone()).unwrap();
        let mut rx = p.rx_queue(0).unwrap();
        let mut tx = p.tx_queue(0).unwrap();
        assert!(p.rx_queue(0).is_err());
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 32);
        assert!(b.iter().all(|m| m.len() == 64 && m.port() == 0 && m.data()[..14] == [0xaa; 14]));
        assert_eq!(tx.tx_burst(&mut b), 32);
        assert!(b.is_empty());
        let s = p.stats();
        assert_eq!((s.ipackets, s.opackets, s.ibytes, s.obytes), (32, 32, 2048, 2048));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn exhaustion_counts_nombuf() {
        let pool = pool();
        let mut p = NullPort::new(0, NullConfig::new(0), pool).unwrap();
        let mut rx = p.rx_queue(0).unwrap();
        let mut held = Burst::new();
        while rx.rx_burst(&mut held, 64) > 0 {
            if held.is_full() {
                break;
            }
        }
        let mut more = Burst::new();
        assert_eq!(rx.rx_burst(&mut more, 32), 0);
        assert!(p.stats().rx_nombuf >= 1);
    }

    #[test]
    fn rejects_oversized_frames() {
        let mut cfg = NullConfig::new(0);
        cfg.frame_size = 4000;
        assert!(matches!(NullPort::new(0, cfg, pool()), Err(PortError::Config { .. })));
    }
}
