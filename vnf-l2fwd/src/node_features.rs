//! What a node offers a data plane: `vnf-l2fwd node-features [--root DIR] [--format table|json|nfd]`.
//!
//! Everything is read from files under a root (`/` on a node, a fixture tree in tests):
//! - `proc/cpuinfo`: architecture, CPU implementer/part (Arm) or vendor/model (x86), and the
//!   `Features` (arm64) or `flags` (x86) line for NEON/SVE/CRC32/AES/PMULL/SHA or
//!   SSE4.2/AVX2/AVX-512/AES;
//! - `sys/devices/system/cpu/online` (CPUs) and `sys/devices/system/node/node*/cpulist` (NUMA),
//!   with per-node hugepages under `node*/hugepages/`;
//! - `sys/kernel/mm/hugepages/hugepages-<N>kB/{nr,free}_hugepages`;
//! - IOMMU, vfio-pci and SR-IOV through [`vfio::sysfs`] (`sys/kernel/iommu_groups`,
//!   `sys/bus/pci/drivers/vfio-pci`, `sriov_totalvfs`/`sriov_numvfs`, `virtfnN`), plus
//!   `lib/modules/<release>/modules.{dep,builtin}` for a vfio-pci module not yet loaded;
//! - `proc/sys/kernel/osrelease` for AF_XDP (our AF_XDP port needs BPF links for XDP, Linux
//!   5.9+); on the live root (`/`) an `AF_XDP` socket is also created to prove the kernel has
//!   XDP sockets (EPERM/EACCES count as present: the family exists, we lack the privilege).
//!
//! The NFD output is a Node Feature Discovery *local feature file* (`name=value` lines for
//! `/etc/kubernetes/node-feature-discovery/features.d/`), every label under [`NFD_PREFIX`],
//! a sub-namespace of `feature.node.kubernetes.io` that nfd-master always accepts (other
//! namespaces must be allowed with `extraLabelNs`).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use vfio::sysfs::{self, IommuStatus, PciAddr};
use vfio::SysRoot;

/// The label prefix of the NFD feature file.
pub const NFD_PREFIX: &str = "dataplane.feature.node.kubernetes.io/";

/// Where NFD's nfd-worker reads local feature files on the host.
pub const NFD_FEATURES_DIR: &str = "/etc/kubernetes/node-feature-discovery/features.d";

/// First Linux release whose AF_XDP our port can use (BPF links for XDP).
pub const AF_XDP_MIN_KERNEL: (u32, u32) = (5, 9);

/// One hugepage size's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HugepagePool {
    /// Page size in KiB (2048 = 2 MiB, 1048576 = 1 GiB).
    pub size_kb: u64,
    /// Pages reserved (`nr_hugepages`).
    pub total: u64,
    /// Pages free (`free_hugepages`).
    pub free: u64,
}

/// Reads the `hugepages-<N>kB` directories under `dir` (e.g. `sys/kernel/mm/hugepages`),
/// sorted by size; unreadable or odd entries are skipped.
pub fn hugepage_pools(dir: &Path) -> Vec<HugepagePool> {
    let Ok(rd) = fs::read_dir(dir) else { return vec![] };
    let mut v: Vec<HugepagePool> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let size_kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
            let num = |f: &str| -> Option<u64> { fs::read_to_string(e.path().join(f)).ok()?.trim().parse().ok() };
            Some(HugepagePool {
                size_kb,
                total: num("nr_hugepages").unwrap_or(0),
                free: num("free_hugepages").unwrap_or(0),
            })
        })
        .collect();
    v.sort_by_key(|p| p.size_kb);
    v
}

/// A page size the way Kubernetes names hugepage resources: 2048 → `2Mi`, 1048576 → `1Gi`.
pub fn k8s_size(size_kb: u64) -> String {
    if size_kb >= 1 << 20 && size_kb % (1 << 20) == 0 {
        format!("{}Gi", size_kb >> 20)
    } else if size_kb >= 1 << 10 && size_kb % (1 << 10) == 0 {
        format!("{}Mi", size_kb >> 10)
    } else {
        format!("{size_kb}Ki")
    }
}

