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

/// Undoes Go's `strconv.Quote` on a double-quoted string.
///
/// # Errors
/// A message saying what is wrong (unterminated, bad escape, invalid UTF-8).
pub fn go_unquote(s: &str) -> Result<String, String> {
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
        .ok_or("value is not a double-quoted string")?;
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |s: &[u8]| -> Result<u32, String> {
        let t = std::str::from_utf8(s).map_err(|_| "bad escape")?;
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("bad hex escape {t:?}"));
        }
        u32::from_str_radix(t, 16).map_err(|e| e.to_string())
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            return Err(format!("unescaped quote at byte {}", i + 1));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).ok_or("trailing backslash")?;
        i += 2;
        let simple = match e {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            continue;
        }
        match e {
            b'x' => {
                let v = hex(b.get(i..i + 2).ok_or("short \\x escape")?)?;
                out.push(v as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let d = b.get(i - 1..i + 2).ok_or("short octal escape")?;
                if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    return Err("bad octal escape".into());
                }
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).map_err(|_| "octal escape > 255")?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = hex(b.get(i..i + n).ok_or("short unicode escape")?)?;
                let ch = char::from_u32(v).ok_or(format!("\\{} escape {v:#x} is not a character", e as char))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    String::from_utf8(out).map_err(|_| "value is not valid UTF-8".into())
}

/// Parses a downward API map file (`metadata.annotations` or `metadata.labels`): `key="value"`
/// lines with Go-quoted values.
///
/// # Errors
/// [`DiscoverError::Annotations`] naming the line.
pub fn parse_downward_map(path: &Path, text: &str) -> Result<BTreeMap<String, String>, DiscoverError> {
    let mut m = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| DiscoverError::Annotations { path: path.to_path_buf(), line: n + 1, msg };
        let (k, v) = line.split_once('=').ok_or_else(|| bad("expected key=\"value\"".into()))?;
        if k.is_empty() {
            return Err(bad("empty key".into()));
        }
        let v = go_unquote(v).map_err(|e| bad(format!("{k}: {e}")))?;
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

/// One entry of the network-status list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkStatus {
    /// Network name (`namespace/name` for attachments).
    pub name: String,
    /// Pod interface.
    pub interface: Option<String>,
    /// The cluster's default network.
    pub default: bool,
    /// Device information.
    pub device_info: Option<DeviceInfo>,
}

/// A device-info (NPWG device-info spec 1.x).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeviceInfo {
    /// `"type": "pci"`.
    Pci {
        /// `pci.pci-address`.
        pci_address: PciAddr,
        /// `pci.pf-pci-address`.
        pf_pci_address: Option<PciAddr>,
        /// `pci.vhost-net`.
        vhost_net: Option<String>,
    },
    /// `"type": "vdpa"`.
    Vdpa {
        /// `vdpa.driver` (`vhost` or `virtio`).
        driver: String,
        /// `vdpa.path` (`/dev/vhost-vdpa-N` for vhost).
        path: Option<String>,
        /// `vdpa.pci-address`.
        pci_address: Option<PciAddr>,
    },
    /// `"type": "vhost-user"`.
    VhostUser {
        /// `vhost-user.mode` (`client` or `server`).
        mode: String,
        /// `vhost-user.path`: the socket.
        path: String,
    },
    /// `"type": "memif"`.
    Memif {
        /// `memif.role`.
        role: String,
        /// `memif.path`: the socket.
        path: String,
    },
}

fn opt_str<'a>(obj: &'a Value, key: &str, at: &str) -> Result<Option<&'a str>, DiscoverError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(field(format!("{at}.{key}"), format!("{v} is not a string"))),
    }
}

fn req_str<'a>(obj: &'a Value, key: &str, at: &str) -> Result<&'a str, DiscoverError> {
    opt_str(obj, key, at)?.ok_or_else(|| field(format!("{at}.{key}"), "missing"))
}

fn opt_pci(obj: &Value, key: &str, at: &str) -> Result<Option<PciAddr>, DiscoverError> {
    match opt_str(obj, key, at)? {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| field(format!("{at}.{key}"), format!("{s:?} is not a PCI address"))),
    }
}

