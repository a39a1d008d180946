//! The kernel's view of PCI devices, read from sysfs and procfs under a [`SysRoot`].
//!
//! Everything here reads files laid out the way Linux lays them out:
//! - `sys/bus/pci/devices/<addr>` → `../../../devices/pci0000:17/0000:17:00.0/<addr>`, holding
//!   `class`, `vendor`, `device`, `numa_node`, `driver_override`, `modalias`, the links
//!   `driver` (→ `…/bus/pci/drivers/<name>`), `iommu_group` (→ `…/kernel/iommu_groups/<n>`),
//!   `physfn` / `virtfnN` (SR-IOV), `sriov_totalvfs`, `sriov_numvfs`, and `net/<iface>/`
//!   (or `virtioN/net/<iface>/` for virtio-net);
//! - `sys/class/net/<iface>` → the device's `net/<iface>`;
//! - `sys/kernel/iommu_groups/<n>/devices/<addr>`;
//! - `proc/net/route` and `proc/net/ipv6_route` (default-route guard);
//! - `sys/module/vfio/parameters/enable_unsafe_noiommu_mode` (no-IOMMU mode);
//! - `proc/sys/kernel/osrelease` and `lib/modules/<release>/modules.alias` (which kernel
//!   modules could drive a device, for `unused=`).
//!
//! Odd content (garbage in `numa_node`, a missing link, a non-UTF-8 name) gives `None` or an
//! empty list for that field, never a panic; only a missing device or an unreadable
//! `sys/bus/pci/devices` is an error.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::Error;

/// The driver that VFIO user space needs.
pub const VFIO_PCI: &str = "vfio-pci";

/// Drivers that DPDK-style user space can use, as `dpdk-devbind.py` lists them.
pub const DPDK_DRIVERS: [&str; 3] = [VFIO_PCI, "igb_uio", "uio_pci_generic"];

/// Drivers that may hold a device without making its IOMMU group unusable for VFIO.
pub const VFIO_GROUP_SAFE_DRIVERS: [&str; 3] = [VFIO_PCI, "pci-stub", "pcieport"];

/// A PCI address, `DDDD:BB:DD.F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddr {
    /// PCI segment (domain); 16 bits usually, wider behind Intel VMD.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..=31).
    pub device: u8,
    /// Function number (0..=7).
    pub function: u8,
}

impl PciAddr {
    /// Builds an address.
    pub const fn new(domain: u32, bus: u8, device: u8, function: u8) -> Self {
        PciAddr { domain, bus, device, function }
    }
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.device, self.function)
    }
}

fn hex_field(s: &str, max_len: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl FromStr for PciAddr {
    type Err = Error;

    /// Parses `DDDD:BB:DD.F`, or `BB:DD.F` with domain 0.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadAddress(s.to_string());
        let (head, func) = s.rsplit_once('.').ok_or_else(bad)?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, dev) = match parts.as_slice() {
            [d, b, v] => (hex_field(d, 8).ok_or_else(bad)?, *b, *v),
            [b, v] => (0, *b, *v),
            _ => return Err(bad()),
        };
        let bus = hex_field(bus, 2).ok_or_else(bad)?;
        let dev = hex_field(dev, 2).filter(|&d| d < 32).ok_or_else(bad)?;
        let func = hex_field(func, 1).filter(|&f| f < 8).ok_or_else(bad)?;
        Ok(PciAddr::new(domain, bus as u8, dev as u8, func as u8))
    }
}

impl Serialize for PciAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The root under which `sys/`, `proc/`, `dev/` and `lib/modules` are found: `/` on a real
/// machine, a directory tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot::host()
    }
}

impl SysRoot {
    /// A root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysRoot { root: root.into() }
    }

    /// The running machine's root, `/`.
    pub fn host() -> Self {
        SysRoot::new("/")
    }

    /// The root path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/sys/bus/pci/devices`.
    pub fn pci_devices(&self) -> PathBuf {
        self.root.join("sys/bus/pci/devices")
    }

    /// `<root>/sys/bus/pci/devices/<addr>`.
    pub fn pci_device(&self, addr: PciAddr) -> PathBuf {
        self.pci_devices().join(addr.to_string())
    }

    /// `<root>/sys/bus/pci/drivers/<driver>`.
    pub fn pci_driver(&self, driver: &str) -> PathBuf {
        self.root.join("sys/bus/pci/drivers").join(driver)
    }

    /// `<root>/sys/bus/pci/drivers_probe`.
    pub fn drivers_probe(&self) -> PathBuf {
        self.root.join("sys/bus/pci/drivers_probe")
    }

    /// `<root>/sys/class/net`.
    pub fn class_net(&self) -> PathBuf {
        self.root.join("sys/class/net")
    }

    /// `<root>/sys/kernel/iommu_groups`.
    pub fn iommu_groups(&self) -> PathBuf {
        self.root.join("sys/kernel/iommu_groups")
    }

    /// `<root>/proc/net/route`.
    pub fn proc_net_route(&self) -> PathBuf {
        self.root.join("proc/net/route")
    }

    /// `<root>/proc/net/ipv6_route`.
    pub fn proc_net_ipv6_route(&self) -> PathBuf {
        self.root.join("proc/net/ipv6_route")
    }

    /// `<root>/sys/module/vfio/parameters/enable_unsafe_noiommu_mode`.
    pub fn noiommu_param(&self) -> PathBuf {
        self.root.join("sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
    }

    /// `<root>/dev/vfio`.
    pub fn dev_vfio(&self) -> PathBuf {
        self.root.join("dev/vfio")
    }

    /// Resolves a PCI address (`DDDD:BB:DD.F` or `BB:DD.F`) or a kernel interface name (via
    /// `sys/class/net/<iface>/device`) to a PCI address.
    ///
    /// # Errors
    /// [`Error::BadAddress`] when it is neither.
    pub fn resolve(&self, name: &str) -> Result<PciAddr, Error> {
        if let Ok(a) = name.parse::<PciAddr>() {
            return Ok(a);
        }
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::BadAddress(name.to_string()));
        }
        link_name(&self.class_net().join(name).join("device"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::BadAddress(name.to_string()))
    }
}

