//! Forwarding stages generic over the buffer type: DPDK l2fwd's MAC rewrite and the pipeline
//! [`Distributor`].

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::lcore::{DropReason, Forward, Tx};
use crate::port::{MacAddr, MAX_PORTS};

/// How many packets ahead of the one being processed to prefetch.
const PREFETCH_OFFSET: usize = 4;

/// DPDK l2fwd's forwarding: each packet goes out on the port paired with its input port; with
/// MAC updating on (the default), the source MAC becomes the tx port's MAC and the destination
/// `02:00:00:00:00:<tx port>` (or the `--eth-dest` address given for that port).
#[derive(Debug, Clone)]
pub struct L2Fwd {
    dst_port: [u16; MAX_PORTS],
    /// Precomputed destination + source MAC per tx port.
    rewrite: [[u8; 12]; MAX_PORTS],
    mac_updating: bool,
}

/// A port id meaning "no destination": packets from such a port are dropped (filtered).
pub const NO_PORT: u16 = u16::MAX;

impl L2Fwd {
    /// Forwarding with no port pairs yet and MAC updating on.
    pub fn new() -> Self {
        let mut rewrite = [[0u8; 12]; MAX_PORTS];
        for (p, r) in rewrite.iter_mut().enumerate() {
            r[..6].copy_from_slice(&MacAddr::local(p as u8).0);
        }
        L2Fwd { dst_port: [NO_PORT; MAX_PORTS], rewrite, mac_updating: true }
    }

    /// Pairs ports `a` and `b` both ways (DPDK l2fwd pairs 0↔1, 2↔3, … or `--portmap`).
    /// Ports at or above [`MAX_PORTS`] are ignored.
    pub fn pair(&mut self, a: u16, b: u16) -> &mut Self {
        self.route(a, b).route(b, a)
    }

    /// Sends what arrives on `from` out of `to` (one way).
    pub fn route(&mut self, from: u16, to: u16) -> &mut Self {
        if (from as usize) < MAX_PORTS {
            self.dst_port[from as usize] = to;
        }
        self
    }

    /// Sets tx port `port`'s own MAC (the rewritten source address).
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        if let Some(r) = self.rewrite.get_mut(port as usize) {
            r[6..].copy_from_slice(&mac.0);
        }
        self
    }

    /// Sets the destination MAC written for packets sent on `port` (`--eth-dest`).
    pub fn set_eth_dest(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        if let Some(r) = self.rewrite.get_mut(port as usize) {
            r[..6].copy_from_slice(&mac.0);
        }
        self
    }

    /// Turns the MAC rewrite on or off (`--no-mac-updating`).
    pub fn set_mac_updating(&mut self, on: bool) -> &mut Self {
        self.mac_updating = on;
        self
    }

    /// The output port for input port `port`, if any.
    pub fn dst_port(&self, port: u16) -> Option<u16> {
        self.dst_port.get(port as usize).copied().filter(|&p| p != NO_PORT)
    }

    /// Rewrites one packet's MACs for output port `out`; `false` when it is shorter than the
    /// two addresses.
    #[inline(always)]
    pub fn rewrite<B: PacketBuf>(&self, pkt: &mut B, out: u16) -> bool {
        let d = pkt.data_mut();
        match (d.get_mut(..12), self.rewrite.get(out as usize)) {
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

impl<B: PacketBuf> Forward<B> for L2Fwd {
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        // In chunks of 64 (a small array of decisions): pass 1 decides and rewrites,
        // prefetching a few packets ahead; pass 2 hands each packet to its tx buffer.
        const CHUNK: usize = 64;
        let mut outs = [NO_PORT; CHUNK];
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
                let out = self.dst_port[inp as usize % MAX_PORTS];
                outs[i] = if out == NO_PORT || !self.mac_updating || self.rewrite(m, out) { out } else { MALFORMED };
            }
            let mut i = 0;
            pkts.drain_front(n, |m| {
                match outs[i] {
                    NO_PORT => tx.drop_pkt(m, DropReason::Filtered),
                    MALFORMED => tx.drop_pkt(m, DropReason::Malformed),
                    out => tx.send(out, m),
                }
                i += 1;
            });
        }
    }
}