fn sub<'a>(obj: &'a Value, key: &str, at: &str) -> Result<&'a Value, DiscoverError> {
    match obj.get(key) {
        Some(v @ Value::Object(_)) => Ok(v),
        None | Some(Value::Null) => Err(field(format!("{at}.{key}"), "missing")),
        Some(v) => Err(field(format!("{at}.{key}"), format!("{v} is not an object"))),
    }
}

fn parse_device_info(v: &Value, at: &str) -> Result<DeviceInfo, DiscoverError> {
    if !v.is_object() {
        return Err(field(at, format!("{v} is not an object")));
    }
    let ty = req_str(v, "type", at)?;
    if let Some(ver) = opt_str(v, "version", at)? {
        if !ver.starts_with("1.") {
            return Err(field(format!("{at}.version"), format!("{ver:?} is not a 1.x device-info version")));
        }
    }
    Ok(match ty {
        "pci" => {
            let p = sub(v, "pci", at)?;
            let at = format!("{at}.pci");
            DeviceInfo::Pci {
                pci_address: opt_pci(p, "pci-address", &at)?
                    .ok_or_else(|| field(format!("{at}.pci-address"), "missing"))?,
                pf_pci_address: opt_pci(p, "pf-pci-address", &at)?,
                vhost_net: opt_str(p, "vhost-net", &at)?.map(str::to_string),
            }
        }
        "vdpa" => {
            let p = sub(v, "vdpa", at)?;
            let at = format!("{at}.vdpa");
            DeviceInfo::Vdpa {
                driver: req_str(p, "driver", &at)?.to_string(),
                path: opt_str(p, "path", &at)?.map(str::to_string),
                pci_address: opt_pci(p, "pci-address", &at)?,
            }
        }
        "vhost-user" => {
            let p = sub(v, "vhost-user", at)?;
            let at = format!("{at}.vhost-user");
            let mode = req_str(p, "mode", &at)?;
            if mode != "client" && mode != "server" {
                return Err(field(format!("{at}.mode"), format!("{mode:?} is neither \"client\" nor \"server\"")));
            }
            DeviceInfo::VhostUser { mode: mode.into(), path: req_str(p, "path", &at)?.into() }
        }
        "memif" => {
            let p = sub(v, "memif", at)?;
            let at = format!("{at}.memif");
            DeviceInfo::Memif { role: req_str(p, "role", &at)?.into(), path: req_str(p, "path", &at)?.into() }
        }
        other => {
            return Err(field(format!("{at}.type"), format!("{other:?} is not one of pci, vdpa, vhost-user, memif")))
        }
    })
}

/// Parses the network-status annotation value.
///
/// # Errors
/// [`DiscoverError::Field`] naming the field (`network-status[1].device-info.pci.pci-address`).
pub fn parse_network_status(json: &str) -> Result<Vec<NetworkStatus>, DiscoverError> {
    let v: Value = serde_json::from_str(json).map_err(|e| field("network-status", format!("not JSON: {e}")))?;
    let list = v.as_array().ok_or_else(|| field("network-status", "is not a JSON list"))?;
    let mut out = vec![];
    for (i, e) in list.iter().enumerate() {
        let at = format!("network-status[{i}]");
        if !e.is_object() {
            return Err(field(at, "is not an object"));
        }
        let name = req_str(e, "name", &at)?.to_string();
        let interface = opt_str(e, "interface", &at)?.map(str::to_string);
        if let Some(ifc) = &interface {
            if ifc.is_empty() || ifc.len() > 15 || ifc.contains(['/', ' ', ':', ',', '=']) {
                return Err(field(format!("{at}.interface"), format!("{ifc:?} is not a Linux interface name")));
            }
        }
        let default = match e.get("default") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(field(format!("{at}.default"), format!("{v} is not a boolean"))),
        };
        let device_info = match e.get("device-info") {
            None | Some(Value::Null) => None,
            Some(d) => Some(parse_device_info(d, &format!("{at}.device-info"))?),
        };
        out.push(NetworkStatus { name, interface, default, device_info });
    }
    Ok(out)
}

/// One SR-IOV device plugin resource from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PciDeviceVar {
    /// The variable, e.g. `PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE`.
    pub var: String,
    /// Its devices, in order.
    pub devices: Vec<PciAddr>,
    /// Per-device details from `<var>_INFO`, as JSON text.
    pub info: BTreeMap<String, String>,
}

