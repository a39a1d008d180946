//! Opening port specs as boxed [`Port`]s. The grammar is the library's
//! ([`dataplane::port::spec`], shared with the VNF's `--port`); pktgen opens `null`, `pcap`,
//! `af_packet` and `af_xdp` ports with one queue each, and says so for the rest.

use dataplane::mbuf::{Mbuf, Mempool, MempoolConfig};
use dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use dataplane::port::af_xdp::{AfXdpConfig, AfXdpPort, BindMode};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::pcap::{PcapConfig, PcapPort};
use dataplane::port::Port;

/// A port of any backend.
pub type DynPort = Box<dyn Port<Buf = Mbuf>>;

pub use dataplane::port::spec::PortSpec;

/// What [`PortSpec::open`] says for the kinds pktgen does not open.
const UNSUPPORTED: &str = "pktgen opens null, pcap, af_packet and af_xdp ports";

/// A mempool whose chunks hold frames of up to `max_frame` bytes.
///
/// # Errors
/// When the pool cannot be created.
pub fn pool_for(name: &str, max_frame: usize, size: u32) -> Result<Mempool, String> {
    let mut c = MempoolConfig::new(name, size);
    c.chunk_size = ((max_frame + 64 + 256 + 128) as u32).next_power_of_two().clamp(2048, 65536);
    Mempool::new(c).map_err(|e| e.to_string())
}

/// Opening a spec in pktgen (an extension trait: [`PortSpec`] is the library's).
pub trait OpenSpec {
    /// Opens the port (in the calling thread's namespace) with a pool for frames up to
    /// `max_frame` bytes; returns it with its pool.
    ///
    /// # Errors
    /// Pool or port errors, or a kind pktgen does not open, as text.
    fn open(&self, id: u16, max_frame: usize, promiscuous: bool) -> Result<(DynPort, Mempool), String>;
}

impl OpenSpec for PortSpec {
    fn open(&self, id: u16, max_frame: usize, promiscuous: bool) -> Result<(DynPort, Mempool), String> {
        let pool = match self {
            PortSpec::Null { queues, .. } | PortSpec::AfPacket { queues, .. } | PortSpec::AfXdp { queues, .. }
                if *queues > 1 =>
            {
                return Err(format!("pktgen opens one queue per port; queues={queues} is for the VNF"));
            }
            PortSpec::Ring | PortSpec::Pci { .. } | PortSpec::Dpdk { .. } => {
                return Err(UNSUPPORTED.into());
            }
            // AF_XDP uses page-sized chunks.
            PortSpec::AfXdp { .. } => {
                let mut c = MempoolConfig::new(&format!("pktgen{id}"), 8192);
                c.chunk_size = 4096;
                Mempool::new(c).map_err(|e| e.to_string())?
            }
            _ => pool_for(&format!("pktgen{id}"), max_frame, 8192)?,
        };
        let p: DynPort = match self {
            PortSpec::Null { size, .. } => {
                let mut c = NullConfig::new(id);
                c.frame_size = *size;
                Box::new(NullPort::new(id, c, pool.clone()).map_err(|e| e.to_string())?)
            }
            PortSpec::Pcap { rx, tx } => Box::new(
                PcapPort::new(id, PcapConfig { rx: rx.clone(), tx: tx.clone(), mac: None }, pool.clone())
                    .map_err(|e| e.to_string())?,
            ),
            PortSpec::AfPacket { iface, qdisc_bypass, .. } => {
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
            PortSpec::AfXdp { iface, bind: mode, .. } => {
                let mut c = AfXdpConfig::new(iface);
                c.promiscuous = promiscuous;
                c.bind_mode = match mode.as_str() {
                    "copy" => BindMode::Copy,
                    "zerocopy" => BindMode::ZeroCopy,
                    _ => BindMode::Auto,
                };
                Box::new(AfXdpPort::open(id, c, pool.clone()).map_err(|e| e.to_string())?)
            }
            PortSpec::Ring | PortSpec::Pci { .. } | PortSpec::Dpdk { .. } => return Err(UNSUPPORTED.into()),
        };
        Ok((p, pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shared_grammar() {
        assert_eq!("null".parse::<PortSpec>().unwrap(), PortSpec::Null { size: 64, queues: 0 });
        assert_eq!(
            "af_packet:veth0,qdisc_bypass=1".parse::<PortSpec>().unwrap(),
            PortSpec::AfPacket { iface: "veth0".into(), queues: 0, qdisc_bypass: true }
        );
        for bad in ["", "foo", "af_packet", "af_packet:", "af_xdp:e,mode=x", "pcap:", "null,size=x", "null,q=1"] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_pktgen_does_not_open() {
        for (spec, why) in
            [("ring", "pktgen opens null"), ("vdev:net_null0", "pktgen opens null"), ("null,queues=2", "one queue")]
        {
            let e = spec.parse::<PortSpec>().unwrap().open(0, 64, false).err().unwrap();
            assert!(e.contains(why), "{spec}: {e}");
        }
    }
}
