//! `--port SPEC` parsing and opening.

use dataplane::mbuf::{Mbuf, Mempool};
use dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use dataplane::port::af_xdp::{AfXdpConfig, AfXdpPort, BindMode, BusyPoll, XdpMode};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::pcap::{check_files, PcapConfig, PcapPort};
use dataplane::port::pci::{PciPort, PciPortConfig};
use dataplane::port::ring::RingPort;
use dataplane::port::{BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortError, PortInfo, PortNote, PortStats};
use std::path::PathBuf;
use vfio::PciAddr;

/// A parsed `--port` value.
///
/// `queues` is what `queues=N` says, or 0 when the spec does not say: the port then gets as
/// many queues as the lcore plan needs ([`crate::lcores::Plan::fit_spec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// `null[,size=N][,queues=N]`: `size` at most the mbuf data room
    /// ([`crate::limits::DATA_ROOM`]).
    Null { size: usize, queues: u16 },
    /// `ring[,peer=N]`: a ring port looped back to itself (or wired to port N's ring).
    Ring,
    /// `pcap:rx=FILE,tx=FILE`
    Pcap { rx: Option<PathBuf>, tx: Option<PathBuf> },
    /// `af_xdp:IFACE[,queues=N][,mode=auto|copy|zerocopy][,xdp=auto|native|generic][,busy_poll=USECS]`
    /// (`busy_poll`: 1 to `i32::MAX` µs, SO_BUSY_POLL's C int)
    AfXdp { iface: String, queues: u16, bind: String, xdp: String, busy_poll: Option<u32> },
    /// `af_packet:IFACE[,queues=N][,qdisc_bypass=0|1]`
    AfPacket { iface: String, queues: u16, qdisc_bypass: bool },
    /// `pci:ADDRESS[,queues=N][,rxd=N][,txd=N]` (or, without the `dpdk` feature, a bare PCI
    /// address): a native driver on vfio-pci, chosen by the device's ids
    /// (`dataplane::port::pci`): `pci:virtio-net` (virtio-net modern), `pci:igb` (an Intel
    /// 82576 or I350 PF, up to 8 queues) or `pci:igbvf` (their SR-IOV VFs, up to 2 queues).
    /// `rxd`/`txd`: descriptors per receive/transmit ring (testpmd's `--rxd`/`--txd`; a power
    /// of two, lowered to what the device offers; 0, the default:
    /// `dataplane::port::pci::PciPortConfig`'s 1024).
    Pci { addr: PciAddr, queues: u16, rxd: u16, txd: u16 },
    /// `vdev:DEVARGS` or (with the `dpdk` feature) a bare PCI address: a DPDK port (see
    /// `dpdk_ports`).
    Dpdk { devargs: String },
}

impl PortSpec {
    /// True for a DPDK port.
    pub fn is_dpdk(&self) -> bool {
        matches!(self, PortSpec::Dpdk { .. })
    }
}

/// Parses `ADDRESS[,queues=N][,rxd=N][,txd=N]` (what follows `pci:`) as a native PCI port.
pub fn parse_pci(spec: &str, rest: &str) -> Result<PortSpec, SpecError> {
    let mut parts = rest.splitn(2, ',');
    let a = parts.next().unwrap_or("").trim();
    let addr: PciAddr = a.parse().map_err(|_| {
        bad(spec, format!("{a:?} is not a PCI address: expected pci:DDDD:BB:DD.F, e.g. pci:0000:03:00.0"))
    })?;
    let (mut queues, mut rxd, mut txd) = (0u16, 0u16, 0u16);
    let ring = |k: &str, v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| n.is_power_of_two() && (8..=4096).contains(n))
            .ok_or_else(|| bad(spec, format!("{k} {v:?} must be a power of two from 8 to 4096")))
    };
    for p in parts.next().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("queues", v)) => {
                queues = v
                    .parse()
                    .ok()
                    .filter(|q| (1..=64).contains(q))
                    .ok_or_else(|| bad(spec, format!("queues {v:?} must be a number from 1 to 64")))?;
            }
            Some(("rxd", v)) => rxd = ring("rxd", v)?,
            Some(("txd", v)) => txd = ring("txd", v)?,
            _ => return Err(bad(spec, format!("unknown pci option {p:?} (queues=N, rxd=N, txd=N)"))),
        }
    }
    Ok(PortSpec::Pci { addr, queues, rxd, txd })
}

