//! testpmd's forwarding modes: `io`, `macswap`, `rxonly` and `icmpecho`.

use super::{PortPairs, ETH_HDR, PREFETCH_OFFSET};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::l3fwd::ArpOwner;
use crate::port::{MacAddr, MAX_PORTS};
use crate::stage::{DropReason, Forward, Tx};
use crate::wire::{EthernetFrame, Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet};

/// testpmd `io` mode: every packet leaves untouched on the port paired with its input port
/// (packets from an unpaired port are dropped as `Filtered`).
#[derive(Debug, Clone, Default)]
pub struct Io {
    /// The port pairs.
    pub pairs: PortPairs,
}

impl<B: PacketBuf> Forward<B> for Io {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::None
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let n = pkts.len();
        match self.pairs.dst_port(rx_port) {
            // The whole burst at once, straight to the queue when nothing is buffered, as
            // testpmd's io mode hands its rx array to tx_burst.
            Some(o) => tx.send_front(o, pkts, n),
            None => pkts.drain_front(n, |m| tx.drop_pkt(m, DropReason::Filtered)),
        }
    }
}

/// testpmd `macswap` mode: swaps the source and destination MAC of every packet and sends it
/// on the paired port. Frames shorter than an Ethernet header (14 bytes) are dropped as
/// `Malformed`.
#[derive(Debug, Clone, Default)]
pub struct MacSwap {
    /// The port pairs.
    pub pairs: PortPairs,
}

impl<B: PacketBuf> Forward<B> for MacSwap {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::None
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let out = self.pairs.dst_port(rx_port);
        for p in pkts.iter().take(PREFETCH_OFFSET) {
            p.prefetch();
        }
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let Some(o) = out else { return tx.drop_pkt(m, DropReason::Filtered) };
            match m.data_mut().get_mut(..ETH_HDR) {
                Some(h) => {
                    let mut dst = [0u8; 6];
                    dst.copy_from_slice(&h[..6]);
                    h.copy_within(6..12, 0);
                    h[6..12].copy_from_slice(&dst);
                    tx.send(o, m);
                }
                None => tx.drop_pkt(m, DropReason::Malformed),
            }
        });
    }
}

/// testpmd `rxonly` mode: frees every packet. They are counted in [`RxOnly::counter`], not
/// as drops (the lcore's per-port rx counters count them as received too).
#[derive(Debug, Clone, Default)]
pub struct RxOnly {
    counter: std::sync::Arc<crate::stats::Counter>,
}

impl RxOnly {
    /// The count of packets consumed (shared by clones of this stage).
    pub fn counter(&self) -> std::sync::Arc<crate::stats::Counter> {
        self.counter.clone()
    }
}

impl<B: PacketBuf> Forward<B> for RxOnly {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::None
    }
    #[inline]
    fn forward(&mut self, _rx_port: u16, pkts: &mut Burst<B>, _tx: &mut Tx<B>) {
        self.counter.add(pkts.len() as u64);
        pkts.clear();
    }
}

/// testpmd `icmpecho` mode: answers ICMPv4 echo requests and ARP requests for the addresses
/// configured on the receiving port ([`IcmpEcho::add_addr`]), back out of the receiving port.
/// When no address is configured at all, every echo request and every ARP request is
/// answered, as testpmd does (so a kernel `ping` of any address on the link gets replies),
/// except ARP probes and announcements (RFC 5227).
/// Everything else is dropped as `Filtered`; IPv4 headers failing the RFC 1812 checks as
/// `Malformed` / `BadChecksum`.
#[derive(Debug, Clone)]
pub struct IcmpEcho {
    addrs4: Vec<(u16, [u8; 4])>,
    macs: [[u8; 6]; MAX_PORTS],
}

impl Default for IcmpEcho {
    fn default() -> Self {
        Self::new()
    }
}

impl IcmpEcho {
    /// A responder with no addresses and port MACs `02:00:00:00:00:<port>`.
    pub fn new() -> Self {
        IcmpEcho { addrs4: vec![], macs: std::array::from_fn(|p| MacAddr::local(p as u8).0) }
    }

