//! `--port` specs and opening them as boxed [`Port`]s.
//!
//! `null[,size=N]` | `pcap:rx=FILE,tx=FILE` | `af_packet:IFACE[,qdisc_bypass=1]` |
//! `af_xdp:IFACE[,mode=copy|zerocopy]`.

use dataplane::mbuf::{Mbuf, Mempool, MempoolConfig};
use dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use dataplane::port::af_xdp::{AfXdpConfig, AfXdpPort, BindMode};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::pcap::{PcapConfig, PcapPort};
use dataplane::port::Port;
use std::path::PathBuf;

/// A port of any backend.
pub type DynPort = Box<dyn Port<Buf = Mbuf>>;

/// A parsed port spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// Null port (a sink; receives generated zero frames).
    Null {
        /// Rx frame size.
        size: usize,
    },
    /// Pcap files.
    Pcap {
        /// Input file.
        rx: Option<PathBuf>,
        /// Output file.
        tx: Option<PathBuf>,
    },
    /// AF_PACKET on an interface.
    AfPacket {
        /// Interface.
        iface: String,
        /// Bypass the qdisc.
        qdisc_bypass: bool,
    },
    /// AF_XDP on an interface.
    AfXdp {
        /// Interface.
        iface: String,
        /// "auto", "copy" or "zerocopy".
        mode: String,
    },
}

impl std::str::FromStr for PortSpec {
    type Err = String;
    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = |m: String| format!("port {spec:?}: {m}");
        let (kind, rest) = spec.split_once([':', ',']).unwrap_or((spec, ""));
        let mut parts = rest.split(',').filter(|p| !p.is_empty());
        let needs_iface = matches!(kind, "af_packet" | "af_xdp");
        let iface = if needs_iface {
            let i = parts.next().unwrap_or("").to_string();
            if i.is_empty() || i.len() > 15 || i.contains(['/', ' ', '=']) {
                return Err(bad(format!("{kind} needs an interface name, e.g. {kind}:eth1")));
            }
            i
        } else {
            String::new()
        };
        let mut kv = Vec::new();
        for p in parts {
            let (k, v) = p.split_once('=').ok_or_else(|| bad(format!("expected key=value, got {p:?}")))?;
            kv.push((k.trim().to_string(), v.trim().to_string()));
        }
        match kind {
            "null" => {
                let mut size = 64;
                for (k, v) in kv {
                    match k.as_str() {
                        "size" => size = v.parse().map_err(|_| bad(format!("size {v:?} is not a number")))?,
                        _ => return Err(bad(format!("unknown null option {k:?} (size)"))),
                    }
                }
                Ok(PortSpec::Null { size })
            }
            "pcap" => {
                let (mut rx, mut tx) = (None, None);
                for (k, v) in kv {
                    match k.as_str() {
                        "rx" if !v.is_empty() => rx = Some(PathBuf::from(v)),
                        "tx" if !v.is_empty() => tx = Some(PathBuf::from(v)),
                        _ => return Err(bad(format!("bad pcap option {k}={v:?} (rx=FILE, tx=FILE)"))),
                    }
                }
                if rx.is_none() && tx.is_none() {
                    return Err(bad("pcap needs rx=FILE, tx=FILE or both".into()));
                }
                Ok(PortSpec::Pcap { rx, tx })
            }
            "af_packet" => {
                let mut qdisc_bypass = false;
                for (k, v) in kv {
                    match k.as_str() {
                        "qdisc_bypass" => qdisc_bypass = matches!(v.as_str(), "1" | "true" | "yes"),
                        _ => return Err(bad(format!("unknown af_packet option {k:?} (qdisc_bypass)"))),
                    }
                }
                Ok(PortSpec::AfPacket { iface, qdisc_bypass })
            }
            "af_xdp" => {
                let mut mode = "auto".to_string();
                for (k, v) in kv {
                    match k.as_str() {
                        "mode" if ["auto", "copy", "zerocopy"].contains(&v.as_str()) => mode = v,
                        _ => return Err(bad(format!("bad af_xdp option {k}={v} (mode=auto|copy|zerocopy)"))),
                    }
                }
                Ok(PortSpec::AfXdp { iface, mode })
            }
            _ => Err(bad(format!("unknown port kind {kind:?} (null, pcap, af_packet, af_xdp)"))),
        }
    }
}

