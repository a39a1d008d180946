//! The port spec grammar, one for every application on the library: the VNF's `--port` and
//! pktgen's ports.
//!
//! `null[,size=N][,queues=N]` | `ring` | `pcap:rx=FILE,tx=FILE` |
//! `af_xdp:IFACE[,queues=N][,mode=…][,xdp=…][,busy_poll=US]` |
//! `af_packet:IFACE[,queues=N][,qdisc_bypass=0|1]` | `pci:ADDRESS[,queues=N][,rxd=N][,txd=N]` |
//! `vdev:DEVARGS` | a bare PCI address (DPDK's with the `dpdk` feature, else the native
//! driver's). Parsing only checks the text; opening is the application's.

use std::path::PathBuf;
use vfio::PciAddr;

/// The largest frame a `null` port may generate: the data room of a default pool's mbuf
/// (one frame is one mbuf).
pub const MAX_FRAME: usize = crate::mbuf::DEFAULT_DATA_ROOM;

/// `vdev:DEVARGS` or a PCI address (`0000:18:02.5`, `18:02.5`, optionally `,devargs`) as a
/// DPDK port spec; `Ok(None)` for anything else. Without the `dpdk` feature a bare PCI
/// address is a native port instead (`ADDRESS[,queues=N][,rxd=N][,txd=N]`, as after `pci:`).
fn parse_dpdk(spec: &str) -> Result<Option<PortSpec>, SpecError> {
    if let Some(d) = spec.strip_prefix("vdev:") {
        let d = d.trim();
        if d.is_empty() || d.starts_with(',') {
            return Err(bad(spec, "vdev: needs a device, e.g. vdev:net_null0 or vdev:net_af_xdp0,iface=eth1"));
        }
        return Ok(Some(PortSpec::Dpdk { devargs: d.to_string() }));
    }
    if is_pci_addr(spec.split(',').next().unwrap_or_default()) {
        if !cfg!(feature = "dpdk") {
            return parse_pci(spec, spec).map(Some);
        }
        return Ok(Some(PortSpec::Dpdk { devargs: spec.to_string() }));
    }
    Ok(None)
}

/// A parsed port spec (`--port` of the VNF, `--tx-port`/`--rx-port`/`--port` of pktgen).
///
/// `queues` is what `queues=N` says, or 0 when the spec does not say (the application then
/// picks: the VNF gives the port as many queues as its lcore plan needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// `null[,size=N][,queues=N]`: `size` from 14 to [`MAX_FRAME`].
    Null {
        /// Frame size of the generated frames.
        size: usize,
        /// Queues asked for (0: not said).
        queues: u16,
    },
    /// `ring[,peer=N]`: a ring port looped back to itself (or wired to port N's ring).
    Ring,
    /// `pcap:rx=FILE,tx=FILE`
    Pcap {
        /// File replayed as the receive side.
        rx: Option<PathBuf>,
        /// File written with what is transmitted.
        tx: Option<PathBuf>,
    },
    /// `af_xdp:IFACE[,queues=N][,mode=auto|copy|zerocopy][,xdp=auto|native|generic][,busy_poll=USECS]`
    /// (`busy_poll`: 1 to `i32::MAX` µs, SO_BUSY_POLL's C int)
    AfXdp {
        /// Interface name.
        iface: String,
        /// Queues asked for (0: not said).
        queues: u16,
        /// Bind mode: `auto`, `copy` or `zerocopy`.
        bind: String,
        /// XDP attach mode: `auto`, `native` or `generic`.
        xdp: String,
        /// SO_BUSY_POLL in µs.
        busy_poll: Option<u32>,
    },
    /// `af_packet:IFACE[,queues=N][,qdisc_bypass=0|1]`
    AfPacket {
        /// Interface name.
        iface: String,
        /// Queues asked for (0: not said): a fanout group of that many sockets.
        queues: u16,
        /// PACKET_QDISC_BYPASS on transmit.
        qdisc_bypass: bool,
    },
    /// `pci:ADDRESS[,queues=N][,rxd=N][,txd=N]` (or, without the `dpdk` feature, a bare PCI
    /// address): a native driver on vfio-pci, chosen by the device's ids
    /// ([`crate::port::pci`]): `pci:virtio-net` (virtio-net modern), `pci:igb` (an Intel
    /// 82576 or I350 PF, up to 8 queues) or `pci:igbvf` (their SR-IOV VFs, up to 2 queues).
    /// `rxd`/`txd`: descriptors per receive/transmit ring (testpmd's `--rxd`/`--txd`; a power
    /// of two, lowered to what the device offers; 0, the default:
    /// [`PciPortConfig`](crate::port::pci::PciPortConfig)'s 1024).
    Pci {
        /// The device.
        addr: PciAddr,
        /// Queues asked for (0: not said).
        queues: u16,
        /// Receive descriptors per ring (0: the default).
        rxd: u16,
        /// Transmit descriptors per ring (0: the default).
        txd: u16,
    },
    /// `vdev:DEVARGS` or (with the `dpdk` feature) a bare PCI address, optionally followed by
    /// `,DEVARGS`: a DPDK port, opened through EAL.
    Dpdk {
        /// EAL device arguments (`net_null0`, `0000:03:00.0,rxq_pkt_fill=8`).
        devargs: String,
    },
}

