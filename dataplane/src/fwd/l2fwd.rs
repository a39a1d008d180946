//! DPDK l2fwd's stage: each packet out of its input port's peer with the MACs rewritten.

use super::{MacRewrite, PortPairs, ETH_HDR, PREFETCH_OFFSET};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::port::{MacAddr, MAX_PORTS};
use crate::stage::{DropReason, Forward, Tx};

/// DPDK l2fwd's forwarding: each packet goes out on the port paired with its input port; with
/// MAC updating on (the default), the source MAC becomes the tx port's MAC and the destination
/// `02:00:00:00:00:<tx port>` (or the `--eth-dest` address given for that port). A frame
/// shorter than an Ethernet header (14 bytes) is dropped as `Malformed`, with or without MAC
/// updating; shorter-than-minimum frames of 14–59 bytes are forwarded unchanged in length.
#[derive(Debug, Clone)]
pub struct L2Fwd {
    pairs: PortPairs,
    /// Precomputed destination + source MAC per tx port.
    rewrite: MacRewrite,
    mac_updating: bool,
}

/// True when the classifier found no Ethernet header: the frame is shorter than 14 bytes.
#[inline(always)]
fn not_ethernet<B: PacketBuf>(m: &B) -> bool {
    m.ptype() & crate::classify::ptype::L2_MASK == 0
}

/// A port id meaning "no destination": packets from such a port are dropped (filtered).
pub const NO_PORT: u16 = u16::MAX;

impl L2Fwd {
    /// Forwarding with no port pairs yet and MAC updating on.
    pub fn new() -> Self {
        L2Fwd { pairs: PortPairs::default(), rewrite: MacRewrite::new(), mac_updating: true }
    }

    /// Pairs ports `a` and `b` both ways (DPDK l2fwd pairs 0↔1, 2↔3, … or `--portmap`).
    /// Ports at or above [`MAX_PORTS`] are ignored.
    pub fn pair(&mut self, a: u16, b: u16) -> &mut Self {
        self.pairs.pair(a, b);
        self
    }

    /// Sends what arrives on `from` out of `to` (one way).
    pub fn route(&mut self, from: u16, to: u16) -> &mut Self {
        self.pairs.route(from, to);
        self
    }

    /// Sets tx port `port`'s own MAC (the rewritten source address).
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.rewrite.set_port_mac(port, mac);
        self
    }

    /// Sets the destination MAC written for packets sent on `port` (`--eth-dest`).
    pub fn set_eth_dest(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.rewrite.set_eth_dest(port, mac);
        self
    }

    /// Turns the MAC rewrite on or off (`--no-mac-updating`).
    pub fn set_mac_updating(&mut self, on: bool) -> &mut Self {
        self.mac_updating = on;
        self
    }

    /// The output port for input port `port`, if any.
    pub fn dst_port(&self, port: u16) -> Option<u16> {
        self.pairs.dst_port(port)
    }

    /// Rewrites one packet's MACs for output port `out`; `false` when it is shorter than an
    /// Ethernet header or `out` is out of range.
    #[inline(always)]
    pub fn rewrite<B: PacketBuf>(&self, pkt: &mut B, out: u16) -> bool {
        let d = pkt.data_mut();
        if d.len() < ETH_HDR {
            return false;
        }
        match (d.get_mut(..12), self.rewrite.get(out)) {
            (Some(h), Some(r)) => {
                h.copy_from_slice(r);
                true
            }
            _ => false,
        }
    }
}

impl Default for L2Fwd {
    fn default() -> Self {
        Self::new()
    }
}

impl L2Fwd {
    /// The fast path, for a burst whose packets share one input port (every burst read from
    /// a port's own queue): one pass that rewrites the MACs, as testpmd's mac mode does, then
    /// the whole run goes to the output port at once ([`Tx::send_front`]). It stops at the
    /// first packet from another input port or shorter than an Ethernet header; returns how many
    /// packets it handled (they have left `pkts`).
    #[inline(always)]
    fn forward_run<B: PacketBuf>(&self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) -> usize {
        let Some(first) = pkts.first() else { return 0 };
        let raw = first.port();
        let inp = if (raw as usize) < MAX_PORTS { raw } else { rx_port };
        let out = self.pairs.raw(inp);
        // NO_PORT and ports out of range have no rewrite entry: the per-packet path drops them.
        let Some(&r) = self.rewrite.get(out) else { return 0 };
        for p in pkts.iter().take(PREFETCH_OFFSET) {
            p.prefetch();
        }
        let n = pkts.len();
        let mut k = 0;
        while k < n {
            if let Some(p) = pkts.get(k + PREFETCH_OFFSET) {
                p.prefetch();
            }
            let m = &mut pkts[k];
            if m.port() != raw || not_ethernet(m) {
                break;
            }
            if self.mac_updating {
                m.data_mut()[..12].copy_from_slice(&r);
            }
            k += 1;
        }
        tx.send_front(out, pkts, k);
        k
    }
}