/// Reads a small sysfs file, trimmed; `None` when missing or not UTF-8.
pub(crate) fn read_trimmed(path: &Path) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    Some(s.trim().to_string())
}

/// Reads a sysfs hex value like `0x020000`.
fn read_hex(path: &Path) -> Option<u32> {
    let s = read_trimmed(path)?;
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(&s);
    hex_field(digits, 8)
}

fn read_dec(path: &Path) -> Option<u32> {
    read_trimmed(path)?.parse().ok()
}

/// The last component of a symlink's target (`driver` → `ice`), `None` if not a link.
pub(crate) fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// The driver a device is bound to, from its `driver` link.
pub fn current_driver(root: &SysRoot, addr: PciAddr) -> Option<String> {
    link_name(&root.pci_device(addr).join("driver"))
}

/// A known name for a few common NICs, by vendor and device id.
pub fn device_name(vendor: u16, device: u16) -> Option<&'static str> {
    Some(match (vendor, device) {
        (0x8086, 0x1592) => "Ethernet Controller E810-C for QSFP",
        (0x8086, 0x1593) => "Ethernet Controller E810-C for SFP",
        (0x8086, 0x159b) => "Ethernet Controller E810-XXV for SFP",
        (0x8086, 0x1889) => "Ethernet Adaptive Virtual Function",
        (0x8086, 0x10fb) => "82599ES 10-Gigabit SFI/SFP+ Network Connection",
        (0x8086, 0x10ed) => "82599 Ethernet Controller Virtual Function",
        (0x8086, 0x1572) => "Ethernet Controller X710 for 10GbE SFP+",
        (0x8086, 0x1583) => "Ethernet Controller XL710 for 40GbE QSFP+",
        (0x8086, 0x154c) => "Ethernet Virtual Function 700 Series",
        (0x8086, 0x1521) => "I350 Gigabit Network Connection",
        (0x8086, 0x1520) => "I350 Ethernet Controller Virtual Function",
        (0x8086, 0x10c9) => "82576 Gigabit Network Connection",
        (0x8086, 0x10ca) => "82576 Virtual Function",
        (0x8086, 0x100e) => "82540EM Gigabit Ethernet Controller",
        (0x15b3, 0x1017) => "MT27800 Family [ConnectX-5]",
        (0x15b3, 0x1018) => "MT27800 Family [ConnectX-5 Virtual Function]",
        (0x15b3, 0x101d) => "MT2892 Family [ConnectX-6 Dx]",
        (0x1af4, 0x1000) => "Virtio network device",
        (0x1af4, 0x1041) => "Virtio 1.0 network device",
        (0x1d0f, 0xec20) => "Elastic Network Adapter (ENA)",
        _ => return None,
    })
}

/// A kernel network interface of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Its name (`ens1f0`).
    pub name: String,
    /// `operstate` (`up`, `down`, …), if readable.
    pub operstate: Option<String>,
    /// Administratively up (`IFF_UP` in `flags`, or `operstate` = `up`).
    pub up: bool,
    /// Carries an IPv4 or IPv6 default route.
    pub default_route: bool,
    /// Number of IPv4 routes through it.
    pub routes: u32,
}

impl Interface {
    /// In use: carries the default route, or is up with routes (`dpdk-devbind`'s `*Active*`).
    pub fn in_use(&self) -> Option<crate::error::InUse> {
        if self.default_route {
            Some(crate::error::InUse::DefaultRoute)
        } else if self.up && self.routes > 0 {
            Some(crate::error::InUse::ActiveWithRoutes)
        } else {
            None
        }
    }
}

/// SR-IOV state of a physical function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SriovPf {
    /// `sriov_totalvfs`.
    pub total_vfs: u32,
    /// `sriov_numvfs` (VFs configured now).
    pub num_vfs: u32,
    /// The VFs, from the `virtfnN` links, in N order.
    pub vfs: Vec<PciAddr>,
}

