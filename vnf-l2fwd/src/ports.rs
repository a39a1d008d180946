//! Opening `--port` specs (the grammar is the library's: [`dataplane::port::spec`]).

use dataplane::mbuf::{Mbuf, Mempool};
use dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use dataplane::port::af_xdp::{AfXdpConfig, AfXdpPort, BindMode, BusyPoll, XdpMode};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::pcap::{check_files, PcapConfig, PcapPort};
use dataplane::port::pci::{PciPort, PciPortConfig};
use dataplane::port::ring::RingPort;
use dataplane::port::{BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortError, PortInfo, PortNote, PortStats};

pub use dataplane::port::spec::PortSpec;

/// An opened port of any native backend, behind one type so a worker can hold a mix.
pub enum AnyPort {
    Null(NullPort),
    Ring(RingPort<Mbuf>),
    Pcap(PcapPort),
    AfXdp(AfXdpPort),
    AfPacket(AfPacketPort),
    Pci(PciPort),
}

macro_rules! each {
    ($s:expr, $p:ident => $e:expr) => {
        match $s {
            AnyPort::Null($p) => $e,
            AnyPort::Ring($p) => $e,
            AnyPort::Pcap($p) => $e,
            AnyPort::AfXdp($p) => $e,
            AnyPort::AfPacket($p) => $e,
            AnyPort::Pci($p) => $e,
        }
    };
}

impl Port for AnyPort {
    type Buf = Mbuf;
    fn info(&self) -> PortInfo {
        each!(self, p => p.info())
    }
    fn mac(&self) -> MacAddr {
        each!(self, p => p.mac())
    }
    fn link(&self) -> LinkStatus {
        each!(self, p => p.link())
    }
    fn stats(&self) -> PortStats {
        each!(self, p => p.stats())
    }
    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        each!(self, p => p.set_promiscuous(on))
    }
    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        each!(self, p => p.rx_queue(q))
    }
    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        each!(self, p => p.tx_queue(q))
    }
    fn notes(&self) -> Vec<PortNote> {
        each!(self, p => p.notes())
    }
}

/// Checks the pcap ports' files before any port is opened, so that a refusal leaves every file
/// as it was: no file is one port's `rx` and any port's `tx`, or two ports' `tx` (compared by
/// identity: see [`check_files`]); and each `rx` is there and is an Ethernet capture the port
/// can read (FIFOs and devices are left to the port, since reading one consumes it).
///
/// # Errors
/// The first problem, naming the port(s) and file(s).
pub fn check_pcap_files(specs: &[PortSpec]) -> Result<(), String> {
    let cfgs: Vec<(u16, PcapConfig)> = specs
        .iter()
        .enumerate()
        .filter_map(|(id, s)| match s {
            PortSpec::Pcap { rx, tx } => Some((id as u16, PcapConfig { rx: rx.clone(), tx: tx.clone(), mac: None })),
            _ => None,
        })
        .collect();
    check_files(cfgs.iter().map(|(id, c)| (*id, c))).map_err(|e| format!("--port: {e}"))?;
    for (id, c) in &cfgs {
        if let Some(rx) = c.rx.as_deref().filter(|p| !std::fs::metadata(p).is_ok_and(|m| !m.is_file())) {
            PcapPort::check_input(*id, rx).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Opens port `id` from its spec (`queues` 0, not given: one); `promisc` puts
/// kernel-interface ports in promiscuous mode.
pub fn open(id: u16, spec: &PortSpec, pool: &Mempool, promisc: bool) -> Result<AnyPort, PortError> {
    Ok(match spec {
        PortSpec::Null { size, queues } => {
            let mut c = NullConfig::new(id);
            c.frame_size = *size;
            c.rx_queues = (*queues).max(1);
            c.tx_queues = (*queues).max(1);
            AnyPort::Null(NullPort::new(id, c, pool.clone())?)
        }
        PortSpec::Ring => {
            let ring = std::sync::Arc::new(
                dataplane::ring::Ring::new(1024)
                    .map_err(|e| PortError::Config { port: format!("ring{id}"), msg: e.to_string() })?,
            );
            AnyPort::Ring(RingPort::new(&format!("ring{id}"), id, vec![ring.clone()], vec![ring])?)
        }
        PortSpec::Pcap { rx, tx } => {
            AnyPort::Pcap(PcapPort::new(id, PcapConfig { rx: rx.clone(), tx: tx.clone(), mac: None }, pool.clone())?)
        }
        PortSpec::AfXdp { iface, queues, bind, xdp, busy_poll } => {
            let mut c = AfXdpConfig::new(iface);
            c.queues = (*queues).max(1);
            c.promiscuous = promisc;
            c.bind_mode = match bind.as_str() {
                "copy" => BindMode::Copy,
                "zerocopy" => BindMode::ZeroCopy,
                _ => BindMode::Auto,
            };
            c.xdp_mode = match xdp.as_str() {
                "native" => XdpMode::Native,
                "generic" => XdpMode::Generic,
                _ => XdpMode::Auto,
            };
            c.busy_poll = busy_poll.map(|usecs| BusyPoll { usecs, budget: 64 });
            AnyPort::AfXdp(AfXdpPort::open(id, c, pool.clone())?)
        }
        PortSpec::AfPacket { iface, queues, qdisc_bypass } => {
            let mut c = AfPacketConfig::new(iface);
            c.queues = (*queues).max(1);
            c.qdisc_bypass = *qdisc_bypass;
            c.promiscuous = promisc;
            AnyPort::AfPacket(AfPacketPort::open(id, c, pool.clone())?)
        }
        PortSpec::Pci { addr, queues, rxd, txd } => {
            let d = PciPortConfig::default();
            let ring = |n: u16, default: u16| if n == 0 { default } else { n };
            let c = PciPortConfig {
                queues: (*queues).max(1),
                rx_ring: ring(*rxd, d.rx_ring),
                tx_ring: ring(*txd, d.tx_ring),
            };
            let mut p = dataplane::port::pci::open(id, *addr, &c, pool)?;
            if promisc {
                p.set_promiscuous(true)?;
            }
            AnyPort::Pci(p)
        }
        PortSpec::Dpdk { devargs } => {
            return Err(PortError::Config { port: devargs.clone(), msg: crate::dpdk_ports::MIX_ERROR.into() })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a VFIO-capable machine (or with the device not on vfio-pci) the error names
    /// the device and what to do.
    #[test]
    fn native_pci_open_fails_clearly_without_vfio() {
        if std::path::Path::new("/dev/vfio/vfio").exists() {
            return;
        }
        let mut c = dataplane::mbuf::MempoolConfig::new("t", 1024);
        c.backing = dataplane::mbuf::MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let spec: PortSpec = "pci:0000:03:00.0".parse().unwrap();
        let e = open(0, &spec, &pool, false).err().unwrap().to_string();
        assert!(e.contains("0000:03:00.0") && e.contains("modprobe vfio-pci"), "{e}");
    }
}