/// The variable the SR-IOV network device plugin sets for an extended resource:
/// `intel.com/sriov_netdevice` → `PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE`.
pub fn pcidevice_var(resource: &str) -> String {
    let (prefix, name) = resource.split_once('/').unwrap_or(("", resource));
    let mut v = String::from(PCIDEVICE_PREFIX);
    if !prefix.is_empty() {
        v.push_str(&prefix.replace('.', "_"));
        v.push('_');
    }
    v.push_str(name);
    v.to_uppercase()
}

/// Reads the `PCIDEVICE_*` variables, sorted by name.
///
/// # Errors
/// [`DiscoverError::Env`] naming the variable.
pub fn parse_pcidevice_env(env: &[(String, String)]) -> Result<Vec<PciDeviceVar>, DiscoverError> {
    let mut plain: BTreeMap<&str, &str> = BTreeMap::new();
    let mut infos: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(PCIDEVICE_PREFIX) else { continue };
        let bad = |msg: String| DiscoverError::Env { var: k.clone(), msg };
        // The plugin upper-cases the name and replaces the prefix's dots; a resource name may
        // keep a '-'.
        if rest.is_empty()
            || !rest.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
        {
            return Err(bad("name is not PCIDEVICE_ followed by A-Z, 0-9, _ and -".into()));
        }
        match k.strip_suffix("_INFO") {
            // A resource named "..._info" has a plain variable ending in _INFO whose value is a
            // list of addresses, not JSON: tell them apart by the value.
            Some(base) if v.trim_start().starts_with('{') => {
                infos.insert(base, v);
            }
            _ => {
                plain.insert(k, v);
            }
        }
    }
    let mut out = vec![];
    for (var, val) in &plain {
        let bad = |msg: String| DiscoverError::Env { var: var.to_string(), msg };
        let mut devices = vec![];
        for (i, a) in val.split(',').enumerate() {
            let a = a.trim();
            if a.is_empty() {
                return Err(bad(format!("entry {i} is empty in {val:?}")));
            }
            let addr: PciAddr = a.parse().map_err(|_| bad(format!("entry {i} {a:?} is not a PCI address")))?;
            if devices.contains(&addr) {
                return Err(bad(format!("{a} is listed twice")));
            }
            devices.push(addr);
        }
        let mut info = BTreeMap::new();
        if let Some(js) = infos.remove(var) {
            let ivar = format!("{var}_INFO");
            let bad = |msg: String| DiscoverError::Env { var: ivar.clone(), msg };
            let v: Value = serde_json::from_str(js).map_err(|e| bad(format!("not JSON: {e}")))?;
            let obj = v.as_object().ok_or_else(|| bad("is not a JSON object keyed by PCI address".into()))?;
            for (k, det) in obj {
                let addr: PciAddr = k.parse().map_err(|_| bad(format!("key {k:?} is not a PCI address")))?;
                if !devices.contains(&addr) {
                    return Err(bad(format!("{k} is not among {var}={val}")));
                }
                if !det.is_object() {
                    return Err(bad(format!("[{k:?}] is not an object")));
                }
                info.insert(addr.to_string(), det.to_string());
            }
        }
        out.push(PciDeviceVar { var: var.to_string(), devices, info });
    }
    if let Some((base, _)) = infos.into_iter().next() {
        return Err(DiscoverError::Env { var: format!("{base}_INFO"), msg: format!("there is no {base}") });
    }
    Ok(out)
}

fn read_opt(path: &Path) -> Result<Option<String>, DiscoverError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DiscoverError::Io { path: path.to_path_buf(), source: e }),
    }
}

fn affinity(root: &Path) -> Result<Option<(String, Vec<usize>)>, DiscoverError> {
    if root == Path::new("/") {
        if let Some(v) = sys::sched_getaffinity() {
            return Ok(Some(("sched_getaffinity".into(), v)));
        }
    }
    let p = root.join("proc/self/status");
    let Some(text) = read_opt(&p)? else { return Ok(None) };
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) else { return Ok(None) };
    let v = parse_cpu_list(line).map_err(|msg| DiscoverError::Cpus { source_name: p.display().to_string(), msg })?;
    Ok(Some((p.display().to_string(), v)))
}