impl PortSpec {
    /// True for a DPDK port (`vdev:` or a bare PCI address with the `dpdk` feature).
    pub fn is_dpdk(&self) -> bool {
        matches!(self, PortSpec::Dpdk { .. })
    }
}

/// Parses `ADDRESS[,queues=N][,rxd=N][,txd=N]` (what follows `pci:`) as a native PCI port.
///
/// # Errors
/// A bad address or option.
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec and what is wrong with it.
    #[error("--port {spec:?}: {msg}")]
    Bad {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        msg: String,
    },
}

impl SpecError {
    /// What is wrong, without the spec.
    pub fn msg(&self) -> &str {
        match self {
            SpecError::Bad { msg, .. } => msg,
        }
    }
}

pub(crate) fn bad(spec: &str, msg: impl Into<String>) -> SpecError {
    SpecError::Bad { spec: spec.to_string(), msg: msg.into() }
}

impl std::str::FromStr for PortSpec {
    type Err = SpecError;
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        if let Some(d) = parse_dpdk(spec)? {
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
                            if !(14..=MAX_FRAME).contains(&size) {
                                return Err(bad(
                                    spec,
                                    format!(
                                        "size {size} must be 14 to {MAX_FRAME} (the mbuf data room: a frame is one mbuf)"
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

/// `DDDD:BB:DD.F` or `BB:DD.F` in hex.
pub fn is_pci_addr(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let Some((bus_dev, func)) = s.rsplit_once('.') else { return false };
    let func_ok = func.len() == 1 && matches!(func.as_bytes()[0], b'0'..=b'7');
    let parts: Vec<&str> = bus_dev.split(':').collect();
    func_ok
        && match parts.as_slice() {
            [d, b, dev] => hex(d, 4) && hex(b, 2) && hex(dev, 2),
            [b, dev] => hex(b, 2) && hex(dev, 2),
            _ => false,
        }
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

    #[test]
    fn dpdk_specs() {
        let d = |s: &str| Some(PortSpec::Dpdk { devargs: s.to_string() });
        assert_eq!(parse_dpdk("vdev:net_null0").unwrap(), d("net_null0"));
        assert_eq!(parse_dpdk("vdev:net_null0,size=128").unwrap(), d("net_null0,size=128"));
        if cfg!(feature = "dpdk") {
            assert_eq!(parse_dpdk("0000:18:02.5").unwrap(), d("0000:18:02.5"));
            assert_eq!(parse_dpdk("18:02.5").unwrap(), d("18:02.5"));
        } else {
            // Without DPDK a bare address is the native driver's.
            let native = |q| Some(PortSpec::Pci { addr: vfio::PciAddr::new(0, 0x18, 2, 5), queues: q, rxd: 0, txd: 0 });
            assert_eq!(parse_dpdk("0000:18:02.5").unwrap(), native(0));
            assert_eq!(parse_dpdk("18:02.5,queues=2").unwrap(), native(2));
            assert!(parse_dpdk("18:02.5,txq_inline=1").unwrap_err().msg().contains("unknown pci option"));
        }
        assert_eq!(parse_dpdk("null").unwrap(), None);
        assert_eq!(parse_dpdk("pcap:rx=a").unwrap(), None);
        assert!(parse_dpdk("vdev:").is_err());
        assert!(parse_dpdk("0000:18:02.9").unwrap().is_none());
        assert_eq!("vdev:net_ring0".parse::<PortSpec>().unwrap(), d("net_ring0").unwrap());
    }
}