impl<B: PacketBuf> Forward<B> for L2Fwd {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::L2
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        self.forward_run(rx_port, pkts, tx);
        if pkts.is_empty() {
            return;
        }
        // Packet by packet, in chunks of 64 (a small array of decisions): pass 1 decides and
        // rewrites, prefetching a few packets ahead; pass 2 hands each packet to its tx buffer.
        const CHUNK: usize = 64;
        let mut outs: [Result<u16, DropReason>; CHUNK] = [Err(DropReason::Filtered); CHUNK];
        for p in pkts.iter().take(PREFETCH_OFFSET) {
            p.prefetch();
        }
        while !pkts.is_empty() {
            let n = pkts.len().min(CHUNK);
            for i in 0..n {
                if let Some(p) = pkts.get(i + PREFETCH_OFFSET) {
                    p.prefetch();
                }
                let m = &mut pkts[i];
                let inp = if (m.port() as usize) < MAX_PORTS { m.port() } else { rx_port };
                let out = self.pairs.raw(inp);
                outs[i] = if out == NO_PORT {
                    Err(DropReason::Filtered)
                } else if self.mac_updating {
                    if self.rewrite(m, out) {
                        Ok(out)
                    } else {
                        Err(DropReason::Malformed)
                    }
                } else if not_ethernet(m) {
                    Err(DropReason::Malformed)
                } else {
                    Ok(out)
                };
            }
            let mut i = 0;
            pkts.drain_front(n, |m| {
                match outs[i] {
                    Ok(out) => tx.send(out, m),
                    Err(r) => tx.drop_pkt(m, r),
                }
                i += 1;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcore::Lcore;
    use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
    use crate::port::{RxQueue, TxQueue};
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    /// Hands out the scripted bursts, one per call.
    struct Script(Vec<Vec<Mbuf>>);

    impl RxQueue for Script {
        type Buf = Mbuf;
        fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
            let Some(b) = self.0.pop() else { return 0 };
            assert!(b.len() <= max.min(out.spare()), "the script fits the lcore's rx burst");
            let n = b.len();
            out.extend(b);
            n
        }
    }

    /// What a [`Capture`] queue saw: (packet id, first 12 bytes), in order.
    type Seen = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;

    /// Takes up to `take` packets per call (cycling), recording (id, first 12 bytes) in order.
    struct Capture {
        take: Vec<usize>,
        calls: usize,
        seen: Seen,
    }

    impl TxQueue for Capture {
        type Buf = Mbuf;
        fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
            let k = self.take[self.calls % self.take.len()].min(pkts.len());
            self.calls += 1;
            let mut seen = self.seen.lock().unwrap();
            pkts.drain_front(k, |m| seen.push((m.hash(), m.data().iter().take(12).copied().collect())));
            k
        }
    }

    /// One scripted burst of (`m.port` value, length): mostly one port's full-size frames (as
    /// a port's own queue delivers them), sometimes ending in other ports or short frames.
    fn burst() -> impl Strategy<Value = Vec<(u16, usize)>> {
        let port = || prop::sample::select(vec![0u16, 0, 0, 1, 2, 3, 5, 40]);
        let len = || prop::sample::select(vec![64usize, 64, 15, 14, 13, 12, 11, 0]);
        (port(), 0usize..70, prop::collection::vec((port(), len()), 0..10)).prop_map(|(p, n, tail)| {
            let mut v = vec![(p, 64); n];
            v.extend(tail);
            v
        })
    }

    proptest! {
        /// L2Fwd through an lcore equals a packet-by-packet model: the same packets reach the
        /// same tx queue in the same order with the same rewrite, every other one is counted
        /// under the model's drop reason, and every mbuf returns to the pool.
        #[test]
        fn l2fwd_matches_per_packet_model(
            bursts in prop::collection::vec(burst(), 1..12),
            tx_burst in 1usize..48,
            mac_updating: bool,
            refuse in any::<bool>(),
        ) {
            let mut c = MempoolConfig::new("l2fwd-model", 2048);
            c.backing = MemBacking::Normal;
            let pool = Mempool::new(c).unwrap();
            let mut fwd = L2Fwd::new();
            // 0<->1 paired; 2 -> 7 (no tx queue here); 3 -> 40 (out of range); 5 unpaired.
            fwd.pair(0, 1).route(2, 7).route(3, 40).set_mac_updating(mac_updating);
            fwd.set_port_mac(0, MacAddr([2, 9, 9, 9, 9, 0])).set_port_mac(1, MacAddr([2, 9, 9, 9, 9, 1]));
            let model = fwd.clone();
            let mut l = Lcore::new("model", None, fwd);
            l.set_rx_burst(MAX_PORTS * 16).unwrap().set_tx_burst(tx_burst).unwrap();
            let seen: [Seen; 2] = Default::default();
            // With `refuse`, the queues take fewer packets than offered now and then.
            let take = if refuse { vec![usize::MAX, 5, usize::MAX, 0] } else { vec![usize::MAX] };
            for (p, s) in seen.iter().enumerate() {
                l.add_tx(p as u16, Box::new(Capture { take: take.clone(), calls: 0, seen: s.clone() })).unwrap();
            }
            let mut id = 0u32;
            let mut want: [Vec<(u32, Vec<u8>)>; 2] = Default::default();
            let mut drops = [0u64; DropReason::COUNT];
            let mut script = vec![];
            for b in &bursts {
                let mut v = vec![];
                for &(port, len) in b {
                    id += 1;
                    let mut frame = vec![0xee; len];
                    if len >= 12 {
                        frame[..12].copy_from_slice(&[1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3]);
                    }
                    let mut m = Mbuf::from_slice(&pool, &frame).unwrap();
                    m.set_port(port);
                    m.set_hash(id);
                    v.push(m);
                    // The model: rx port 0 stands in for ports out of range.
                    let inp = if (port as usize) < MAX_PORTS { port } else { 0 };
                    match model.dst_port(inp) {
                        None => drops[DropReason::Filtered as usize] += 1,
                        Some(o) if len < 14 || (mac_updating && o as usize >= MAX_PORTS) => {
                            drops[DropReason::Malformed as usize] += 1
                        }
                        Some(o) if o > 1 => drops[DropReason::NoTxPort as usize] += 1,
                        Some(o) => {
                            let mut f = frame.clone();
                            if mac_updating {
                                f[..12].copy_from_slice(model.rewrite.get(o).unwrap());
                            }
                            want[o as usize].push((id, f.into_iter().take(12).collect()));
                        }
                    }
                }
                script.push(v);
            }
            script.reverse();
            l.add_rx(0, Box::new(Script(script)));
            let stats = l.stats();
            let mut burst = Burst::new();
            for _ in &bursts {
                l.poll_once(&mut burst, false);
            }
            l.poll_once(&mut burst, true);
            let ps = |p: usize| (stats.ports[p].tx.get(), stats.ports[p].dropped.get());
            let refused = ps(0).1 + ps(1).1;
            for (p, s) in seen.iter().enumerate() {
                let got = s.lock().unwrap().clone();
                prop_assert_eq!(ps(p).0, got.len() as u64);
                prop_assert_eq!(ps(p).0 + ps(p).1, want[p].len() as u64, "port {} sent + refused", p);
                if refuse {
                    // What got through is an in-order subsequence of the model's.
                    let mut it = want[p].iter();
                    prop_assert!(got.iter().all(|g| it.any(|w| w == g)), "port {} out of order", p);
                } else {
                    prop_assert_eq!(&got, &want[p], "port {}", p);
                }
            }
            drops[DropReason::TxFull as usize] = refused;
            for r in DropReason::ALL {
                prop_assert_eq!(stats.drops[r as usize].get(), drops[r as usize], "{:?}", r);
            }
            drop((l, burst));
            prop_assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
        }
    }
}