/// Parses a kernel CPU list (`0-3,8,10-11`) strictly.
///
/// # Errors
/// A message naming the bad part; a range is limited to 65536 CPUs.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut v = vec![];
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| x.parse::<usize>().map_err(|_| format!("{part:?} is not a CPU number or range"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a || b - a > 65536 {
                    return Err(format!("{part:?} is not a valid CPU range"));
                }
                v.extend(a..=b);
            }
            None => v.push(num(part)?),
        }
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The CPUs this process may run on (`Cpus_allowed_list` in `/proc/self/status`: its cpuset
/// and affinity, as in a container); empty when that cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).and_then(|l| parse_cpu_list(l).ok()))
        .unwrap_or_default()
}

/// Whether our AF_XDP port can work on a node, and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AfXdpSupport {
    /// AF_XDP usable.
    pub available: bool,
    /// How it was decided, for people.
    pub how: String,
}

/// The kernel release (`proc/sys/kernel/osrelease`) and its (major, minor).
pub fn kernel_release(root: &Path) -> Option<(String, (u32, u32))> {
    let rel = fs::read_to_string(root.join("proc/sys/kernel/osrelease")).ok()?.trim().to_string();
    let mut it = rel.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((rel, (major, minor)))
}

/// Decides AF_XDP support: kernel ≥ [`AF_XDP_MIN_KERNEL`], and on the live root (`/`) an
/// `AF_XDP` socket probe.
pub fn af_xdp_support(root: &Path) -> AfXdpSupport {
    let Some((rel, ver)) = kernel_release(root) else {
        return AfXdpSupport { available: false, how: "kernel release unknown (no proc/sys/kernel/osrelease)".into() };
    };
    if ver < AF_XDP_MIN_KERNEL {
        return AfXdpSupport {
            available: false,
            how: format!("kernel {rel} < {}.{} (no BPF links for XDP)", AF_XDP_MIN_KERNEL.0, AF_XDP_MIN_KERNEL.1),
        };
    }
    if root != Path::new("/") {
        return AfXdpSupport { available: true, how: format!("kernel {rel} (fixture root: no socket probe)") };
    }
    match sys::probe_af_xdp() {
        sys::Probe::Created => AfXdpSupport { available: true, how: format!("kernel {rel}, AF_XDP socket created") },
        sys::Probe::NotPermitted(e) => {
            AfXdpSupport { available: true, how: format!("kernel {rel}, AF_XDP socket family present ({e})") }
        }
        sys::Probe::Unsupported(e) => {
            AfXdpSupport { available: false, how: format!("kernel {rel}, AF_XDP socket not supported ({e})") }
        }
    }
}

#[allow(unsafe_code)]
mod sys {
    //! The one system call this module makes: creating (and closing) an AF_XDP socket.

    /// What `socket(AF_XDP, SOCK_RAW, 0)` said.
    pub(super) enum Probe {
        Created,
        NotPermitted(std::io::Error),
        Unsupported(std::io::Error),
    }

    pub(super) fn probe_af_xdp() -> Probe {
        // SAFETY: socket(2) takes no pointers; a returned descriptor is ours and closed below.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd >= 0 {
            // SAFETY: fd was just returned by socket(2) and is closed exactly once.
            unsafe { libc::close(fd) };
            return Probe::Created;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Probe::NotPermitted(e),
            _ => Probe::Unsupported(e),
        }
    }
}

/// The CPU: architecture and identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuId {
    /// `aarch64`, `x86_64`, or what the root's cpuinfo suggests.
    pub arch: String,
    /// Vendor: Arm implementer name (`Arm`, `Ampere`…) or x86 `vendor_id` (`GenuineIntel`, `AuthenticAMD`).
    pub vendor: String,
    /// Arm `CPU implementer` (e.g. 0x41).
    pub implementer: Option<u32>,
    /// Arm `CPU part` (e.g. 0xd0c).
    pub part: Option<u32>,
    /// Core or model name: `Neoverse-N1`, or x86 `model name`.
    pub model: String,
}

