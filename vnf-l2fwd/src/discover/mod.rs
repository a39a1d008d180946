//! Kubernetes discovery: which ports, CPUs and hugepages a pod was given, and the `--port`
//! specs the VNF would run with (`vnf-l2fwd discover [--podnetinfo FILE] [--json]`).
//!
//! # Sources, in order
//! 1. The Multus `k8s.v1.cni.cncf.io/network-status` annotation, read from the downward API
//!    annotations file ([`DEFAULT_PODNETINFO`]). The kubelet writes that file as sorted
//!    `key="value"` lines, each value quoted with Go's `%q` (`strconv.Quote`: `\"`, `\\`, `\n`,
//!    `\t`, `\xNN`, `\uNNNN`… escapes), which [`parse_downward_map`] undoes. The value is the
//!    NPWG multi-net JSON list; a `device-info` (device-info spec 1.x) of type
//!    - `pci`: a VF at `pci-address`. Bound to a DPDK driver (vfio-pci…) it becomes a PCI port
//!      (DPDK's PMD in a `dpdk` build, unless `--pci-driver native`; the native driver otherwise)
//!      (the bare PCI address); bound to a kernel driver (netdevice mode) it is a kernel
//!      interface like the case without device-info; its driver not visible in sysfs, it is
//!      taken as the device-info says, a PCI port, and the reason says so.
//!    - `vdpa` with driver `vhost`: `vdev:virtio_user<N>,path=/dev/vhost-vdpa-M`; with driver
//!      `virtio`: a kernel interface.
//!    - `vhost-user`: `vdev:net_virtio_user<N>,path=SOCKET` (`,server=1` when the pod's side is
//!      the server).
//!    - `memif`: `vdev:net_memif<N>,role=ROLE,socket=SOCKET`.
//!
//!    No device-info means a kernel interface (the entry's `interface`, e.g. `net1`):
//!    `af_xdp:net1`, or `af_packet:net1` where AF_XDP is unavailable
//!    ([`crate::node_features::af_xdp_support`]). The default cluster network (`"default": true`)
//!    is never a data port.
//! 2. SR-IOV network device plugin variables `PCIDEVICE_<RESOURCE>` (the extended resource name
//!    upper-cased with `.` and `/` replaced by `_`, e.g. `intel.com/sriov_netdevice` →
//!    `PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE=0000:18:02.5,0000:18:02.6`) and, from device plugin
//!    3.5 on, `PCIDEVICE_<RESOURCE>_INFO` (JSON: PCI address → per-provider details). Devices
//!    not already found through the annotation are added, in variable-name order. An address
//!    that is not a PCI device of the node (no `sys/bus/pci/devices/<address>`) is an error;
//!    where no PCI bus is visible at all, the addresses are taken unchecked, with a note.
//! 3. CPUs: the cgroup cpuset (v2 `sys/fs/cgroup/cpuset.cpus.effective`, v1
//!    `sys/fs/cgroup/cpuset/cpuset.cpus`) intersected with the process affinity
//!    (`sched_getaffinity` on the live root, `proc/self/status` `Cpus_allowed_list` in a
//!    fixture). The first CPU is the main (control) thread's, the others run workers; with
//!    one CPU, the worker shares it.
//! 4. Hugepages: hugetlbfs mounts from `proc/mounts` (with their `pagesize`), the pools in
//!    `sys/kernel/mm/hugepages/*` (node-wide: a container sees the host's counters), and the
//!    downward API files beside the annotations file, named as the network resources
//!    injector names them: `hugepages_1G_request_<container>`, `hugepages_1G_limit_<container>`,
//!    `hugepages_2M_request_<container>`, `hugepages_2M_limit_<container>`, in MiB (divisor
//!    `1Mi`).
//!
//! Malformed input is an error naming the field or variable; nothing is guessed silently: every
//! port carries the reason it was chosen.

use crate::node_features::{self, fmt_cpus, hugepage_pools, parse_cpu_list, AfXdpSupport, HugepagePool};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use vfio::sysfs::{self, PciAddr};
use vfio::SysRoot;

mod annotations;
mod host;
mod sriov;

pub use annotations::{go_unquote, parse_downward_map, parse_network_status, DeviceInfo, NetworkStatus};
use host::read_opt;
pub use host::{read_cpus, read_hugepages};
pub use sriov::{parse_pcidevice_env, pcidevice_var, PciDeviceVar};

