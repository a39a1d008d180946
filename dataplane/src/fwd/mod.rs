//! Forwarding stages generic over the buffer type: DPDK l2fwd's MAC rewrite ([`L2Fwd`]), the
//! pipeline [`Distributor`], and testpmd's forwarding modes [`Io`], [`MacSwap`], [`RxOnly`]
//! and [`IcmpEcho`] (l3fwd is in [`crate::l3fwd`]). Shared by them: the port pairs
//! ([`PortPairs`]) and the MAC rewrite table ([`MacRewrite`], which l3fwd uses too).

mod distributor;
mod l2fwd;
mod testpmd;

pub use distributor::Distributor;
pub use l2fwd::{L2Fwd, NO_PORT};
pub use testpmd::{IcmpEcho, Io, MacSwap, RxOnly};

use crate::port::{MacAddr, MAX_PORTS};

/// How many packets ahead of the one being processed to prefetch.
pub(crate) const PREFETCH_OFFSET: usize = 4;

/// The shortest frame l2fwd and macswap forward: an Ethernet header. Shorter is not Ethernet
/// (no EtherType) and is dropped as `Malformed`; 14–59-byte runts are forwarded as they are,
/// as DPDK's l2fwd does (a NIC pads them on the wire).
pub(crate) const ETH_HDR: usize = crate::wire::EthernetFrame::<&[u8]>::HEADER_LEN;

/// The MAC addresses written into forwarded frames, per output port: the destination (the
/// next hop: `--eth-dest`, by default `02:00:00:00:00:<port>` as in DPDK) and the source (the
/// port's own MAC), kept as the 12 bytes that start the Ethernet header. One table for l2fwd
/// and l3fwd.
#[derive(Debug, Clone)]
pub struct MacRewrite {
    hdr: [[u8; 12]; MAX_PORTS],
}

impl Default for MacRewrite {
    fn default() -> Self {
        Self::new()
    }
}

impl MacRewrite {
    /// Destinations `02:00:00:00:00:<port>`, sources all zero until set.
    pub fn new() -> Self {
        let mut hdr = [[0u8; 12]; MAX_PORTS];
        for (p, r) in hdr.iter_mut().enumerate() {
            r[..6].copy_from_slice(&MacAddr::local(p as u8).0);
        }
        MacRewrite { hdr }
    }

    /// Sets port `port`'s own MAC (the rewritten source address); ports at or above
    /// [`MAX_PORTS`] are ignored.
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) {
        if let Some(r) = self.hdr.get_mut(port as usize) {
            r[6..].copy_from_slice(&mac.0);
        }
    }

    /// Sets the destination MAC written for packets sent on `port`; ports at or above
    /// [`MAX_PORTS`] are ignored.
    pub fn set_eth_dest(&mut self, port: u16, mac: MacAddr) {
        if let Some(r) = self.hdr.get_mut(port as usize) {
            r[..6].copy_from_slice(&mac.0);
        }
    }

    /// The 12 bytes (destination, source) for output port `port`; `None` out of range.
    #[inline(always)]
    pub fn get(&self, port: u16) -> Option<&[u8; 12]> {
        self.hdr.get(port as usize)
    }

    /// [`MacRewrite::get`] for a port number of any width (a lookup's next hop).
    #[inline(always)]
    pub(crate) fn get_wide(&self, port: u32) -> Option<&[u8; 12]> {
        self.hdr.get(usize::try_from(port).ok()?)
    }

    /// Port `port`'s own MAC (zero when out of range or not set).
    pub fn port_mac(&self, port: u16) -> [u8; 6] {
        let mut m = [0; 6];
        if let Some(r) = self.get(port) {
            m.copy_from_slice(&r[6..]);
        }
        m
    }
}

/// Port pairs for the testpmd-style stages: what arrives on a port leaves on its peer.
#[derive(Debug, Clone)]
pub struct PortPairs {
    dst_port: [u16; MAX_PORTS],
}

impl Default for PortPairs {
    fn default() -> Self {
        PortPairs { dst_port: [NO_PORT; MAX_PORTS] }
    }
}

impl PortPairs {
    /// Pairs `a` and `b` both ways; ports at or above [`MAX_PORTS`] are ignored.
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

    /// The output port for input port `port`, if any.
    #[inline(always)]
    pub fn dst_port(&self, port: u16) -> Option<u16> {
        self.dst_port.get(port as usize).copied().filter(|&p| p != NO_PORT)
    }
    /// The table entry for input port `port` (taken modulo [`MAX_PORTS`]): the output port or
    /// [`NO_PORT`]. For the per-packet loops, which test `NO_PORT` themselves.
    #[inline(always)]
    fn raw(&self, port: u16) -> u16 {
        self.dst_port[port as usize % MAX_PORTS]
    }
}