/// A NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumaNode {
    /// Node id.
    pub id: u32,
    /// Its CPUs.
    pub cpus: Vec<usize>,
    /// Its hugepages.
    pub hugepages: Vec<HugepagePool>,
}

/// vfio-pci availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioPci {
    /// The driver is registered (`sys/bus/pci/drivers/vfio-pci`).
    pub loaded: bool,
    /// The module is installed or built in (`lib/modules/<release>/modules.{dep,builtin}`).
    pub module_available: bool,
}

/// A network device one of our native PCI drivers supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativePciDevice {
    /// Its address.
    pub addr: PciAddr,
    /// The native driver (`virtio-net`, `igb`, `igbvf`), as `--port pci:ADDRESS` opens it.
    pub native_driver: String,
    /// The kernel driver it is bound to now (`vfio-pci` when it is ready for the native driver).
    pub bound_to: Option<String>,
}

/// An SR-IOV capable NIC (a physical function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SriovNic {
    /// PF address.
    pub pf: PciAddr,
    /// Known name of the device, if any.
    pub name: Option<String>,
    /// PF driver.
    pub driver: Option<String>,
    /// PF interfaces.
    pub interfaces: Vec<String>,
    /// `sriov_totalvfs`.
    pub total_vfs: u32,
    /// `sriov_numvfs`.
    pub num_vfs: u32,
    /// VF drivers and how many VFs each drives (`none` for unbound VFs).
    pub vf_drivers: BTreeMap<String, u32>,
    /// NUMA node of the PF.
    pub numa_node: Option<u32>,
}

/// Everything `node-features` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFeatures {
    /// CPU identity.
    pub cpu: CpuId,
    /// Data-plane relevant instruction-set extensions of this architecture: name → present.
    pub extensions: BTreeMap<String, bool>,
    /// Online CPUs.
    pub cpus_online: usize,
    /// NUMA nodes (empty when the kernel shows none).
    pub numa_nodes: Vec<NumaNode>,
    /// System-wide hugepage pools.
    pub hugepages: Vec<HugepagePool>,
    /// IOMMU and VFIO.
    pub iommu: IommuStatus,
    /// vfio-pci.
    pub vfio_pci: VfioPci,
    /// SR-IOV PFs.
    pub sriov: Vec<SriovNic>,
    /// Network devices a native driver of ours can drive once bound to vfio-pci
    /// (`dataplane::port::pci`: virtio-net, igb, igbvf), VFs included.
    pub native_pci: Vec<NativePciDevice>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// AF_XDP.
    pub af_xdp: AfXdpSupport,
    /// What could not be read, for people.
    pub notes: Vec<String>,
}

/// Arm implementer codes → vendor names.
fn arm_implementer(code: u32) -> &'static str {
    match code {
        0x41 => "Arm",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "APM",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => "unknown",
    }
}

/// (implementer, part) → core name, for the data-centre cores that matter here.
pub fn arm_core_name(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, 0xd84) => "Neoverse-V3",
        (0x41, 0xd8e) => "Neoverse-N3",
        (0x43, 0x0af) => "ThunderX2",
        (0x46, 0x001) => "A64FX",
        (0x48, 0xd01) => "TaiShan-v110",
        (0xc0, 0xac3) => "Ampere-1",
        (0xc0, 0xac4) => "Ampere-1a",
        _ => return None,
    })
}

/// arm64 `Features` names → our names.
const ARM_EXTENSIONS: [(&str, &str); 11] = [
    ("neon", "asimd"),
    ("sve", "sve"),
    ("sve2", "sve2"),
    ("crc32", "crc32"),
    ("aes", "aes"),
    ("pmull", "pmull"),
    ("sha1", "sha1"),
    ("sha2", "sha2"),
    ("sha3", "sha3"),
    ("sha512", "sha512"),
    ("atomics", "atomics"),
];