/// One PCI device as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PciDevice {
    /// Its address.
    pub addr: PciAddr,
    /// PCI class (`0x020000` = Ethernet), if readable.
    pub class: Option<u32>,
    /// Vendor id.
    pub vendor: Option<u16>,
    /// Device id.
    pub device: Option<u16>,
    /// A known name, for a few common NICs.
    pub name: Option<&'static str>,
    /// The driver bound now.
    pub driver: Option<String>,
    /// `driver_override`, if set.
    pub driver_override: Option<String>,
    /// Kernel interfaces (`net/*`).
    pub interfaces: Vec<Interface>,
    /// NUMA node; `None` when `-1`, missing or unreadable.
    pub numa_node: Option<u32>,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
    /// SR-IOV: this is a PF with SR-IOV capability.
    pub sriov: Option<SriovPf>,
    /// SR-IOV: this is a VF of that PF.
    pub physfn: Option<PciAddr>,
    /// Kernel modules that match the device's `modalias` (empty when `modules.alias` is not
    /// readable).
    pub kernel_modules: Vec<String>,
    /// Drivers that could take the device but do not now (`dpdk-devbind`'s `unused=`).
    pub unused: Vec<String>,
}

impl PciDevice {
    /// Is a network controller (class `0x02xxxx`).
    pub fn is_network(&self) -> bool {
        self.class.is_some_and(|c| c >> 16 == 0x02)
    }

    /// Is a PCI-to-PCI bridge (class `0x0604xx`).
    pub fn is_bridge(&self) -> bool {
        self.class.is_some_and(|c| c >> 8 == 0x0604)
    }

    /// Bound to a DPDK-compatible driver (vfio-pci, igb_uio, uio_pci_generic).
    pub fn on_dpdk_driver(&self) -> bool {
        self.driver.as_deref().is_some_and(|d| DPDK_DRIVERS.contains(&d))
    }

    /// The first interface in use (see [`Interface::in_use`]), if any.
    pub fn in_use(&self) -> Option<(&Interface, crate::error::InUse)> {
        self.interfaces.iter().find_map(|i| i.in_use().map(|u| (i, u)))
    }
}

/// Routes per interface, from `proc/net/route` and `proc/net/ipv6_route`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// IPv4 routes: (interface, is a default route).
    v4: Vec<(String, bool)>,
    /// Interfaces with an IPv6 default route.
    v6_default: Vec<String>,
}

impl RouteTable {
    /// Reads the tables. `proc/net/route` must be readable (the guard fails closed);
    /// `proc/net/ipv6_route` may be missing (IPv6 disabled).
    ///
    /// # Errors
    /// [`Error::Io`] when `proc/net/route` cannot be read.
    pub fn read(root: &SysRoot) -> Result<Self, Error> {
        let p = root.proc_net_route();
        let v4 = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v6 = fs::read_to_string(root.proc_net_ipv6_route()).unwrap_or_default();
        Ok(Self::parse(&v4, &v6))
    }

    /// Parses the two files' contents; malformed lines are skipped.
    pub fn parse(v4: &str, v6: &str) -> Self {
        let mut t = RouteTable::default();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
        for line in v4.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let is_default = f[1] == "00000000" && f[7] == "00000000";
            t.v4.push((f[0].to_string(), is_default));
        }
        // dest plen src splen nexthop metric refcnt use flags iface
        for line in v6.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let is_default = f[1] == "00" && f[0].bytes().all(|b| b == b'0');
            if is_default && f[9] != "lo" {
                t.v6_default.push(f[9].to_string());
            }
        }
        t
    }

    /// Whether `iface` carries a default route.
    pub fn has_default(&self, iface: &str) -> bool {
        self.v4.iter().any(|(i, d)| *d && i == iface) || self.v6_default.iter().any(|i| i == iface)
    }

    /// Number of IPv4 routes through `iface`.
    pub fn routes(&self, iface: &str) -> u32 {
        self.v4.iter().filter(|(i, _)| i == iface).count() as u32
    }
}

/// `pci:` aliases from `modules.alias`, for finding which modules could drive a device.
#[derive(Debug, Clone, Default)]
pub struct ModAliases {
    aliases: Vec<(String, String)>,
}

impl ModAliases {
    /// Reads `<root>/lib/modules/<osrelease>/modules.alias`; empty when missing.
    pub fn read(root: &SysRoot) -> Self {
        let Some(rel) = read_trimmed(&root.path().join("proc/sys/kernel/osrelease")) else {
            return Self::default();
        };
        if rel.is_empty() || rel.contains('/') {
            return Self::default();
        }
        let p = root.path().join("lib/modules").join(rel).join("modules.alias");
        Self::parse(&fs::read_to_string(p).unwrap_or_default())
    }

    /// Parses `alias <pattern> <module>` lines, keeping `pci:` ones.
    pub fn parse(text: &str) -> Self {
        let aliases = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next()? == "alias").then_some(())?;
                let pat = f.next()?;
                let module = f.next()?;
                pat.starts_with("pci:").then(|| (pat.to_string(), module.to_string()))
            })
            .collect();
        ModAliases { aliases }
    }

    /// Modules whose alias matches `modalias`, deduplicated, in file order.
    pub fn modules_for(&self, modalias: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (pat, m) in &self.aliases {
            if glob_match(pat.as_bytes(), modalias.as_bytes()) && !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }
}

/// `fnmatch` with `*` and `?` (all that `modules.alias` uses for PCI).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Kernel driver and module names differ in `-` vs `_`.
pub(crate) fn same_driver(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let n = |c: u8| if c == b'-' { b'_' } else { c };
            n(x) == n(y)
        })
}