/// A mempool whose chunks hold frames of up to `max_frame` bytes.
///
/// # Errors
/// When the pool cannot be created.
pub fn pool_for(name: &str, max_frame: usize, size: u32) -> Result<Mempool, String> {
    let mut c = MempoolConfig::new(name, size);
    c.chunk_size = ((max_frame + 64 + 256 + 128) as u32).next_power_of_two().clamp(2048, 65536);
    Mempool::new(c).map_err(|e| e.to_string())
}

impl PortSpec {
    /// Opens the port (in the calling thread's namespace) with a pool for frames up to
    /// `max_frame` bytes; returns it with its pool.
    ///
    /// # Errors
    /// Pool or port errors, as text.
    pub fn open(&self, id: u16, max_frame: usize, promiscuous: bool) -> Result<(DynPort, Mempool), String> {
        let pool = match self {
            // AF_XDP uses page-sized chunks.
            PortSpec::AfXdp { .. } => {
                let mut c = MempoolConfig::new(&format!("pktgen{id}"), 8192);
                c.chunk_size = 4096;
                Mempool::new(c).map_err(|e| e.to_string())?
            }
            _ => pool_for(&format!("pktgen{id}"), max_frame, 8192)?,
        };
        let p: DynPort = match self {
            PortSpec::Null { size } => {
                let mut c = NullConfig::new(id);
                c.frame_size = *size;
                Box::new(NullPort::new(id, c, pool.clone()).map_err(|e| e.to_string())?)
            }
            PortSpec::Pcap { rx, tx } => Box::new(
                PcapPort::new(id, PcapConfig { rx: rx.clone(), tx: tx.clone(), mac: None }, pool.clone())
                    .map_err(|e| e.to_string())?,
            ),
            PortSpec::AfPacket { iface, qdisc_bypass } => {
                let mut c = AfPacketConfig::new(iface);
                c.qdisc_bypass = *qdisc_bypass;
                c.promiscuous = promiscuous;
                c.frame_size = ((max_frame + 128) as u32).next_power_of_two().max(2048);
                // Blocks retire every millisecond however full: 128 of them ride out a
                // receiver preempted for 128 ms on a busy machine (8 blocks would lose
                // packets after an 8 ms stall).
                c.block_size = (64u32 << 10).max(c.frame_size);
                c.block_count = 128;
                Box::new(AfPacketPort::open(id, c, pool.clone()).map_err(|e| e.to_string())?)
            }
            PortSpec::AfXdp { iface, mode } => {
                let mut c = AfXdpConfig::new(iface);
                c.promiscuous = promiscuous;
                c.bind_mode = match mode.as_str() {
                    "copy" => BindMode::Copy,
                    "zerocopy" => BindMode::ZeroCopy,
                    _ => BindMode::Auto,
                };
                Box::new(AfXdpPort::open(id, c, pool.clone()).map_err(|e| e.to_string())?)
            }
        };
        Ok((p, pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!("null".parse::<PortSpec>(), Ok(PortSpec::Null { size: 64 }));
        assert_eq!(
            "af_packet:veth0,qdisc_bypass=1".parse::<PortSpec>(),
            Ok(PortSpec::AfPacket { iface: "veth0".into(), qdisc_bypass: true })
        );
        assert_eq!("af_xdp:e1".parse::<PortSpec>(), Ok(PortSpec::AfXdp { iface: "e1".into(), mode: "auto".into() }));
        for bad in ["", "foo", "af_packet", "af_packet:", "af_xdp:e,mode=x", "pcap:", "null,size=x", "null,q=1"] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }
}