/// x86 `flags` names → our names (`crc32` is SSE4.2's CRC32C instruction).
const X86_EXTENSIONS: [(&str, &str); 10] = [
    ("sse4_2", "sse4_2"),
    ("crc32", "sse4_2"),
    ("avx2", "avx2"),
    ("avx512f", "avx512f"),
    ("avx512bw", "avx512bw"),
    ("avx512vl", "avx512vl"),
    ("aes", "aes"),
    ("pclmulqdq", "pclmulqdq"),
    ("sha_ni", "sha_ni"),
    ("gfni", "gfni"),
];

/// The first value of `key` in cpuinfo text.
fn cpuinfo_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn parse_num(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `/proc/cpuinfo` into the CPU identity, extensions and number of processors.
pub fn parse_cpuinfo(text: &str) -> (CpuId, BTreeMap<String, bool>, usize) {
    let processors = text.lines().filter(|l| l.split(':').next().map(str::trim) == Some("processor")).count();
    let mut ext = BTreeMap::new();
    if let Some(imp) = cpuinfo_field(text, "CPU implementer").and_then(parse_num) {
        let part = cpuinfo_field(text, "CPU part").and_then(parse_num);
        let feats: Vec<&str> = cpuinfo_field(text, "Features").unwrap_or("").split_whitespace().collect();
        for (ours, theirs) in ARM_EXTENSIONS {
            ext.insert(ours.to_string(), feats.contains(&theirs));
        }
        let model = part
            .and_then(|p| arm_core_name(imp, p))
            .map(str::to_string)
            .or_else(|| cpuinfo_field(text, "model name").map(str::to_string))
            .unwrap_or_else(|| format!("part {:#x}", part.unwrap_or(0)));
        let cpu =
            CpuId { arch: "aarch64".into(), vendor: arm_implementer(imp).into(), implementer: Some(imp), part, model };
        return (cpu, ext, processors);
    }
    if let Some(vendor) = cpuinfo_field(text, "vendor_id") {
        let flags: Vec<&str> = cpuinfo_field(text, "flags").unwrap_or("").split_whitespace().collect();
        for (ours, theirs) in X86_EXTENSIONS {
            ext.insert(ours.to_string(), flags.contains(&theirs));
        }
        let model = cpuinfo_field(text, "model name").unwrap_or("unknown").to_string();
        let cpu = CpuId { arch: "x86_64".into(), vendor: vendor.into(), implementer: None, part: None, model };
        return (cpu, ext, processors);
    }
    let cpu = CpuId {
        arch: "unknown".into(),
        vendor: "unknown".into(),
        implementer: None,
        part: None,
        model: cpuinfo_field(text, "model name").unwrap_or("unknown").into(),
    };
    (cpu, ext, processors)
}

fn numa_nodes(root: &Path) -> Vec<NumaNode> {
    let dir = root.join("sys/devices/system/node");
    let Ok(rd) = fs::read_dir(&dir) else { return vec![] };
    let mut v: Vec<NumaNode> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let id: u32 = e.file_name().to_str()?.strip_prefix("node")?.parse().ok()?;
            let cpus = fs::read_to_string(e.path().join("cpulist")).ok().and_then(|s| parse_cpu_list(&s).ok())?;
            Some(NumaNode { id, cpus, hugepages: hugepage_pools(&e.path().join("hugepages")) })
        })
        .collect();
    v.sort_by_key(|n| n.id);
    v
}

fn vfio_module_available(root: &Path, release: Option<&str>) -> bool {
    let Some(rel) = release else { return false };
    let dir = root.join("lib/modules").join(rel);
    ["modules.dep", "modules.builtin"].iter().any(|f| {
        fs::read_to_string(dir.join(f)).is_ok_and(|t| {
            t.lines().any(|l| {
                l.split(':').next().is_some_and(|m| m.ends_with("/vfio-pci.ko") || m.contains("/vfio-pci.ko."))
            })
        })
    })
}

