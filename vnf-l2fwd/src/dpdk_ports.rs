//! DPDK ports in the VNF: `--port vdev:DEVARGS`, `--port PCI-ADDRESS` and `--eal ARGS`.
//!
//! Which driver a bare PCI address gets: DPDK's PMD in a build with the `dpdk` feature, the
//! native driver (`dataplane::port::pci`, as `pci:ADDRESS` asks explicitly) without it. A
//! `dpdk` build reaches the native driver with `pci:ADDRESS`, or with `--pci-driver native`
//! for every bare address (the ones discovery finds included); a build without DPDK has no
//! way to DPDK's PMDs (rebuild with the feature).
//!
//! With the `dpdk` build feature, a run whose ports are all DPDK ports initialises the EAL
//! (defaults that work without hugepages: `--no-huge -m 512` with a warning, `--no-pci`
//! unless a PCI port is given, a per-process `--file-prefix`, `-l <first allowed cpu>` as
//! the main lcore) and forwards `rte_mbuf`s from port to port with the same `Lcore` +
//! `L2Fwd` code as the native ports, without copying. Mixing DPDK and native ports is
//! refused ([`MIX_ERROR`]). Without the feature, DPDK specs parse but are refused with a
//! message saying how to build.

use crate::ports::PortSpec;
use crate::run::{Failure, LeakCheck};
use dataplane::port::spec::{is_pci_addr, parse_pci};

/// Why DPDK and native ports cannot share a worker (yet).
pub const MIX_ERROR: &str = "DPDK ports (vdev:..., PCI addresses) cannot be mixed with native ports \
     (null, ring, pcap) in one worker: their buffers differ (rte_mbuf vs Mbuf), so forwarding between \
     them would need a copy, which is not supported yet; use only DPDK ports (DPDK's vdevs cover the \
     same ground: vdev:net_null0, vdev:net_ring0, vdev:net_pcap0,rx_pcap=IN,tx_pcap=OUT) or only \
     native ones";

/// `--pci-driver native`: a bare PCI address that went to DPDK (`PortSpec::Dpdk` whose
/// devargs start with a PCI address) as the native driver's port instead; `Ok(None)` for any
/// other spec (vdevs stay DPDK's).
///
/// # Errors
/// The address carries DPDK devargs that the native driver does not take.
pub fn native_for_bare_pci(spec: &PortSpec) -> Result<Option<PortSpec>, String> {
    match spec {
        PortSpec::Dpdk { devargs } if is_pci_addr(devargs.split(',').next().unwrap_or_default()) => {
            parse_pci(devargs, devargs).map(Some).map_err(|e| format!("--pci-driver native: {}", e.msg()))
        }
        _ => Ok(None),
    }
}

/// Without the `dpdk` feature: says how to build.
#[cfg(not(feature = "dpdk"))]
pub fn open_all(
    specs: &[PortSpec],
    _queues: &[(u16, u16)],
    _eal: Option<&str>,
    _mbufs: u32,
) -> Result<(Vec<crate::ports::AnyPort>, LeakCheck, dataplane::Mempool), Failure> {
    let what = match specs.iter().find_map(|s| match s {
        PortSpec::Dpdk { devargs } => Some(devargs.as_str()),
        _ => None,
    }) {
        Some(d) => format!("--port {d:?} is a DPDK port"),
        None => "--eal is a DPDK option".to_string(),
    };
    Err(Failure::Usage(format!(
        "{what}, and this vnf-l2fwd was built without DPDK: rebuild with \
         `cargo build --release -p vnf-l2fwd --features dpdk` (needs libdpdk-dev)"
    )))
}

#[cfg(feature = "dpdk")]
pub use with_dpdk::open_all;

/// Whether DPDK's memory is on 4 KiB pages (`--no-huge`), once [`open_all`] has initialised
/// the EAL (false before, and without the `dpdk` feature).
pub fn small_pages() -> bool {
    #[cfg(feature = "dpdk")]
    {
        dataplane::dpdk::Eal::get().is_some_and(|e| !e.has_hugepages())
    }
    #[cfg(not(feature = "dpdk"))]
    {
        false
    }
}

#[cfg(feature = "dpdk")]
mod with_dpdk {
    use super::*;
    use dataplane::dpdk::{eal_args, DpdkDevice, DpdkMempool, DpdkPort, DpdkPortConfig, Eal};
    use dataplane::port::Port;

