//! The ring port, like DPDK's `net_ring`: each queue is a pair of in-process [`Ring`]s, one to
//! receive from and one to transmit into. Two ports built with [`RingPort::pair`] are wired
//! back to back (what one sends the other receives); a port built with the same ring for rx
//! and tx loops back. Used to wire workers and tests together without copying packets.

use super::{
    BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims, RxQueue,
    TxQueue,
};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::ring::Ring;
use std::sync::Arc;

/// A ring of packets shared between ports or threads.
pub type PacketRing<B> = Arc<Ring<B>>;

/// A ring port. See the module docs.
pub struct RingPort<B: PacketBuf> {
    name: String,
    id: u16,
    mac: MacAddr,
    rx: Vec<PacketRing<B>>,
    tx: Vec<PacketRing<B>>,
    counters: Arc<PortCounters>,
    claims: QueueClaims,
    preserve_port: bool,
}

impl<B: PacketBuf> std::fmt::Debug for RingPort<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingPort").field("name", &self.name).field("queues", &self.rx.len()).finish()
    }
}

impl<B: PacketBuf> RingPort<B> {
    /// A port with port id `id` receiving from `rx[q]` and sending into `tx[q]`.
    ///
    /// # Errors
    /// When `rx` and `tx` are both empty.
    pub fn new(name: &str, id: u16, rx: Vec<PacketRing<B>>, tx: Vec<PacketRing<B>>) -> Result<Self, PortError> {
        if rx.is_empty() && tx.is_empty() {
            return Err(PortError::Config { port: name.into(), msg: "a ring port needs at least one ring".into() });
        }
        Ok(RingPort {
            name: name.to_string(),
            id,
            mac: MacAddr::local(id as u8),
            counters: PortCounters::new(rx.len(), tx.len()),
            claims: QueueClaims::new(rx.len() as u16, tx.len() as u16),
            preserve_port: false,
            rx,
            tx,
        })
    }

    /// Two ports (ids `id_a`, `id_b`) wired back to back with `queues` ring pairs of
    /// `capacity` slots each.
    ///
    /// # Errors
    /// When the capacity is not a power of two or `queues` is 0.
    pub fn pair(id_a: u16, id_b: u16, queues: u16, capacity: usize) -> Result<(Self, Self), PortError> {
        let mk = || -> Result<Vec<PacketRing<B>>, PortError> {
            (0..queues)
                .map(|_| {
                    Ring::new(capacity)
                        .map(Arc::new)
                        .map_err(|e| PortError::Config { port: "ring".into(), msg: e.to_string() })
                })
                .collect()
        };
        let (ab, ba) = (mk()?, mk()?);
        Ok((
            RingPort::new(&format!("ring{id_a}"), id_a, ba.clone(), ab.clone())?,
            RingPort::new(&format!("ring{id_b}"), id_b, ab, ba)?,
        ))
    }

    /// Keeps the input port recorded in each received packet instead of stamping this port's
    /// id (for pipeline rings, whose consumers need the original input port).
    pub fn set_preserve_port(&mut self, on: bool) {
        self.preserve_port = on;
    }

    /// Sets the MAC address reported.
    pub fn set_mac(&mut self, mac: MacAddr) {
        self.mac = mac;
    }

    /// The rings the port receives from.
    pub fn rx_rings(&self) -> &[PacketRing<B>] {
        &self.rx
    }

    /// The rings the port sends into.
    pub fn tx_rings(&self) -> &[PacketRing<B>] {
        &self.tx
    }
}

impl<B: PacketBuf> Port for RingPort<B> {
    type Buf = B;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.name.clone(),
            driver: "ring".into(),
            rx_queues: self.rx.len() as u16,
            tx_queues: self.tx.len() as u16,
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkStatus {
        LinkStatus { up: true, speed_mbps: 10_000, full_duplex: true }
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<B>, PortError> {
        self.claims.claim(&self.name, true, q)?;
        let port = if self.preserve_port { None } else { Some(self.id) };
        Ok(Box::new(RingRx { ring: self.rx[q as usize].clone(), counters: self.counters.clone(), q, port }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<B>, PortError> {
        self.claims.claim(&self.name, false, q)?;
        Ok(Box::new(RingTx { ring: self.tx[q as usize].clone(), counters: self.counters.clone(), q }))
    }
}

struct RingRx<B> {
    ring: PacketRing<B>,
    counters: Arc<PortCounters>,
    q: u16,
    port: Option<u16>,
}

impl<B: PacketBuf> RxQueue for RingRx<B> {
    type Buf = B;

    #[inline]
    fn rx_burst(&mut self, out: &mut Burst<B>, max: usize) -> usize {
        let start = out.len();
        let n = self.ring.dequeue_burst(out, max);
        if n > 0 {
            let mut bytes = 0;
            for m in out[start..].iter_mut() {
                if let Some(p) = self.port {
                    m.set_port(p);
                }
                bytes += m.len();
            }
            let c = self.counters.rx(self.q as usize);
            c.packets.add(n as u64);
            c.bytes.add(bytes as u64);
        }
        n
    }
}

struct RingTx<B> {
    ring: PacketRing<B>,
    counters: Arc<PortCounters>,
    q: u16,
}

impl<B: PacketBuf> TxQueue for RingTx<B> {
    type Buf = B;

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst<B>) -> usize {
        let bytes: usize = pkts.iter().map(|m| m.len()).sum();
        let sent = self.ring.enqueue_burst(pkts);
        let c = self.counters.tx(self.q as usize);
        c.packets.add(sent as u64);
        let unsent: usize = pkts.iter().map(|m| m.len()).sum();
        c.bytes.add((bytes - unsent) as u64);
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};

    #[test]
    fn pair_forwards_both_ways_and_backpressures() {
        let mut c = MempoolConfig::new("ring-test", 64);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let (mut a, mut b) = RingPort::<Mbuf>::pair(0, 1, 1, 8).unwrap();
        let mut atx = a.tx_queue(0).unwrap();
        let mut brx = b.rx_queue(0).unwrap();
        let mut burst = Burst::new();
        for i in 0..10u8 {
            burst.push(Mbuf::from_slice(&pool, &[i; 60]).unwrap()).unwrap();
        }
        assert_eq!(atx.tx_burst(&mut burst), 8, "ring of 8 takes 8");
        assert_eq!(burst.len(), 2);
        assert_eq!(burst[0].data()[0], 8, "the unsent stay in order");
        let mut got = Burst::new();
        assert_eq!(brx.rx_burst(&mut got, 32), 8);
        assert!(got.iter().enumerate().all(|(i, m)| m.data()[0] == i as u8 && m.port() == 1));
        assert_eq!(a.stats().opackets, 8);
        assert_eq!(a.stats().obytes, 480);
        assert_eq!(b.stats().ipackets, 8);
        drop((got, burst));
        assert_eq!(pool.in_use(), 0);
    }
}