/// The network devices (PFs and VFs) whose config header names a device our native drivers
/// support.
fn native_pci_devices(root: &Path) -> Vec<NativePciDevice> {
    let sr = SysRoot::new(root);
    let Ok(devs) = sysfs::list_network_devices(&sr) else { return vec![] };
    devs.into_iter()
        .filter_map(|d| {
            let mut hdr = fs::read(sr.pci_device(d.addr).join("config")).ok()?;
            // An SR-IOV VF's own config space reads vendor and device 0xffff (the ids live in
            // its PF's SR-IOV capability); sysfs gives the real ones, as vfio-pci does.
            if let (Some(v), Some(dev), true) = (d.vendor, d.device, hdr.len() >= 4) {
                hdr[0..2].copy_from_slice(&v.to_le_bytes());
                hdr[2..4].copy_from_slice(&dev.to_le_bytes());
            }
            let drv = dataplane::port::pci::driver_for(&hdr)?;
            Some(NativePciDevice { addr: d.addr, native_driver: drv.to_string(), bound_to: d.driver.clone() })
        })
        .collect()
}

fn sriov_nics(root: &Path, notes: &mut Vec<String>) -> Vec<SriovNic> {
    let sr = SysRoot::new(root);
    let devs = match sysfs::list_network_devices(&sr) {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!("PCI devices not readable: {e}"));
            return vec![];
        }
    };
    devs.into_iter()
        .filter_map(|d| {
            let s = d.sriov.as_ref()?;
            let mut vf_drivers = BTreeMap::new();
            for vf in &s.vfs {
                let drv = sysfs::current_driver(&sr, *vf).unwrap_or_else(|| "none".into());
                *vf_drivers.entry(drv).or_insert(0) += 1;
            }
            Some(SriovNic {
                pf: d.addr,
                name: d.name.map(str::to_string),
                driver: d.driver.clone(),
                interfaces: d.interfaces.iter().map(|i| i.name.clone()).collect(),
                total_vfs: s.total_vfs,
                num_vfs: s.num_vfs,
                vf_drivers,
                numa_node: d.numa_node,
            })
        })
        .collect()
}

impl NodeFeatures {
    /// Reads everything under `root`. Nothing is fatal: what cannot be read is empty, `false`,
    /// or `unknown`, and listed in `notes`.
    pub fn read(root: &Path) -> Self {
        let mut notes = vec![];
        let cpuinfo = fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_else(|e| {
            notes.push(format!("proc/cpuinfo: {e}"));
            String::new()
        });
        let (mut cpu, extensions, processors) = parse_cpuinfo(&cpuinfo);
        if cpu.arch == "unknown" && root == Path::new("/") {
            cpu.arch = std::env::consts::ARCH.into();
        }
        let cpus_online = fs::read_to_string(root.join("sys/devices/system/cpu/online"))
            .ok()
            .and_then(|s| parse_cpu_list(&s).ok())
            .map(|v| v.len())
            .unwrap_or(processors);
        let kernel = kernel_release(root).map(|(r, _)| r);
        let sr = SysRoot::new(root);
        NodeFeatures {
            cpu,
            extensions,
            cpus_online,
            numa_nodes: numa_nodes(root),
            hugepages: hugepage_pools(&root.join("sys/kernel/mm/hugepages")),
            iommu: sysfs::iommu_status(&sr),
            vfio_pci: VfioPci {
                loaded: sr.pci_driver(sysfs::VFIO_PCI).is_dir(),
                module_available: vfio_module_available(root, kernel.as_deref()),
            },
            sriov: sriov_nics(root, &mut notes),
            native_pci: native_pci_devices(root),
            af_xdp: af_xdp_support(root),
            kernel,
            notes,
        }
    }

    /// Kubernetes' name of the architecture (`arm64`, `amd64`).
    pub fn k8s_arch(&self) -> &str {
        match self.cpu.arch.as_str() {
            "aarch64" => "arm64",
            "x86_64" => "amd64",
            a => a,
        }
    }