/// Context shared by the reads of one listing.
#[derive(Debug, Default)]
pub struct ReadContext {
    /// Routes (empty if unreadable).
    pub routes: RouteTable,
    /// Module aliases (empty if unreadable).
    pub aliases: ModAliases,
    /// DPDK-compatible drivers that are loaded.
    pub loaded_dpdk_drivers: Vec<&'static str>,
}

impl ReadContext {
    /// Reads routes, aliases and loaded drivers; nothing here is fatal.
    pub fn read(root: &SysRoot) -> Self {
        ReadContext {
            routes: RouteTable::read(root).unwrap_or_default(),
            aliases: ModAliases::read(root),
            loaded_dpdk_drivers: DPDK_DRIVERS.iter().copied().filter(|d| root.pci_driver(d).is_dir()).collect(),
        }
    }
}

/// The `net/` directories of a device: its own, and those of its virtio child devices
/// (virtio-net puts the netdev under `<dev>/virtioN/net/`, not `<dev>/net/`).
fn net_dirs(dev_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dev_dir.join("net")];
    if let Ok(rd) = fs::read_dir(dev_dir) {
        let mut virtio: Vec<PathBuf> = rd
            .filter_map(|e| {
                let e = e.ok()?;
                e.file_name().to_str()?.starts_with("virtio").then(|| e.path().join("net"))
            })
            .collect();
        virtio.sort();
        dirs.extend(virtio);
    }
    dirs
}

fn read_interfaces(dev_dir: &Path, routes: &RouteTable) -> Vec<Interface> {
    let mut found: Vec<(String, PathBuf)> = net_dirs(dev_dir)
        .into_iter()
        .filter_map(|net| fs::read_dir(&net).ok().map(|rd| (net, rd)))
        .flat_map(|(net, rd)| {
            rd.filter_map(move |e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let dir = net.join(&name);
                Some((name, dir))
            })
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(name, dir)| {
            let operstate = read_trimmed(&dir.join("operstate"));
            let up = read_hex(&dir.join("flags")).map(|f| f & 1 != 0).unwrap_or(operstate.as_deref() == Some("up"));
            Interface { default_route: routes.has_default(&name), routes: routes.routes(&name), name, operstate, up }
        })
        .collect()
}

fn read_sriov(dev_dir: &Path) -> Option<SriovPf> {
    let total_vfs = read_dec(&dev_dir.join("sriov_totalvfs"))?;
    let num_vfs = read_dec(&dev_dir.join("sriov_numvfs")).unwrap_or(0);
    let mut vfs: Vec<(u32, PciAddr)> = fs::read_dir(dev_dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let n: u32 = name.strip_prefix("virtfn")?.parse().ok()?;
            let addr = link_name(&e.path())?.parse().ok()?;
            Some((n, addr))
        })
        .collect();
    vfs.sort();
    Some(SriovPf { total_vfs, num_vfs, vfs: vfs.into_iter().map(|(_, a)| a).collect() })
}

/// Reads one device.
///
/// # Errors
/// [`Error::NoSuchDevice`] when `sys/bus/pci/devices/<addr>` does not exist.
pub fn read_device(root: &SysRoot, addr: PciAddr, ctx: &ReadContext) -> Result<PciDevice, Error> {
    let dir = root.pci_device(addr);
    if !dir.is_dir() {
        return Err(Error::NoSuchDevice { device: addr, path: dir });
    }
    let vendor = read_hex(&dir.join("vendor")).and_then(|v| u16::try_from(v).ok());
    let device = read_hex(&dir.join("device")).and_then(|v| u16::try_from(v).ok());
    let driver = link_name(&dir.join("driver"));
    let driver_override = read_trimmed(&dir.join("driver_override")).filter(|s| !s.is_empty() && s != "(null)");
    let numa_node = read_trimmed(&dir.join("numa_node")).and_then(|s| s.parse::<u32>().ok());
    let kernel_modules = read_trimmed(&dir.join("modalias")).map(|m| ctx.aliases.modules_for(&m)).unwrap_or_default();
    let mut unused: Vec<String> = Vec::new();
    let candidates = kernel_modules.iter().map(String::as_str).chain(ctx.loaded_dpdk_drivers.iter().copied());
    for c in candidates {
        let is_current = driver.as_deref().is_some_and(|d| same_driver(d, c));
        if !is_current && !unused.iter().any(|u| same_driver(u, c)) {
            unused.push(c.to_string());
        }
    }
    Ok(PciDevice {
        addr,
        class: read_hex(&dir.join("class")),
        vendor,
        device,
        name: vendor.zip(device).and_then(|(v, d)| device_name(v, d)),
        driver,
        driver_override,
        interfaces: read_interfaces(&dir, &ctx.routes),
        numa_node,
        iommu_group: link_name(&dir.join("iommu_group")).and_then(|g| g.parse().ok()),
        sriov: read_sriov(&dir),
        physfn: link_name(&dir.join("physfn")).and_then(|a| a.parse().ok()),
        kernel_modules,
        unused,
    })
}

/// Every PCI device's address under `sys/bus/pci/devices`, sorted; entries whose name is not
/// a PCI address are skipped.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be read.
pub fn pci_addresses(root: &SysRoot) -> Result<Vec<PciAddr>, Error> {
    let dir = root.pci_devices();
    let rd = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut v: Vec<PciAddr> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    v.sort();
    Ok(v)
}