/// Internal marker of pass 1: too short to rewrite.
const MALFORMED: u16 = NO_PORT - 1;

/// The pipeline rx stage: spreads packets over worker rings by flow hash, keeping each flow
/// on one worker (so its order is kept). Ring `k` is tx port `first_ring + k`.
#[derive(Debug, Clone)]
pub struct Distributor {
    first_ring: u16,
    rings: u16,
}

impl Distributor {
    /// Spreads over `rings` ring ports numbered from `first_ring`.
    pub fn new(first_ring: u16, rings: u16) -> Self {
        Distributor { first_ring, rings: rings.max(1) }
    }
}

impl<B: PacketBuf> Forward<B> for Distributor {
    #[inline]
    fn forward(&mut self, _rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let h = if m.hash() != 0 { m.hash() } else { flow_hash(m.data()) };
            let k = ((h as u64 * self.rings as u64) >> 32) as u16;
            tx.send(self.first_ring + k, m);
        });
    }
}

/// A software flow hash of an Ethernet frame: the IPv4/IPv6 addresses, protocol and L4 ports
/// when present (one VLAN tag is skipped), else the MAC addresses. Symmetric flows are not
/// merged. Used when the packet carries no hash from the NIC or the classifier.
pub fn flow_hash(d: &[u8]) -> u32 {
    #[inline(always)]
    fn mix(h: u64, v: u64) -> u64 {
        (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
    }
    let be16 = |o: usize| d.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut off = 12;
    let mut et = be16(off).unwrap_or(0);
    if et == 0x8100 || et == 0x88a8 {
        off += 4;
        et = be16(off).unwrap_or(0);
    }
    let l3 = off + 2;
    let mut h = 0x243f_6a88_85a3_08d3u64;
    let l4 = match et {
        0x0800 if d.len() >= l3 + 20 => {
            let ihl = (d[l3] & 0xf) as usize * 4;
            let proto = d[l3 + 9];
            h = mix(h, u64::from(u32::from_be_bytes([d[l3 + 12], d[l3 + 13], d[l3 + 14], d[l3 + 15]])));
            h = mix(h, u64::from(u32::from_be_bytes([d[l3 + 16], d[l3 + 17], d[l3 + 18], d[l3 + 19]])));
            h = mix(h, proto as u64);
            let frag = u16::from_be_bytes([d[l3 + 6], d[l3 + 7]]) & 0x3fff != 0;
            (matches!(proto, 6 | 17 | 132) && !frag && ihl >= 20).then_some(l3 + ihl)
        }
        0x86dd if d.len() >= l3 + 40 => {
            for c in d[l3 + 8..l3 + 40].chunks_exact(8) {
                h = mix(h, u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
            }
            let nh = d[l3 + 6];
            h = mix(h, nh as u64);
            matches!(nh, 6 | 17 | 132).then_some(l3 + 40)
        }
        _ => {
            if let Some(m) = d.get(..12) {
                h = mix(h, u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]));
                h = mix(h, u64::from_be_bytes([0, 0, m[6], m[7], m[8], m[9], m[10], m[11]]));
            }
            None
        }
    };
    if let Some(p) = l4.and_then(|o| d.get(o..o + 4)) {
        h = mix(h, u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as u64);
    }
    (h >> 32) as u32 ^ h as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_never_panics_and_separates_flows() {
        for len in 0..80 {
            let _ = flow_hash(&vec![0x45; len]);
            let mut v = vec![0u8; len];
            if len > 14 {
                v[12] = 0x08;
                v[14] = 0x4f;
            }
            let _ = flow_hash(&v);
        }
        let mut a = vec![0u8; 64];
        a[12] = 0x08;
        a[14] = 0x45;
        a[23] = 17;
        let mut b = a.clone();
        b[37] = 1; // different dst port
        assert_ne!(flow_hash(&a), flow_hash(&b));
    }
}