    /// The NFD labels, without [`NFD_PREFIX`], sorted by name.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            l.insert(k.to_string(), label_value(&v));
        };
        put("arch", self.k8s_arch().to_string());
        put("cpu-vendor", self.cpu.vendor.to_lowercase());
        put("cpu-model", self.cpu.model.to_lowercase());
        if let Some(i) = self.cpu.implementer {
            put("cpu-implementer", format!("0x{i:02x}"));
        }
        if let Some(p) = self.cpu.part {
            put("cpu-part", format!("0x{p:03x}"));
        }
        for (k, v) in &self.extensions {
            put(&k.replace('_', "-"), v.to_string());
        }
        put("cpus", self.cpus_online.to_string());
        put("numa-nodes", self.numa_nodes.len().max(1).to_string());
        for p in &self.hugepages {
            let s = k8s_size(p.size_kb);
            put(&format!("hugepages-{s}-total"), p.total.to_string());
            put(&format!("hugepages-{s}-free"), p.free.to_string());
        }
        put("iommu", (self.iommu.mode == sysfs::IommuMode::Iommu).to_string());
        put("vfio-noiommu", (self.iommu.mode == sysfs::IommuMode::NoIommu).to_string());
        put("vfio-pci", (self.vfio_pci.loaded || self.vfio_pci.module_available).to_string());
        put("sriov", (!self.sriov.is_empty()).to_string());
        put("sriov-pfs", self.sriov.len().to_string());
        put("sriov-vfs", self.sriov.iter().map(|n| n.num_vfs).sum::<u32>().to_string());
        put("sriov-vfs-total", self.sriov.iter().map(|n| n.total_vfs).sum::<u32>().to_string());
        put("af-xdp", self.af_xdp.available.to_string());
        put("native-pci-devices", self.native_pci.len().to_string());
        for drv in ["virtio-net", "igb", "igbvf"] {
            let n = self.native_pci.iter().filter(|d| d.native_driver == drv).count();
            put(&format!("native-pci-{drv}"), n.to_string());
        }
        l
    }

    /// The NFD local feature file: `prefix/name=value` lines.
    pub fn to_nfd(&self) -> String {
        let mut s = format!("# vnf-l2fwd node-features: labels under {NFD_PREFIX}\n");
        for (k, v) in self.labels() {
            let _ = writeln!(s, "{NFD_PREFIX}{k}={v}");
        }
        s
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "{k:<18} {v}");
        };
        let ids = match (self.cpu.implementer, self.cpu.part) {
            (Some(i), Some(p)) => format!(" (implementer {i:#04x}, part {p:#05x})"),
            _ => String::new(),
        };
        row("architecture", format!("{} ({})", self.cpu.arch, self.k8s_arch()));
        row("cpu", format!("{} {}{ids}", self.cpu.vendor, self.cpu.model));
        let have: Vec<&str> = self.extensions.iter().filter(|(_, v)| **v).map(|(k, _)| k.as_str()).collect();
        let lack: Vec<&str> = self.extensions.iter().filter(|(_, v)| !**v).map(|(k, _)| k.as_str()).collect();
        row("extensions", if have.is_empty() { "-".into() } else { have.join(" ") });
        row("missing", if lack.is_empty() { "-".into() } else { lack.join(" ") });
        row("cpus online", self.cpus_online.to_string());
        for n in &self.numa_nodes {
            let hp: Vec<String> =
                n.hugepages.iter().map(|p| format!("{} {}/{} free", k8s_size(p.size_kb), p.free, p.total)).collect();
            row(&format!("numa node {}", n.id), format!("cpus {} {}", fmt_cpus(&n.cpus), hp.join(", ")));
        }
        if self.hugepages.is_empty() {
            row("hugepages", "none".into());
        }
        for p in &self.hugepages {
            row(&format!("hugepages {}", k8s_size(p.size_kb)), format!("{} total, {} free", p.total, p.free));
        }
        row(
            "iommu",
            format!(
                "{:?}, {} groups{}",
                self.iommu.mode,
                self.iommu.iommu_groups,
                if self.iommu.noiommu_enabled { ", no-IOMMU mode on" } else { "" }
            ),
        );
        row(
            "vfio-pci",
            match (self.vfio_pci.loaded, self.vfio_pci.module_available) {
                (true, _) => "loaded".into(),
                (false, true) => "module available, not loaded".into(),
                (false, false) => "absent".into(),
            },
        );
        if self.sriov.is_empty() {
            row("sr-iov", "no capable NIC".into());
        }
        for n in &self.sriov {
            let vfd: Vec<String> = n.vf_drivers.iter().map(|(d, c)| format!("{c}x{d}")).collect();
            row(
                &format!("sr-iov {}", n.pf),
                format!(
                    "{} drv={} if={} vfs {}/{} [{}] numa={}",
                    n.name.as_deref().unwrap_or("?"),
                    n.driver.as_deref().unwrap_or("none"),
                    n.interfaces.join(","),
                    n.num_vfs,
                    n.total_vfs,
                    vfd.join(" "),
                    n.numa_node.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
                ),
            );
        }
        if self.native_pci.is_empty() {
            row("native pci", "no device our native drivers support".into());
        }
        for d in &self.native_pci {
            row(
                &format!("native pci {}", d.addr),
                format!("pci:{} (bound to {})", d.native_driver, d.bound_to.as_deref().unwrap_or("no driver")),
            );
        }
        row("kernel", self.kernel.clone().unwrap_or_else(|| "unknown".into()));
        row("af_xdp", format!("{} ({})", if self.af_xdp.available { "yes" } else { "no" }, self.af_xdp.how));
        for n in &self.notes {
            row("note", n.clone());
        }
        s
    }
}