/// Every network device (class `0x02xxxx`), sorted by address.
///
/// # Errors
/// [`Error::Io`] when `sys/bus/pci/devices` cannot be read.
pub fn list_network_devices(root: &SysRoot) -> Result<Vec<PciDevice>, Error> {
    let ctx = ReadContext::read(root);
    let mut out = Vec::new();
    for addr in pci_addresses(root)? {
        // A device that vanished between the listing and the read is skipped.
        if let Ok(d) = read_device(root, addr, &ctx) {
            if d.is_network() {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// A device of an IOMMU group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    /// Its address.
    pub addr: PciAddr,
    /// Its driver.
    pub driver: Option<String>,
    /// Its class.
    pub class: Option<u32>,
}

impl GroupMember {
    /// Whether VFIO accepts this member in a group it uses: bound to vfio-pci, pci-stub or
    /// pcieport, bound to nothing, or a PCI bridge.
    pub fn vfio_compatible(&self) -> bool {
        match &self.driver {
            None => true,
            Some(d) => VFIO_GROUP_SAFE_DRIVERS.contains(&d.as_str()) || self.class.is_some_and(|c| c >> 8 == 0x0604),
        }
    }
}

/// The devices of IOMMU group `group`, sorted.
///
/// # Errors
/// [`Error::Io`] when `sys/kernel/iommu_groups/<group>/devices` cannot be read.
pub fn iommu_group_members(root: &SysRoot, group: u32) -> Result<Vec<GroupMember>, Error> {
    let dir = root.iommu_groups().join(group.to_string()).join("devices");
    let rd = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut v: Vec<GroupMember> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let addr: PciAddr = e.file_name().to_str()?.parse().ok()?;
            let p = e.path();
            Some(GroupMember { addr, driver: link_name(&p.join("driver")), class: read_hex(&p.join("class")) })
        })
        .collect();
    v.sort_by_key(|m| m.addr);
    Ok(v)
}

/// The members of `group` that keep it from being used through VFIO (empty = viable).
///
/// # Errors
/// As [`iommu_group_members`].
pub fn group_offenders(root: &SysRoot, group: u32) -> Result<Vec<GroupMember>, Error> {
    Ok(iommu_group_members(root, group)?.into_iter().filter(|m| !m.vfio_compatible()).collect())
}

/// Checks that every device of `group` is on vfio-pci, pci-stub, pcieport, no driver, or is a
/// bridge.
///
/// # Errors
/// [`Error::GroupNotViable`] listing the offending devices; [`Error::Io`] as
/// [`iommu_group_members`].
pub fn check_group_viable(root: &SysRoot, group: u32) -> Result<(), Error> {
    let offenders = group_offenders(root, group)?;
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(Error::GroupNotViable { group, offenders })
    }
}

/// The IOMMU group of a device.
///
/// # Errors
/// [`Error::NoSuchDevice`], or [`Error::NoIommuGroup`] when it has no `iommu_group` link.
pub fn device_iommu_group(root: &SysRoot, addr: PciAddr) -> Result<u32, Error> {
    let dir = root.pci_device(addr);
    if !dir.is_dir() {
        return Err(Error::NoSuchDevice { device: addr, path: dir });
    }
    let link = dir.join("iommu_group");
    link_name(&link).and_then(|g| g.parse().ok()).ok_or(Error::NoIommuGroup { device: addr, path: link })
}

/// How VFIO can isolate devices on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IommuMode {
    /// An IOMMU is active: devices have IOMMU groups and DMA is translated.
    Iommu,
    /// No IOMMU, but vfio's unsafe no-IOMMU mode is on: devices work without isolation,
    /// DMA uses physical addresses (`/dev/vfio/noiommu-N`).
    NoIommu,
    /// Neither: VFIO cannot be used.
    Unavailable,
}

/// IOMMU and VFIO status of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IommuStatus {
    /// The mode.
    pub mode: IommuMode,
    /// Number of IOMMU groups backed by a real IOMMU.
    pub iommu_groups: usize,
    /// `enable_unsafe_noiommu_mode` is `Y`.
    pub noiommu_enabled: bool,
    /// The vfio-pci driver is loaded.
    pub vfio_pci_loaded: bool,
    /// `/dev/vfio/vfio` exists.
    pub dev_vfio: bool,
}