/// Where the downward API annotations file is mounted (the manifests mount it here).
pub const DEFAULT_PODNETINFO: &str = "/etc/podnetinfo/annotations";
/// The Multus network-status annotation.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";
/// The SR-IOV device plugin's variable prefix.
pub const PCIDEVICE_PREFIX: &str = "PCIDEVICE_";
/// cgroup v2 cpuset, relative to the root.
pub const CGROUP_V2_CPUSET: &str = "sys/fs/cgroup/cpuset.cpus.effective";
/// cgroup v1 cpuset, relative to the root.
pub const CGROUP_V1_CPUSET: &str = "sys/fs/cgroup/cpuset/cpuset.cpus";
/// Where the manifests mount the hugepages emptyDir.
pub const HUGEPAGES_MOUNT: &str = "/hugepages";

/// A discovery error: the input was there but malformed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of the downward API annotations file is malformed.
    #[error("{}:{line}: {msg}", path.display())]
    Annotations {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A field of the network-status annotation is malformed, e.g.
    /// `network-status[1].device-info.pci.pci-address: "0000:zz" is not a PCI address`.
    #[error("{field}: {msg}")]
    Field {
        /// The field path.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// An environment variable is malformed.
    #[error("environment variable {var}: {msg}")]
    Env {
        /// Its name.
        var: String,
        /// What is wrong.
        msg: String,
    },
    /// A CPU set is malformed or empty.
    #[error("{source_name}: {msg}")]
    Cpus {
        /// Which file or call.
        source_name: String,
        /// What is wrong.
        msg: String,
    },
}

fn field(f: impl Into<String>, msg: impl Into<String>) -> DiscoverError {
    DiscoverError::Field { field: f.into(), msg: msg.into() }
}

/// One port the VNF would open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredPort {
    /// The `--port` spec: `0000:18:02.5`, `af_xdp:net1`, `af_packet:net1`, `vdev:…`.
    pub spec: String,
    /// Where it came from: `network-status[1] (sriov-a)` or `env PCIDEVICE_…`.
    pub source: String,
    /// Why this spec.
    pub reason: String,
    /// The pod interface, for kernel ports.
    pub interface: Option<String>,
    /// The PCI device behind it, when known.
    pub pci: Option<PciAddr>,
    /// The network-attachment name, when known.
    pub network: Option<String>,
}

/// The CPUs the pod may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuSet {
    /// The cgroup cpuset and the file it came from.
    pub cgroup: Option<(String, Vec<usize>)>,
    /// The affinity mask and where it came from.
    pub affinity: Option<(String, Vec<usize>)>,
    /// Both intersected: the CPUs to use.
    pub effective: Vec<usize>,
    /// The main (control) thread's CPU.
    pub main: Option<usize>,
    /// The worker CPUs.
    pub workers: Vec<usize>,
}

/// A hugetlbfs mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HugetlbMount {
    /// Mount point.
    pub path: String,
    /// Page size in KiB, when the mount says.
    pub pagesize_kb: Option<u64>,
}

/// A downward API hugepages value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HugepageLimit {
    /// Container name.
    pub container: String,
    /// `1G` or `2M`.
    pub size: String,
    /// `request` or `limit`.
    pub kind: String,
    /// MiB.
    pub mib: u64,
}

/// Hugepages the pod sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hugepages {
    /// hugetlbfs mounts.
    pub mounts: Vec<HugetlbMount>,
    /// Node-wide pools.
    pub pools: Vec<HugepagePool>,
    /// Downward API requests and limits.
    pub limits: Vec<HugepageLimit>,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// Ports, in port-id order.
    pub ports: Vec<DiscoveredPort>,
    /// Networks seen and not used, with the reason (the default network).
    pub skipped: Vec<String>,
    /// CPUs.
    pub cpus: CpuSet,
    /// Hugepages.
    pub hugepages: Hugepages,
    /// AF_XDP support as decided.
    pub af_xdp: AfXdpSupport,
    /// Things worth knowing (missing sources).
    pub notes: Vec<String>,
}

/// Discovers ports, CPUs and hugepages. `root` is `/` in a pod (a fixture tree in tests),
/// `env` the process environment, `podnetinfo` the downward API annotations file.
///
/// # Errors
/// [`DiscoverError`] naming the malformed file, field or variable.
pub fn discover(root: &Path, env: &[(String, String)], podnetinfo: &Path) -> Result<Discovery, DiscoverError> {
    discover_with(root, env, podnetinfo, node_features::af_xdp_support(root))
}