/// Formats CPUs as a kernel CPU list (`0-3,8`).
pub fn fmt_cpus(cpus: &[usize]) -> String {
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    out.join(",")
}

/// Makes a string a valid Kubernetes label value: at most 63 characters of `[A-Za-z0-9._-]`,
/// starting and ending with an alphanumeric character; anything else becomes `-`, runs of `-`
/// collapse.
pub fn label_value(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trim = |s: &str| s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    let mut out = trim(&out);
    if out.len() > 63 {
        out.truncate(63);
        out = trim(&out);
    }
    out
}

/// Writes `content` to `path` through a temporary file in the same directory renamed over
/// it, so a reader (nfd-worker) never sees half a file.
///
/// # Errors
/// Any I/O error.
pub fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(tmp_name);
    fs::write(&tmp, content)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<usize>::new());
        for bad in ["a", "3-1", "0-", "1,x", "0-99999999"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_cpus(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(fmt_cpus(&[]), "");
    }

    #[test]
    fn atomic_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("vnf-l2fwd");
        write_atomically(&p, "a=1\n").unwrap();
        write_atomically(&p, "a=2\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a=2\n");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temporary file left");
        assert!(write_atomically(&d.path().join("missing/x"), "").is_err());
    }

    #[test]
    fn sizes_and_labels() {
        assert_eq!(k8s_size(2048), "2Mi");
        assert_eq!(k8s_size(1048576), "1Gi");
        assert_eq!(k8s_size(64), "64Ki");
        assert_eq!(k8s_size(524288), "512Mi");
        assert_eq!(label_value("AMD EPYC 7763 64-Core Processor"), "AMD-EPYC-7763-64-Core-Processor");
        assert_eq!(label_value("Intel(R) Xeon(R) Gold"), "Intel-R-Xeon-R-Gold");
        assert_eq!(label_value("(x)"), "x");
        let long = label_value(&"a-".repeat(50));
        assert!(long.len() <= 63 && long.ends_with('a'), "{long}");
    }

    #[test]
    fn arm_and_x86_cpuinfo() {
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n\
                   CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\n\n\
                   processor\t: 1\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n";
        let (cpu, ext, n) = parse_cpuinfo(arm);
        assert_eq!(
            (cpu.arch.as_str(), cpu.vendor.as_str(), cpu.model.as_str(), n),
            ("aarch64", "Arm", "Neoverse-N1", 2)
        );
        assert!(ext["neon"] && ext["crc32"] && ext["pmull"] && !ext["sve"]);
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse4_2 avx2 aes\n";
        let (cpu, ext, _) = parse_cpuinfo(x86);
        assert_eq!(cpu.arch, "x86_64");
        assert!(ext["crc32"] && ext["avx2"] && !ext["avx512f"]);
        let (cpu, ext, _) = parse_cpuinfo("garbage");
        assert_eq!(cpu.arch, "unknown");
        assert!(ext.is_empty());
    }
}