/// Errors in a port spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("--port {spec:?}: {msg}")]
    Bad { spec: String, msg: String },
}

fn bad(spec: &str, msg: impl Into<String>) -> SpecError {
    SpecError::Bad { spec: spec.to_string(), msg: msg.into() }
}

impl std::str::FromStr for PortSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        if let Some(d) = crate::dpdk_ports::parse_spec(spec).map_err(|m| bad(spec, m))? {
            return Ok(d);
        }
        let (kind, rest) = match spec.split_once([':', ',']) {
            Some((k, r)) => (k, r),
            None => (spec, ""),
        };
        let kv = |rest: &str| -> Result<Vec<(String, String)>, SpecError> {
            rest.split(',')
                .filter(|s| !s.is_empty())
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| bad(spec, format!("expected key=value, got {p:?}")))
                })
                .collect()
        };
        match kind {
            "null" => {
                let mut size = 64;
                let mut queues = 0;
                for (k, v) in kv(rest)? {
                    match k.as_str() {
                        "size" => {
                            size = v.parse().map_err(|_| bad(spec, format!("size {v:?} is not a number")))?;
                            if !(14..=crate::limits::DATA_ROOM).contains(&size) {
                                return Err(bad(
                                    spec,
                                    format!(
                                        "size {size} must be 14 to {} (the mbuf data room: a frame is one mbuf)",
                                        crate::limits::DATA_ROOM
                                    ),
                                ));
                            }
                        }
                        "queues" => {
                            queues = v.parse().map_err(|_| bad(spec, format!("queues {v:?} is not a number")))?;
                            if !(1..=64).contains(&queues) {
                                return Err(bad(spec, format!("queues {queues} must be 1 to 64")));
                            }
                        }
                        _ => return Err(bad(spec, format!("unknown null option {k:?} (size, queues)"))),
                    }
                }
                Ok(PortSpec::Null { size, queues })
            }
            "ring" => {
                if !rest.is_empty() {
                    return Err(bad(spec, "ring takes no options"));
                }
                Ok(PortSpec::Ring)
            }
            "pcap" => {
                let (mut rx, mut tx) = (None, None);
                for (k, v) in kv(rest)? {
                    if v.is_empty() {
                        return Err(bad(spec, format!("{k}= needs a file name")));
                    }
                    match k.as_str() {
                        "rx" => rx = Some(PathBuf::from(v)),
                        "tx" => tx = Some(PathBuf::from(v)),
                        _ => return Err(bad(spec, format!("unknown pcap option {k:?} (rx, tx)"))),
                    }
                }
                if rx.is_none() && tx.is_none() {
                    return Err(bad(spec, "pcap needs rx=FILE, tx=FILE or both"));
                }
                Ok(PortSpec::Pcap { rx, tx })
            }
            "af_xdp" | "af_packet" => {
                let mut parts = rest.splitn(2, ',');
                let iface = parts.next().unwrap_or("").trim().to_string();
                if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ', '=']) {
                    return Err(bad(spec, format!("{kind} needs an interface name, e.g. {kind}:net1")));
                }
                let mut queues = 0u16;
                let (mut bind, mut xdp, mut busy_poll, mut bypass) =
                    ("auto".to_string(), "auto".to_string(), None, false);
                for (k, v) in kv(parts.next().unwrap_or(""))? {
                    let num = |v: &str| v.parse::<u32>().map_err(|_| bad(spec, format!("{k} {v:?} is not a number")));
                    match (kind, k.as_str()) {
                        (_, "queues") => {
                            queues = num(&v)?.try_into().unwrap_or(0);
                            if !(1..=64).contains(&queues) {
                                return Err(bad(spec, format!("queues {v} must be 1 to 64")));
                            }
                        }
                        ("af_xdp", "mode") if ["auto", "copy", "zerocopy"].contains(&v.as_str()) => bind = v,
                        ("af_xdp", "xdp") if ["auto", "native", "generic"].contains(&v.as_str()) => xdp = v,
                        ("af_xdp", "busy_poll") => {
                            let us = num(&v)?;
                            if us == 0 || us > i32::MAX as u32 {
                                return Err(bad(
                                    spec,
                                    format!("busy_poll {us} must be 1 to {} µs (SO_BUSY_POLL's C int)", i32::MAX),
                                ));
                            }
                            busy_poll = Some(us);
                        }
                        ("af_packet", "qdisc_bypass") => {
                            bypass = match v.as_str() {
                                "1" | "true" | "yes" => true,
                                "0" | "false" | "no" => false,
                                _ => return Err(bad(spec, format!("qdisc_bypass {v:?} must be 0 or 1"))),
                            }
                        }
                        _ => {
                            return Err(bad(
                                spec,
                                format!(
                                "unknown or invalid {kind} option {k}={v} (af_xdp: queues, mode=auto|copy|zerocopy, \
                                     xdp=auto|native|generic, busy_poll; af_packet: queues, qdisc_bypass)"
                            ),
                            ))
                        }
                    }
                }
                Ok(if kind == "af_xdp" {
                    PortSpec::AfXdp { iface, queues, bind, xdp, busy_poll }
                } else {
                    PortSpec::AfPacket { iface, queues, qdisc_bypass: bypass }
                })
            }
            "pci" => parse_pci(spec, rest),
            _ => Err(bad(
                spec,
                format!(
                    "unknown port kind {kind:?} (null, ring, pcap, af_xdp, af_packet, pci:ADDRESS, vdev:DEVARGS, a PCI \
                     address)"
                ),
            )),
        }
    }
}

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

    #[test]
    fn parses_specs() {
        assert_eq!("null".parse::<PortSpec>().unwrap(), PortSpec::Null { size: 64, queues: 0 });
        assert_eq!("null,size=128".parse::<PortSpec>().unwrap(), PortSpec::Null { size: 128, queues: 0 });
        assert_eq!("null,queues=2".parse::<PortSpec>().unwrap(), PortSpec::Null { size: 64, queues: 2 });
        assert_eq!(
            "pcap:rx=a.pcap,tx=b.pcap".parse::<PortSpec>().unwrap(),
            PortSpec::Pcap { rx: Some("a.pcap".into()), tx: Some("b.pcap".into()) }
        );
        for bad in
            ["", "foo", "null,size=x", "null,size=5", "null,bogus=1", "pcap:", "pcap:rx=", "pcap:zz=1", "ring,x=1"]
        {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
        // Limits of the keys, named in the message.
        assert_eq!("null,size=1728".parse::<PortSpec>().unwrap(), PortSpec::Null { size: 1728, queues: 0 });
        for (bad, why) in [
            ("null,size=1729", "14 to 1728 (the mbuf data room"),
            ("null,queues=65", "1 to 64"),
            ("af_xdp:eth0,busy_poll=0", "1 to 2147483647"),
            ("af_xdp:eth0,busy_poll=2147483648", "1 to 2147483647"),
            ("af_packet:eth0,qdisc_bypass=on", "must be 0 or 1"),
        ] {
            let e = bad.parse::<PortSpec>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(matches!(
            "af_packet:eth0,qdisc_bypass=0".parse::<PortSpec>().unwrap(),
            PortSpec::AfPacket { qdisc_bypass: false, queues: 0, .. }
        ));
    }

    #[test]
    fn parses_native_pci_specs() {
        let a = PciAddr::new(0, 3, 0, 0);
        let pci = |queues, rxd, txd| PortSpec::Pci { addr: a, queues, rxd, txd };
        assert_eq!("pci:0000:03:00.0".parse::<PortSpec>().unwrap(), pci(0, 0, 0));
        assert_eq!("pci:03:00.0,queues=4".parse::<PortSpec>().unwrap(), pci(4, 0, 0));
        assert_eq!("pci:03:00.0,rxd=1024,queues=2,txd=512".parse::<PortSpec>().unwrap(), pci(2, 1024, 512));
        for (bad, why) in [
            ("pci:", "not a PCI address"),
            ("pci:eth0", "not a PCI address"),
            ("pci:0000:03:00.0,queues=0", "1 to 64"),
            ("pci:0000:03:00.0,queues=x", "1 to 64"),
            ("pci:0000:03:00.0,rxd=1000", "power of two from 8 to 4096"),
            ("pci:0000:03:00.0,txd=8192", "power of two from 8 to 4096"),
            ("pci:0000:03:00.0,rxd=4", "power of two from 8 to 4096"),
            ("pci:0000:03:00.0,txq=2", "unknown pci option"),
        ] {
            let e = bad.parse::<PortSpec>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

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