/// Reads the pod's CPU set.
///
/// # Errors
/// [`DiscoverError::Cpus`] when a set is malformed, or cgroup and affinity do not overlap.
pub fn read_cpus(root: &Path) -> Result<CpuSet, DiscoverError> {
    let mut cgroup = None;
    for rel in [CGROUP_V2_CPUSET, CGROUP_V1_CPUSET] {
        let p = root.join(rel);
        if let Some(text) = read_opt(&p)? {
            let v = parse_cpu_list(&text)
                .map_err(|msg| DiscoverError::Cpus { source_name: p.display().to_string(), msg })?;
            if !v.is_empty() {
                cgroup = Some((format!("/{rel}"), v));
                break;
            }
        }
    }
    let affinity = affinity(root)?;
    let effective: Vec<usize> = match (&cgroup, &affinity) {
        (Some((_, c)), Some((_, a))) => c.iter().copied().filter(|x| a.contains(x)).collect(),
        (Some((_, c)), None) => c.clone(),
        (None, Some((_, a))) => a.clone(),
        (None, None) => vec![],
    };
    if effective.is_empty() {
        if let (Some((cn, c)), Some((an, a))) = (&cgroup, &affinity) {
            return Err(DiscoverError::Cpus {
                source_name: format!("{cn} and {an}"),
                msg: format!("cpuset {} and affinity {} do not overlap", fmt_cpus(c), fmt_cpus(a)),
            });
        }
    }
    let main = effective.first().copied();
    let workers = if effective.len() > 1 { effective[1..].to_vec() } else { effective.clone() };
    Ok(CpuSet { cgroup, affinity, effective, main, workers })
}

/// Parses a `pagesize=` mount option (`2M`, `1024M`, `1G`, `64K`) into KiB.
fn pagesize_kb(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1),
        (i, 'M' | 'm') => (&s[..i], 1 << 10),
        (i, 'G' | 'g') => (&s[..i], 1 << 20),
        _ => (s, 0),
    };
    let n: u64 = num.parse().ok()?;
    if mult == 0 {
        return Some(n / 1024);
    }
    n.checked_mul(mult)
}

/// Undoes the octal escapes of `/proc/mounts` (`\040` = space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = b[i + 1..i + 4].iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads hugetlbfs mounts, pools, and the downward API values in `podnetinfo_dir`.
///
/// # Errors
/// [`DiscoverError::Field`] when a downward API value is not a number.
pub fn read_hugepages(root: &Path, podnetinfo_dir: Option<&Path>) -> Result<Hugepages, DiscoverError> {
    let mounts = read_opt(&root.join("proc/mounts"))?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 || f[2] != "hugetlbfs" {
                return None;
            }
            let pagesize_kb = f[3].split(',').find_map(|o| o.strip_prefix("pagesize=")).and_then(pagesize_kb);
            Some(HugetlbMount { path: unescape_mount(f[1]), pagesize_kb })
        })
        .collect();
    let mut limits = vec![];
    if let Some(dir) = podnetinfo_dir {
        if let Ok(rd) = fs::read_dir(dir) {
            let mut names: Vec<String> = rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
            names.sort();
            for name in names {
                let Some(rest) = name.strip_prefix("hugepages_") else { continue };
                let Some((size, rest)) = rest.split_once('_') else { continue };
                let Some((kind, container)) = rest.split_once('_') else { continue };
                if !["1G", "2M"].contains(&size) || !["request", "limit"].contains(&kind) || container.is_empty() {
                    continue;
                }
                let p = dir.join(&name);
                let text = read_opt(&p)?.unwrap_or_default();
                let mib = text
                    .trim()
                    .parse()
                    .map_err(|_| field(p.display().to_string(), format!("{:?} is not a number of MiB", text.trim())))?;
                limits.push(HugepageLimit { container: container.into(), size: size.into(), kind: kind.into(), mib });
            }
        }
    }
    Ok(Hugepages { mounts, pools: hugepage_pools(&root.join("sys/kernel/mm/hugepages")), limits })
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

#[allow(unsafe_code)]
mod sys {
    //! `sched_getaffinity(2)`.

    pub(super) fn sched_getaffinity() -> Option<Vec<usize>> {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: the pointer and size describe `set`, which outlives the call.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            return None;
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: CPU_ISSET reads bit i < the set's size in bits.
        Some((0..max).filter(|&i| unsafe { libc::CPU_ISSET(i, &set) }).collect())
    }
}

#[cfg(test)]
mod tests {
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