    /// Sets port `port`'s own MAC (the source of replies).
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        if let Some(m) = self.macs.get_mut(port as usize) {
            *m = mac.0;
        }
        self
    }

    /// Gives port `port` the IPv4 address `addr`.
    pub fn add_addr(&mut self, port: u16, addr: std::net::Ipv4Addr) -> &mut Self {
        self.addrs4.push((port, addr.octets()));
        self
    }

    /// Turns an echo request into the reply in place; the outcome for the packet.
    #[inline]
    fn echo<B: PacketBuf>(&self, rx_port: u16, pkt: &mut B) -> Result<(), DropReason> {
        let (l3, et) = crate::l3fwd::l3_of(pkt).ok_or(DropReason::Malformed)?;
        let d = pkt.data_mut();
        let mac = self.macs.get(rx_port as usize).copied().unwrap_or_default();
        match et {
            0x0806 => {
                let owner = if self.addrs4.is_empty() { ArpOwner::Any } else { ArpOwner::Addrs(&self.addrs4) };
                return if crate::l3fwd::arp_reply(owner, mac, rx_port, d, l3) {
                    Ok(())
                } else {
                    Err(DropReason::Filtered)
                };
            }
            0x0800 => {}
            _ => return Err(DropReason::Filtered),
        }
        let ihl = crate::l3fwd::ipv4_check(&d[l3..])?;
        // The checks passed: the IPv4 header is whole, so the view's getters cannot panic.
        let ip = Ipv4Packet::new_unchecked(&d[l3..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let for_us = if self.addrs4.is_empty() {
            true
        } else {
            self.addrs4.iter().any(|&(p, a)| p == rx_port && a == dst.octets())
        };
        if ip.next_header() != IpProtocol::Icmp || ip.is_fragment() || !for_us {
            return Err(DropReason::Filtered);
        }
        let icmp = l3 + ihl;
        match Icmpv4Packet::new_checked(&d[icmp..]) {
            Ok(m) if m.msg_type() == Icmpv4Message::EchoRequest && m.msg_code() == 0 => {}
            _ => return Err(DropReason::Filtered),
        }
        // Echo reply: swap the addresses (the IPv4 checksum is unchanged by a swap), type 8 -> 0
        // with an RFC 1624 update of the ICMP checksum.
        let mut eth = EthernetFrame::new_unchecked(&mut *d);
        let requester = eth.src_addr();
        eth.set_dst_addr(requester);
        eth.set_src_addr(MacAddr(mac));
        let mut ip = Ipv4Packet::new_unchecked(&mut d[l3..]);
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        let mut m = Icmpv4Packet::new_unchecked(&mut d[icmp..]);
        let c = crate::wire::checksum::update_u16(m.checksum(), 0x0800, 0x0000);
        m.set_msg_type(Icmpv4Message::EchoReply);
        m.set_checksum(c);
        Ok(())
    }
}

impl<B: PacketBuf> Forward<B> for IcmpEcho {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::Lengths
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let n = pkts.len();
        pkts.drain_front(n, |mut m| match self.echo(rx_port, &mut m) {
            Ok(()) => tx.send(rx_port, m),
            Err(r) => tx.drop_pkt(m, r),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
    use crate::port::TxQueue;
    use crate::stage::LcoreStats;
    use std::sync::{Arc, Mutex};

    /// What a tx queue took: (port, first byte of the frame), in order; takes at most `cap`
    /// per call.
    struct Capture(u16, usize, Arc<Mutex<Vec<(u16, u8)>>>);

    impl TxQueue for Capture {
        type Buf = Mbuf;
        fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
            let n = pkts.len().min(self.1);
            let mut g = self.2.lock().unwrap();
            pkts.drain_front(n, |m| g.push((self.0, m.data()[0])));
            n
        }
    }

    /// io mode: every packet to the paired port in order, whether the burst goes straight to
    /// the queue or through the buffer (bursts smaller than the tx burst, a buffer not
    /// empty); an unpaired port's packets are filtered; what the queue refuses is a TxFull
    /// drop.
    #[test]
    fn io_forwards_bursts_to_the_paired_port_in_order() {
        let mut c = MempoolConfig::new("io-test", 256);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let stats = Arc::new(LcoreStats::default());
        let mut tx: Tx<Mbuf> = Tx::new(stats.clone(), 4);
        let got = Arc::new(Mutex::new(vec![]));
        tx.attach(0, Box::new(Capture(0, usize::MAX, got.clone()))).unwrap();
        tx.attach(1, Box::new(Capture(1, 6, got.clone()))).unwrap();
        let mut io = Io { pairs: PortPairs::default() };
        io.pairs.pair(0, 1);
        let mut next = 0u8;
        let mut burst = |n: usize| {
            let mut b: Burst<Mbuf> = Burst::new();
            for _ in 0..n {
                let _ = b.push(Mbuf::from_slice(&pool, &[next; 60]).unwrap());
                next += 1;
            }
            b
        };
        // 3 packets (buffered), then 8 (the buffer is not empty: buffered, flushed at 4),
        // then 8 on an empty buffer (straight to the queue, which takes 6: 2 TxFull).
        for (port, n) in [(0, 3), (0, 8), (0, 1), (0, 8), (1, 5), (2, 3)] {
            let mut b = burst(n);
            Forward::forward(&mut io, port, &mut b, &mut tx);
            assert!(b.is_empty());
        }
        tx.flush_all();
        let got = got.lock().unwrap().clone();
        let to1: Vec<u8> = got.iter().filter(|g| g.0 == 1).map(|g| g.1).collect();
        let to0: Vec<u8> = got.iter().filter(|g| g.0 == 0).map(|g| g.1).collect();
        assert_eq!(to1, (0..18).collect::<Vec<u8>>(), "in order, all but the two refused");
        assert_eq!(to0, (20..25).collect::<Vec<u8>>());
        assert_eq!(stats.drops[DropReason::TxFull as usize].get(), 2);
        assert_eq!(stats.drops[DropReason::Filtered as usize].get(), 3);
    }
}