/// Detects IOMMU, no-IOMMU mode and VFIO availability.
pub fn iommu_status(root: &SysRoot) -> IommuStatus {
    let groups_dir = root.iommu_groups();
    let iommu_groups = fs::read_dir(&groups_dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    // No-IOMMU groups are named "vfio-noiommu"; they are not a real IOMMU.
                    read_trimmed(&e.path().join("name")).as_deref() != Some("vfio-noiommu")
                })
                .count()
        })
        .unwrap_or(0);
    let noiommu_enabled = read_trimmed(&root.noiommu_param()).is_some_and(|s| s.eq_ignore_ascii_case("y") || s == "1");
    let mode = if iommu_groups > 0 {
        IommuMode::Iommu
    } else if noiommu_enabled {
        IommuMode::NoIommu
    } else {
        IommuMode::Unavailable
    };
    IommuStatus {
        mode,
        iommu_groups,
        noiommu_enabled,
        vfio_pci_loaded: root.pci_driver(VFIO_PCI).is_dir(),
        dev_vfio: root.dev_vfio().join("vfio").exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addr_parse_and_display() {
        let a: PciAddr = "0000:18:01.1".parse().unwrap();
        assert_eq!(a, PciAddr::new(0, 0x18, 1, 1));
        assert_eq!(a.to_string(), "0000:18:01.1");
        assert_eq!("3b:00.0".parse::<PciAddr>().unwrap().to_string(), "0000:3b:00.0");
        assert_eq!("10000:e1:1f.7".parse::<PciAddr>().unwrap().to_string(), "10000:e1:1f.7");
        for bad in [
            "",
            "0000:18:00",
            "0000:18:20.0",
            "0000:18:00.8",
            "0000:118:00.0",
            "x:18:00.0",
            "0000:+1:00.0",
            "1:2:3:00.0",
            "0000:18:00.0\n",
            "ens1f0",
        ] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn route_table_parse() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eno1\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eno1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  ens2\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  garbage line\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 ens3\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 ens2\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        let t = RouteTable::parse(v4, v6);
        assert!(t.has_default("eno1"));
        assert!(!t.has_default("ens2"));
        assert!(t.has_default("ens3"));
        assert!(!t.has_default("lo"));
        assert_eq!(t.routes("eno1"), 2);
        assert_eq!(t.routes("ens2"), 1);
        assert_eq!(t.routes("ens9"), 0);
    }

    #[test]
    fn glob_and_aliases() {
        assert!(glob_match(b"pci:v00008086d*sv*", b"pci:v00008086d00001592sv0000"));
        assert!(!glob_match(b"pci:v00008086d*sv*", b"pci:v000015B3d00001017sv0000"));
        assert!(glob_match(b"a?c*", b"abc"));
        assert!(!glob_match(b"abc", b"abcd"));
        assert!(glob_match(b"*", b""));
        let a = ModAliases::parse(
            "# comment\nalias pci:v00008086d00001592sv*sd*bc*sc*i* ice\n\
             alias pci:v00008086d*sv*sd*bc02sc00i* e1000e_like\n\
             alias pci:v00008086d00001592sv*sd*bc*sc*i* ice\n\
             alias usb:v1234* usbthing\nalias broken\n",
        );
        assert_eq!(
            a.modules_for("pci:v00008086d00001592sv00008086sd00000002bc02sc00i00"),
            vec!["ice".to_string(), "e1000e_like".to_string()]
        );
        assert!(a.modules_for("usb:v1234").is_empty());
    }

    #[test]
    fn driver_name_normalisation() {
        assert!(same_driver("vfio-pci", "vfio_pci"));
        assert!(!same_driver("vfio-pci", "vfio-pc"));
        assert!(same_driver("ice", "ice"));
    }

    #[test]
    fn group_member_compatibility() {
        let m = |driver: Option<&str>, class| GroupMember {
            addr: PciAddr::new(0, 1, 0, 0),
            driver: driver.map(str::to_string),
            class: Some(class),
        };
        assert!(m(None, 0x020000).vfio_compatible());
        assert!(m(Some("vfio-pci"), 0x020000).vfio_compatible());
        assert!(m(Some("pci-stub"), 0x020000).vfio_compatible());
        assert!(m(Some("pcieport"), 0x060400).vfio_compatible());
        assert!(m(Some("shpchp"), 0x060400).vfio_compatible());
        assert!(!m(Some("ice"), 0x020000).vfio_compatible());
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::testing::standard_fixture;

    fn fixture() -> (tempfile::TempDir, SysRoot) {
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = standard_fixture(dir.path()).unwrap();
        (dir, root)
    }

    fn find(devs: &[PciDevice], a: &str) -> PciDevice {
        let a: PciAddr = a.parse().unwrap();
        devs.iter().find(|d| d.addr == a).cloned().unwrap()
    }

    #[test]
    fn lists_network_devices_only() {
        let (_d, root) = fixture();
        let devs = list_network_devices(&root).unwrap();
        let addrs: Vec<String> = devs.iter().map(|d| d.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "0000:00:03.0",
                "0000:18:00.0",
                "0000:18:01.0",
                "0000:18:01.1",
                "0000:3b:00.0",
                "0000:5e:00.0",
                "0000:5e:00.1",
                "0000:af:00.0"
            ]
        );
    }

    #[test]
    fn reads_ids_driver_iface_numa_group() {
        let (_d, root) = fixture();
        let devs = list_network_devices(&root).unwrap();
        let pf = find(&devs, "0000:18:00.0");
        assert_eq!(pf.class, Some(0x020000));
        assert_eq!((pf.vendor, pf.device), (Some(0x8086), Some(0x1592)));
        assert_eq!(pf.name, Some("Ethernet Controller E810-C for QSFP"));
        assert_eq!(pf.driver.as_deref(), Some("ice"));
        assert_eq!(pf.driver_override, None);
        assert_eq!(pf.interfaces.len(), 1);
        assert_eq!(pf.interfaces[0].name, "ens1f0");
        assert!(pf.interfaces[0].up);
        assert!(!pf.interfaces[0].default_route);
        assert_eq!(pf.numa_node, Some(0));
        assert_eq!(pf.iommu_group, Some(40));
        assert_eq!(pf.kernel_modules, ["ice"]);
        assert_eq!(pf.unused, ["vfio-pci"]);
        assert!(pf.in_use().is_none());

        let eno1 = find(&devs, "0000:3b:00.0");
        assert_eq!(eno1.numa_node, Some(1));
        assert!(eno1.interfaces[0].default_route);
        assert_eq!(eno1.interfaces[0].routes, 2);
        assert!(eno1.in_use().is_some());

        // virtio-net: the netdev sits under the virtio child device.
        let virtio = find(&devs, "0000:00:03.0");
        assert_eq!(virtio.interfaces.len(), 1);
        assert_eq!(virtio.interfaces[0].name, "eth1");
        assert_eq!(virtio.interfaces[0].routes, 1);
        assert_eq!(virtio.numa_node, None);
        assert_eq!(virtio.iommu_group, None);
        assert_eq!(virtio.kernel_modules, ["virtio_pci"]);
        assert_eq!(virtio.unused, ["vfio-pci"]);

        let cx5 = find(&devs, "0000:af:00.0");
        assert_eq!(cx5.driver, None);
        assert_eq!(cx5.unused, ["mlx5_core", "vfio-pci"]);

        let vf1 = find(&devs, "0000:18:01.1");
        assert_eq!(vf1.driver.as_deref(), Some("vfio-pci"));
        assert_eq!(vf1.driver_override.as_deref(), Some("vfio-pci"));
        assert_eq!(vf1.unused, ["iavf"]);
        assert!(vf1.interfaces.is_empty());
    }

    #[test]
    fn sriov_pf_and_vf_relations() {
        let (_d, root) = fixture();
        let devs = list_network_devices(&root).unwrap();
        let pf = find(&devs, "0000:18:00.0");
        let sr = pf.sriov.clone().unwrap();
        assert_eq!((sr.total_vfs, sr.num_vfs), (8, 2));
        assert_eq!(sr.vfs, [PciAddr::new(0, 0x18, 1, 0), PciAddr::new(0, 0x18, 1, 1)]);
        assert_eq!(pf.physfn, None);
        for vf in ["0000:18:01.0", "0000:18:01.1"] {
            let v = find(&devs, vf);
            assert_eq!(v.physfn, Some(pf.addr));
            assert!(v.sriov.is_none());
        }
        assert!(find(&devs, "0000:3b:00.0").sriov.is_none());
    }

    #[test]
    fn symlinks_are_laid_out_like_the_kernel() {
        let (d, root) = fixture();
        let rl = |p: &str| fs::read_link(d.path().join(p)).unwrap();
        assert_eq!(
            rl("sys/bus/pci/devices/0000:18:00.0"),
            Path::new("../../../devices/pci0000:17/0000:17:00.0/0000:18:00.0")
        );
        assert_eq!(
            rl("sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0/driver"),
            Path::new("../../../../bus/pci/drivers/ice")
        );
        assert_eq!(
            rl("sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0/iommu_group"),
            Path::new("../../../../kernel/iommu_groups/40")
        );
        assert_eq!(rl("sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0/virtfn1"), Path::new("../0000:18:01.1"));
        assert_eq!(
            rl("sys/class/net/ens1f0"),
            Path::new("../../devices/pci0000:17/0000:17:00.0/0000:18:00.0/net/ens1f0")
        );
        // And they resolve.
        assert!(d.path().join("sys/class/net/ens1f0/device/driver/unbind").is_file());
        assert!(d.path().join("sys/kernel/iommu_groups/42/devices/0000:5e:00.1/net/ens2f1").is_dir());
        assert_eq!(root.resolve("ens1f0").unwrap(), PciAddr::new(0, 0x18, 0, 0));
        assert_eq!(root.resolve("18:01.0").unwrap(), PciAddr::new(0, 0x18, 1, 0));
        assert!(matches!(root.resolve("nosuch0"), Err(Error::BadAddress(_))));
        assert!(matches!(root.resolve("../x"), Err(Error::BadAddress(_))));
    }

    #[test]
    fn group_viability() {
        let (_d, root) = fixture();
        let members = iommu_group_members(&root, 42).unwrap();
        assert_eq!(members.len(), 2);
        match check_group_viable(&root, 42) {
            Err(Error::GroupNotViable { group, offenders }) => {
                assert_eq!(group, 42);
                assert_eq!(offenders.len(), 1);
                assert_eq!(offenders[0].addr, PciAddr::new(0, 0x5e, 0, 1));
                assert_eq!(offenders[0].driver.as_deref(), Some("i40e"));
                let msg = Error::GroupNotViable { group, offenders }.to_string();
                assert!(msg.contains("0000:5e:00.1 (drv=i40e)"), "{msg}");
            }
            other => panic!("unexpected {other:?}"),
        }
        check_group_viable(&root, 44).unwrap(); // the VF already on vfio-pci
        check_group_viable(&root, 17).unwrap(); // a root port on pcieport
        check_group_viable(&root, 70).unwrap(); // no driver
        assert!(matches!(check_group_viable(&root, 99), Err(Error::Io { .. })));
        assert_eq!(device_iommu_group(&root, PciAddr::new(0, 0x18, 1, 1)).unwrap(), 44);
        assert!(matches!(device_iommu_group(&root, PciAddr::new(0, 0, 0x1f, 2)), Err(Error::NoIommuGroup { .. })));
        assert!(matches!(device_iommu_group(&root, PciAddr::new(0, 0x99, 0, 0)), Err(Error::NoSuchDevice { .. })));
    }

    #[test]
    fn iommu_mode_detection() {
        let (d, root) = fixture();
        let st = iommu_status(&root);
        assert_eq!(st.mode, IommuMode::Iommu);
        assert_eq!(st.iommu_groups, 7);
        assert_eq!(root.resolve("eth1").unwrap(), PciAddr::new(0, 0, 3, 0));
        assert!(!st.noiommu_enabled);
        assert!(st.vfio_pci_loaded);
        assert!(!st.dev_vfio);

        // No IOMMU groups, no-IOMMU mode on, groups named vfio-noiommu: NoIommu.
        fs::remove_dir_all(d.path().join("sys/kernel/iommu_groups")).unwrap();
        fs::create_dir_all(d.path().join("sys/kernel/iommu_groups/0")).unwrap();
        fs::write(d.path().join("sys/kernel/iommu_groups/0/name"), "vfio-noiommu\n").unwrap();
        fs::write(root.noiommu_param(), "Y\n").unwrap();
        let st = iommu_status(&root);
        assert_eq!(st.mode, IommuMode::NoIommu);
        assert_eq!(st.iommu_groups, 0);
        assert!(st.noiommu_enabled);

        fs::write(root.noiommu_param(), "N\n").unwrap();
        assert_eq!(iommu_status(&root).mode, IommuMode::Unavailable);
        fs::remove_file(root.noiommu_param()).unwrap();
        assert_eq!(iommu_status(&root).mode, IommuMode::Unavailable);
    }

    #[test]
    fn malformed_sysfs_gives_none_not_panics() {
        let (d, root) = fixture();
        let dev = d.path().join("sys/devices/pci0000:17/0000:17:00.0/0000:18:00.0");
        fs::write(dev.join("numa_node"), "banana\n").unwrap();
        fs::write(dev.join("vendor"), "0x1234567890\n").unwrap();
        fs::write(dev.join("device"), [0xff, 0xfe, 0x00]).unwrap();
        fs::write(dev.join("sriov_numvfs"), "").unwrap();
        fs::remove_file(dev.join("iommu_group")).unwrap();
        fs::remove_file(dev.join("virtfn0")).unwrap();
        std::os::unix::fs::symlink("../not-an-address", dev.join("virtfn7")).unwrap();
        fs::write(dev.join("virtfnX"), "not a link").unwrap();
        fs::remove_file(dev.join("driver")).unwrap();
        fs::write(dev.join("driver"), "a file where a link should be").unwrap();
        fs::write(dev.join("net/ens1f0/flags"), "zz").unwrap();
        // A VF whose physfn link dangles and whose class is garbage.
        let vf = d.path().join("sys/devices/pci0000:17/0000:17:00.0/0000:18:01.0");
        fs::remove_file(vf.join("physfn")).unwrap();
        std::os::unix::fs::symlink("../nowhere", vf.join("physfn")).unwrap();
        // A non-address entry in the devices directory.
        fs::write(root.pci_devices().join("garbage"), "").unwrap();
        // A device directory with nothing in it.
        fs::create_dir_all(root.pci_devices().join("0000:99:00.0")).unwrap();

        let devs = list_network_devices(&root).unwrap();
        let pf = find(&devs, "0000:18:00.0");
        assert_eq!(pf.numa_node, None);
        assert_eq!(pf.vendor, None);
        assert_eq!(pf.device, None);
        assert_eq!(pf.name, None);
        assert_eq!(pf.iommu_group, None);
        assert_eq!(pf.driver, None);
        let sr = pf.sriov.unwrap();
        assert_eq!((sr.total_vfs, sr.num_vfs), (8, 0));
        assert_eq!(sr.vfs, [PciAddr::new(0, 0x18, 1, 1)]);
        // flags unreadable: falls back to operstate.
        assert!(pf.interfaces[0].up);
        assert_eq!(find(&devs, "0000:18:01.0").physfn, None);
        assert!(!devs.iter().any(|d| d.addr == PciAddr::new(0, 0x99, 0, 0)));
        // The empty device reads without panicking and is not a network device.
        let empty = read_device(&root, PciAddr::new(0, 0x99, 0, 0), &ReadContext::default()).unwrap();
        assert_eq!(empty.class, None);
        assert!(!empty.is_network());
        // A missing device and a missing tree are errors.
        assert!(matches!(
            read_device(&root, PciAddr::new(0, 0x42, 0, 0), &ReadContext::default()),
            Err(Error::NoSuchDevice { .. })
        ));
        let nothing = SysRoot::new(d.path().join("nonexistent"));
        assert!(matches!(list_network_devices(&nothing), Err(Error::Io { .. })));
        // Garbage route and alias files.
        fs::write(root.proc_net_route(), [0xffu8, 0, 1, 2]).unwrap();
        assert!(matches!(RouteTable::read(&root), Err(Error::Io { .. })));
        fs::write(root.proc_net_route(), "Iface\n\t\t\nens1f0 zz\n").unwrap();
        assert_eq!(RouteTable::read(&root).unwrap(), RouteTable::default());
        assert!(list_network_devices(&root).is_ok());
    }
}