/// [`discover`] with AF_XDP support decided by the caller.
///
/// # Errors
/// As [`discover`].
pub fn discover_with(
    root: &Path,
    env: &[(String, String)],
    podnetinfo: &Path,
    af_xdp: AfXdpSupport,
) -> Result<Discovery, DiscoverError> {
    let sr = SysRoot::new(root);
    let mut notes = vec![];
    let mut ports: Vec<DiscoveredPort> = vec![];
    let mut skipped = vec![];
    let kernel_port = |iface: &str| {
        if af_xdp.available {
            format!("af_xdp:{iface}")
        } else {
            format!("af_packet:{iface}")
        }
    };
    let kernel_why = |base: String| {
        if af_xdp.available {
            format!("{base}; AF_XDP available ({})", af_xdp.how)
        } else {
            format!("{base}; AF_XDP unavailable ({}), AF_PACKET instead", af_xdp.how)
        }
    };

    match read_opt(podnetinfo)? {
        None => notes.push(format!(
            "{} not found: no network-status (not in a pod, or no downward API volume)",
            podnetinfo.display()
        )),
        Some(text) => {
            let map = parse_downward_map(podnetinfo, &text)?;
            match map.get(NETWORK_STATUS_ANNOTATION) {
                None => notes
                    .push(format!("{}: no {NETWORK_STATUS_ANNOTATION} annotation (no Multus?)", podnetinfo.display())),
                Some(js) => {
                    let mut vdev_n = 0;
                    for (i, ns) in parse_network_status(js)?.into_iter().enumerate() {
                        let source = format!("network-status[{i}] ({})", ns.name);
                        if ns.default {
                            skipped.push(format!(
                                "{source}: interface {} is the default cluster network, never a data port",
                                ns.interface.as_deref().unwrap_or("?")
                            ));
                            continue;
                        }
                        let need_iface = || {
                            ns.interface
                                .clone()
                                .ok_or_else(|| field(format!("network-status[{i}].interface"), "missing"))
                        };
                        let mut p = DiscoveredPort {
                            spec: String::new(),
                            source,
                            reason: String::new(),
                            interface: ns.interface.clone(),
                            pci: None,
                            network: Some(ns.name.clone()),
                        };
                        match &ns.device_info {
                            None => {
                                let ifc = need_iface()?;
                                p.spec = kernel_port(&ifc);
                                p.reason = kernel_why("kernel interface (no device-info)".into());
                            }
                            Some(DeviceInfo::Pci { pci_address, .. }) => {
                                p.pci = Some(*pci_address);
                                let drv = sysfs::current_driver(&sr, *pci_address);
                                match drv.as_deref() {
                                    Some(d) if sysfs::DPDK_DRIVERS.contains(&d) => {
                                        p.spec = pci_address.to_string();
                                        p.reason = format!("PCI device-info, bound to {d}: {}", pci_port());
                                    }
                                    Some(d) => {
                                        let ifc = need_iface()?;
                                        p.spec = kernel_port(&ifc);
                                        p.reason = kernel_why(format!(
                                            "PCI device-info, VF bound to kernel driver {d} (netdevice mode)"
                                        ));
                                    }
                                    None => {
                                        let in_pod = ns.interface.as_ref().filter(|i| sr.class_net().join(i).exists());
                                        if let Some(ifc) = in_pod {
                                            p.spec = kernel_port(ifc);
                                            p.reason = kernel_why(format!(
                                                "PCI device-info, driver not visible but interface {ifc} is in the pod"
                                            ));
                                        } else {
                                            p.spec = pci_address.to_string();
                                            p.reason = format!(
                                                "PCI device-info, driver not visible in sysfs and no kernel interface: {} as the device-info says",
                                                pci_port()
                                            );
                                        }
                                    }
                                }
                            }
                            Some(DeviceInfo::Vdpa { driver, path, pci_address }) => {
                                p.pci = *pci_address;
                                if driver == "vhost" {
                                    let path = path.clone().ok_or_else(|| {
                                        field(
                                            format!("network-status[{i}].device-info.vdpa.path"),
                                            "missing for driver vhost",
                                        )
                                    })?;
                                    p.spec = format!("vdev:virtio_user{vdev_n},path={path}");
                                    vdev_n += 1;
                                    p.reason =
                                        "vDPA device with the vhost driver: DPDK virtio-user over vhost-vdpa".into();
                                } else {
                                    let ifc = need_iface()?;
                                    p.spec = kernel_port(&ifc);
                                    p.reason =
                                        kernel_why(format!("vDPA device with the {driver} driver: kernel interface"));
                                }
                            }
                            Some(DeviceInfo::VhostUser { mode, path }) => {
                                let server = if mode == "server" { ",server=1" } else { "" };
                                p.spec = format!("vdev:net_virtio_user{vdev_n},path={path}{server}");
                                vdev_n += 1;
                                p.reason = format!("vhost-user socket, pod side is the {mode}");
                            }
                            Some(DeviceInfo::Memif { role, path }) => {
                                p.spec = format!("vdev:net_memif{vdev_n},role={role},socket={path}");
                                vdev_n += 1;
                                p.reason = format!("memif socket, role {role}");
                            }
                        }
                        if let Some(dup) = ports.iter().find(|q| q.spec == p.spec) {
                            return Err(field(
                                format!("network-status[{i}]"),
                                format!("gives port {} again (already from {})", p.spec, dup.source),
                            ));
                        }
                        ports.push(p);
                    }
                }
            }
        }
    }

    let pci_visible = sr.pci_devices().is_dir();
    for var in parse_pcidevice_env(env)? {
        if !pci_visible && !var.devices.is_empty() {
            notes.push(format!(
                "env {}: {} not found, so cannot check that its addresses are PCI devices of this node",
                var.var,
                sr.pci_devices().display()
            ));
        }
        for addr in &var.devices {
            if ports.iter().any(|p| p.pci == Some(*addr)) {
                continue;
            }
            if pci_visible && !sr.pci_device(*addr).exists() {
                return Err(DiscoverError::Env {
                    var: var.var.clone(),
                    msg: format!(
                        "{addr} is not a PCI device of this node (no {}): is the device plugin's resource list \
                         stale?",
                        sr.pci_device(*addr).display()
                    ),
                });
            }
            let source = format!("env {}", var.var);
            let info = var.info.get(&addr.to_string()).map(|s| format!("; info {s}")).unwrap_or_default();
            let drv = sysfs::current_driver(&sr, *addr);
            match drv.as_deref() {
                Some(d) if !sysfs::DPDK_DRIVERS.contains(&d) => {
                    let ifaces: Vec<String> = fs::read_dir(sr.pci_device(*addr).join("net"))
                        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
                        .unwrap_or_default();
                    match ifaces.first() {
                        Some(ifc) => ports.push(DiscoveredPort {
                            spec: kernel_port(ifc),
                            source,
                            reason: kernel_why(format!("VF bound to kernel driver {d}, interface {ifc}{info}")),
                            interface: Some(ifc.clone()),
                            pci: Some(*addr),
                            network: None,
                        }),
                        None => notes.push(format!(
                            "{source}: {addr} is bound to kernel driver {d} and has no interface in this pod: not used"
                        )),
                    }
                }
                _ => ports.push(DiscoveredPort {
                    spec: addr.to_string(),
                    source,
                    reason: match drv {
                        Some(d) => format!("device plugin resource, bound to {d}: {}{info}", pci_port()),
                        None => format!("device plugin resource, driver not visible in sysfs: {}{info}", pci_port()),
                    },
                    interface: None,
                    pci: Some(*addr),
                    network: None,
                }),
            }
        }
    }
    if ports.is_empty() {
        notes.push("no data port found".into());
    }

    let cpus = read_cpus(root)?;
    if cpus.effective.is_empty() {
        notes.push("no CPU set found (no cgroup cpuset, no affinity)".into());
    }
    let hugepages = read_hugepages(root, podnetinfo.parent())?;
    if hugepages.mounts.is_empty() {
        notes.push("no hugetlbfs mount".into());
    }
    Ok(Discovery { ports, skipped, cpus, hugepages, af_xdp, notes })
}