    /// Initialises the EAL and opens every port (all must be DPDK ports), port `i` with
    /// `queues[i]` = (rx queues, tx queues) (at least one each). Returns the ports, their
    /// leak check and the pool of the first port (what a generator allocates from).
    pub fn open_all(
        specs: &[PortSpec],
        queues: &[(u16, u16)],
        eal: Option<&str>,
        mbufs: u32,
    ) -> Result<(Vec<DpdkPort>, LeakCheck, DpdkMempool), Failure> {
        let mut devargs = vec![];
        for (id, s) in specs.iter().enumerate() {
            match s {
                PortSpec::Dpdk { devargs: d } => devargs.push(d.clone()),
                _ => return Err(Failure::Usage(format!("port {id} is a native port: {MIX_ERROR}"))),
            }
        }
        let user: Vec<String> = eal.unwrap_or_default().split_whitespace().map(String::from).collect();
        let pci: Vec<String> =
            devargs.iter().filter(|d| is_pci_addr(d.split(',').next().unwrap_or_default())).cloned().collect();
        let prefix = format!("vnf-l2fwd-{}", std::process::id());
        let main_cpu = vnf_l2fwd::node_features::allowed_cpus().first().copied();
        let args = eal_args(&build_eal_args(&user, &pci, main_cpu, &prefix));
        Eal::init(&args).map_err(|e| Failure::Setup(format!("DPDK: {e}")))?;
        let mut ports = vec![];
        for (id, d) in devargs.iter().enumerate() {
            let (rxq, txq) = queues.get(id).copied().unwrap_or((1, 1));
            let cfg = DpdkPortConfig {
                id: Some(id as u16),
                pool_size: mbufs,
                rx_queues: rxq.max(1),
                tx_queues: txq.max(1),
                ..Default::default()
            };
            let p = DpdkPort::open(DpdkDevice::Devargs(d.clone()), cfg).map_err(|e| Failure::Setup(e.to_string()))?;
            let info = p.info();
            println!("Port {id}: {} ({}, DPDK port {}) MAC {}", info.name, info.driver, p.port_id(), p.mac());
            ports.push(p);
        }
        let first = ports.first().map(|p| p.pool().clone()).ok_or_else(|| Failure::Usage("no port given".into()))?;
        let mut pools: Vec<_> = ports.iter().map(|p| p.pool().clone()).collect();
        pools.dedup_by(|a, b| a.as_ptr() == b.as_ptr());
        let own_prefix = !user.iter().any(|a| a.starts_with("--file-prefix"));
        let check: LeakCheck = Box::new(move || {
            if own_prefix {
                // EAL's runtime files of this process (no hugepage files with --no-huge).
                let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
            }
            let out: u32 = pools.iter().map(|p| p.in_use()).sum();
            let size: u32 = pools.iter().map(|p| p.size()).sum();
            if out == 0 {
                Ok(format!("All {size} mbufs returned to the DPDK pool(s): no leak."))
            } else {
                Err(format!("{out} mbufs did not return to the DPDK pool(s)"))
            }
        });
        Ok((ports, check, first))
    }

    fn has(args: &[String], names: &[&str]) -> bool {
        args.iter().any(|a| {
            names
                .iter()
                .any(|n| a == n || a.strip_prefix(n).is_some_and(|r| r.starts_with('=') || !n.starts_with("--")))
        })
    }

    /// The EAL arguments: the user's, plus defaults for what they leave out.
    pub(super) fn build_eal_args(
        user: &[String],
        pci: &[String],
        main_cpu: Option<usize>,
        prefix: &str,
    ) -> Vec<String> {
        let mut v = user.to_vec();
        if !has(user, &["-l", "-c", "--lcores"]) {
            v.extend(["-l".to_string(), main_cpu.unwrap_or(0).to_string()]);
        }
        if !has(user, &["--file-prefix"]) {
            v.extend(["--file-prefix".to_string(), prefix.to_string()]);
        }
        for p in pci {
            let name = DpdkDevice::name(p);
            if !user.iter().any(|a| DpdkDevice::name(a) == name) {
                v.extend(["-a".to_string(), p.clone()]);
            }
        }
        if pci.is_empty() && !has(user, &["-a", "--allow", "-b", "--block", "--no-pci"]) {
            v.push("--no-pci".into());
        }
        if !has(user, &["--log-level"]) {
            v.push("--log-level=notice".into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_driver_native_turns_bare_addresses_native() {
        let dpdk = |s: &str| PortSpec::Dpdk { devargs: s.to_string() };
        let native = |q| Some(PortSpec::Pci { addr: vfio::PciAddr::new(0, 0x18, 2, 5), queues: q, rxd: 0, txd: 0 });
        assert_eq!(native_for_bare_pci(&dpdk("0000:18:02.5")).unwrap(), native(0));
        assert_eq!(native_for_bare_pci(&dpdk("18:02.5,queues=2")).unwrap(), native(2));
        // vdevs stay DPDK's; other specs are not touched.
        assert_eq!(native_for_bare_pci(&dpdk("net_null0")).unwrap(), None);
        assert_eq!(native_for_bare_pci(&PortSpec::Null { size: 64, queues: 1 }).unwrap(), None);
        // DPDK devargs the native driver does not take are an error naming the option.
        let e = native_for_bare_pci(&dpdk("18:02.5,txq_inline=1")).unwrap_err();
        assert!(e.starts_with("--pci-driver native:") && e.contains("unknown pci option"), "{e}");
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn eal_defaults() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let v = with_dpdk::build_eal_args(&[], &[], Some(3), "p");
        assert_eq!(v, s(&["-l", "3", "--file-prefix", "p", "--no-pci", "--log-level=notice"]));
        let v = with_dpdk::build_eal_args(&s(&["-l", "0-1", "--file-prefix=x"]), &s(&["18:02.5"]), Some(3), "p");
        assert_eq!(v, s(&["-l", "0-1", "--file-prefix=x", "-a", "18:02.5", "--log-level=notice"]));
        let v = with_dpdk::build_eal_args(&s(&["-a", "0000:18:02.5"]), &s(&["18:02.5"]), None, "p");
        assert_eq!(v, s(&["-a", "0000:18:02.5", "-l", "0", "--file-prefix", "p", "--log-level=notice"]));
    }
}