/// What a discovered device on vfio-pci becomes: a bare PCI address, which a build with the
/// `dpdk` feature gives to DPDK's PMD (or to the native driver with `--pci-driver native`)
/// and a build without it to the native driver.
fn pci_port() -> &'static str {
    if cfg!(feature = "dpdk") {
        "PCI port (DPDK's PMD; the native driver with --pci-driver native)"
    } else {
        "PCI port (the native driver: virtio-net, igb, igbvf)"
    }
}

impl Discovery {
    /// The port specs, in order.
    pub fn port_specs(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.spec.clone()).collect()
    }

    /// The command the VNF would run (with no port found, it would not run: see
    /// [`to_table`](Self::to_table) and [`to_json`](Self::to_json)).
    pub fn command(&self) -> String {
        let mut s = String::from("vnf-l2fwd l2fwd");
        for p in &self.ports {
            let _ = write!(s, " --port {}", p.spec);
        }
        if let Some(w) = self.cpus.workers.first() {
            let _ = write!(s, " --cpu {w}");
        }
        s
    }

    /// Pretty JSON; `command` is null when no port was found.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            let cmd = if self.ports.is_empty() { Value::Null } else { Value::String(self.command()) };
            m.insert("command".into(), cmd);
        }
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{:<4} {:<40} {:<36} REASON", "PORT", "SPEC", "SOURCE");
        for (i, p) in self.ports.iter().enumerate() {
            let _ = writeln!(s, "{i:<4} {:<40} {:<36} {}", p.spec, p.source, p.reason);
        }
        for k in &self.skipped {
            let _ = writeln!(s, "skipped: {k}");
        }
        let c = &self.cpus;
        let _ = writeln!(
            s,
            "cpus: {} (cgroup {}, affinity {}); main {}, workers {}",
            fmt_cpus(&c.effective),
            c.cgroup.as_ref().map(|(n, v)| format!("{} from {n}", fmt_cpus(v))).unwrap_or_else(|| "none".into()),
            c.affinity.as_ref().map(|(n, v)| format!("{} from {n}", fmt_cpus(v))).unwrap_or_else(|| "none".into()),
            c.main.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            fmt_cpus(&c.workers)
        );
        for m in &self.hugepages.mounts {
            let size = m.pagesize_kb.map(node_features::k8s_size).unwrap_or_else(|| "default size".into());
            let _ = writeln!(s, "hugetlbfs: {} ({size})", m.path);
        }
        for p in &self.hugepages.pools {
            let _ = writeln!(
                s,
                "hugepages {}: {} total, {} free (node-wide)",
                node_features::k8s_size(p.size_kb),
                p.total,
                p.free
            );
        }
        for l in &self.hugepages.limits {
            let _ = writeln!(s, "hugepages {} {} for container {}: {} MiB", l.size, l.kind, l.container, l.mib);
        }
        let _ = writeln!(s, "af_xdp: {} ({})", if self.af_xdp.available { "yes" } else { "no" }, self.af_xdp.how);
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.ports.is_empty() {
            let _ = writeln!(s, "would run: nothing: no data port found (give --port, or check the pod's networks)");
        } else {
            let _ = writeln!(s, "would run: {}", self.command());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::host::{pagesize_kb, unescape_mount};
    use super::*;

    #[test]
    fn go_quoting() {
        assert_eq!(go_unquote(r#""a\"b\\c\n\t""#).unwrap(), "a\"b\\c\n\t");
        assert_eq!(go_unquote(r#""\x41\u00e9\U0001F600\101""#).unwrap(), "Aé😀A");
        assert_eq!(go_unquote("\"é\"").unwrap(), "é");
        for bad in ["", "\"", "abc", r#""a"b""#, r#""\q""#, r#""\x4""#, r#""\xff""#, r#""\ud800""#, r#""a\""#] {
            assert!(go_unquote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mounts_and_sizes() {
        assert_eq!(pagesize_kb("2M"), Some(2048));
        assert_eq!(pagesize_kb("1024M"), Some(1 << 20));
        assert_eq!(pagesize_kb("1G"), Some(1 << 20));
        assert_eq!(pagesize_kb("x"), None);
        assert_eq!(unescape_mount(r"/mnt/huge\040pages"), "/mnt/huge pages");
        assert_eq!(unescape_mount(r"/a\04"), r"/a\04");
    }

    #[test]
    fn pcidevice_names() {
        assert_eq!(pcidevice_var("intel.com/sriov_netdevice"), "PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE");
        assert_eq!(pcidevice_var("openshift.io/dpdk_nic_1"), "PCIDEVICE_OPENSHIFT_IO_DPDK_NIC_1");
        let env = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let r = parse_pcidevice_env(&env(&[
            ("PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE", "0000:18:02.5,0000:18:02.6"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].devices.len(), 2);
        let e = parse_pcidevice_env(&env(&[("PCIDEVICE_X", "0000:18:02.5,,")])).unwrap_err().to_string();
        assert!(e.contains("PCIDEVICE_X") && e.contains("empty"), "{e}");
        let e = parse_pcidevice_env(&env(&[("PCIDEVICE_lower", "0000:18:02.5")])).unwrap_err().to_string();
        assert!(e.contains("PCIDEVICE_lower"), "{e}");
        let e = parse_pcidevice_env(&env(&[("PCIDEVICE_X_INFO", "{}")])).unwrap_err().to_string();
        assert!(e.contains("there is no PCIDEVICE_X"), "{e}");
    }
}
