//! Test support: a sysfs tree laid out like the kernel's, and a simulated kernel that moves
//! `driver` links on unbind and probe and can be told to fail at a given step.
//!
//! Only in this crate's tests, or with the `testing` feature (for other crates' tests).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use crate::devbind::{Kernel, Step};
use crate::sysfs::{read_trimmed, PciAddr, SysRoot};

/// A PCI device to lay out.
#[derive(Debug, Clone)]
pub struct FixtureDevice {
    /// Address.
    pub addr: PciAddr,
    /// Physical path under `sys/devices` (`pci0000:17/0000:17:00.0/0000:18:00.0`).
    pub phys: String,
    /// Class (`0x020000`).
    pub class: u32,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Driver bound now.
    pub driver: Option<String>,
    /// The driver the kernel would pick without an override.
    pub native_driver: Option<String>,
    /// NUMA node (`-1` for none).
    pub numa_node: i32,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
    /// Network interfaces: (name, up).
    pub ifaces: Vec<(String, bool)>,
    /// SR-IOV PF: (total, num) VFs.
    pub sriov: Option<(u32, u32)>,
    /// VFs of this PF, in order.
    pub vfs: Vec<PciAddr>,
    /// PF of this VF.
    pub physfn: Option<PciAddr>,
    /// driver_override content.
    pub driver_override: Option<String>,
    /// virtio child device name (`virtio2`): interfaces go under `<dev>/virtio2/net/`.
    pub virtio_child: Option<String>,
}

impl FixtureDevice {
    /// A device with the given address, physical path, class, ids and no driver.
    pub fn new(addr: &str, phys: &str, class: u32, vendor: u16, device: u16) -> Self {
        FixtureDevice {
            addr: addr.parse().unwrap_or(PciAddr::new(0, 0, 0, 0)),
            phys: phys.to_string(),
            class,
            vendor,
            device,
            driver: None,
            native_driver: None,
            numa_node: -1,
            iommu_group: None,
            ifaces: Vec::new(),
            sriov: None,
            vfs: Vec::new(),
            physfn: None,
            driver_override: None,
            virtio_child: None,
        }
    }

    /// Bound to `driver`, which is also its native driver.
    pub fn driver(mut self, driver: &str) -> Self {
        self.driver = Some(driver.to_string());
        if self.native_driver.is_none() && driver != "vfio-pci" {
            self.native_driver = Some(driver.to_string());
        }
        self
    }

    /// Its native kernel driver (what a probe without override binds).
    pub fn native(mut self, driver: &str) -> Self {
        self.native_driver = Some(driver.to_string());
        self
    }

    /// NUMA node.
    pub fn numa(mut self, node: i32) -> Self {
        self.numa_node = node;
        self
    }

    /// IOMMU group.
    pub fn group(mut self, g: u32) -> Self {
        self.iommu_group = Some(g);
        self
    }

    /// A network interface.
    pub fn iface(mut self, name: &str, up: bool) -> Self {
        self.ifaces.push((name.to_string(), up));
        self
    }
}

/// `../` as many times as `dir` (relative to `sys/`) has components, then `target`.
fn rel_link(dir: &Path, target: &Path) -> PathBuf {
    let mut p = PathBuf::new();
    for c in dir.components() {
        if let Component::Normal(_) = c {
            p.push("..");
        }
    }
    p.join(target)
}

fn write(path: &Path, content: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, content)
}

/// Creates the symlink `sys/<link_dir>/<name>` → `sys/<target>`, relative like the kernel's.
fn sys_link(sys: &Path, link_dir: &Path, name: &str, target: &Path) -> io::Result<()> {
    fs::create_dir_all(sys.join(link_dir))?;
    symlink(rel_link(link_dir, target), sys.join(link_dir).join(name))
}

/// Lays out `devices` under `root` (sys/, proc/, lib/modules), as the kernel shows them.
/// `drivers` are the loaded drivers (their `sys/bus/pci/drivers/<d>` directories).
///
/// # Errors
/// Any filesystem error.
pub fn build_tree(
    root: &Path,
    devices: &[FixtureDevice],
    drivers: &[&str],
    route: &str,
    modules_alias: &str,
) -> io::Result<SysRoot> {
    let sys = root.join("sys");
    fs::create_dir_all(sys.join("bus/pci/devices"))?;
    fs::create_dir_all(sys.join("class/net"))?;
    fs::create_dir_all(sys.join("kernel/iommu_groups"))?;
    write(&sys.join("bus/pci/drivers_probe"), "")?;
    for d in drivers {
        let dir = sys.join("bus/pci/drivers").join(d);
        for f in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
            write(&dir.join(f), "")?;
        }
    }
    write(&sys.join("module/vfio/parameters/enable_unsafe_noiommu_mode"), "N\n")?;
    write(&root.join("proc/net/route"), route)?;
    write(&root.join("proc/sys/kernel/osrelease"), "6.1.0-fixture\n")?;
    write(&root.join("lib/modules/6.1.0-fixture/modules.alias"), modules_alias)?;

    for d in devices {
        let phys = Path::new("devices").join(&d.phys);
        let dir = sys.join(&phys);
        fs::create_dir_all(&dir)?;
        let addr = d.addr.to_string();
        write(&dir.join("class"), &format!("0x{:06x}\n", d.class))?;
        write(&dir.join("vendor"), &format!("0x{:04x}\n", d.vendor))?;
        write(&dir.join("device"), &format!("0x{:04x}\n", d.device))?;
        write(&dir.join("numa_node"), &format!("{}\n", d.numa_node))?;
        write(
            &dir.join("modalias"),
            &format!(
                "pci:v{:08X}d{:08X}sv{:08X}sd00000000bc{:02X}sc{:02X}i{:02X}\n",
                d.vendor,
                d.device,
                d.vendor,
                d.class >> 16,
                (d.class >> 8) & 0xff,
                d.class & 0xff
            ),
        )?;
        write(&dir.join("driver_override"), &format!("{}\n", d.driver_override.as_deref().unwrap_or("(null)")))?;
        sys_link(&sys, Path::new("bus/pci/devices"), &addr, &phys)?;
        if let Some(drv) = &d.driver {
            let drv_dir = Path::new("bus/pci/drivers").join(drv);
            sys_link(&sys, &phys, "driver", &drv_dir)?;
            sys_link(&sys, &drv_dir, &addr, &phys)?;
        }
        if let Some(g) = d.iommu_group {
            let gdir = Path::new("kernel/iommu_groups").join(g.to_string());
            write(&sys.join(&gdir).join("type"), "DMA\n")?;
            sys_link(&sys, &phys, "iommu_group", &gdir)?;
            sys_link(&sys, &gdir.join("devices"), &addr, &phys)?;
        }
        for (name, up) in &d.ifaces {
            let ndir = match &d.virtio_child {
                Some(v) => phys.join(v).join("net").join(name),
                None => phys.join("net").join(name),
            };
            write(&sys.join(&ndir).join("operstate"), if *up { "up\n" } else { "down\n" })?;
            write(&sys.join(&ndir).join("flags"), if *up { "0x1003\n" } else { "0x1002\n" })?;
            sys_link(&sys, Path::new("class/net"), name, &ndir)?;
            sys_link(&sys, &ndir, "device", &phys)?;
        }
        if let Some((total, num)) = d.sriov {
            write(&dir.join("sriov_totalvfs"), &format!("{total}\n"))?;
            write(&dir.join("sriov_numvfs"), &format!("{num}\n"))?;
        }
        for (i, vf) in d.vfs.iter().enumerate() {
            symlink(format!("../{vf}"), dir.join(format!("virtfn{i}")))?;
        }
        if let Some(pf) = d.physfn {
            symlink(format!("../{pf}"), dir.join("physfn"))?;
        }
    }
    Ok(SysRoot::new(root))
}

/// The standard fixture's devices:
/// - `0000:00:03.0` virtio-net (virtio-pci), `eth1` under `virtio2/net/`, up with a
///   192.168.0.0/16 route, no NUMA node (`-1`), no IOMMU group;
/// - `0000:17:00.0` root port (pcieport), group 17;
/// - `0000:18:00.0` Intel E810 PF, ice, `ens1f0` (up, no routes), NUMA 0, group 40,
///   2 of 8 VFs: `0000:18:01.0` (iavf, `ens1f0v0`, group 41) and `0000:18:01.1` (vfio-pci,
///   group 44, native iavf);
/// - `0000:3b:00.0` Intel 82599 PF, ixgbe, `eno1` carrying the default route, NUMA 1,
///   group 60;
/// - `0000:5e:00.0` and `0000:5e:00.1`: an X710 with both functions in IOMMU group 42, the
///   first on vfio-pci, the second on i40e (`ens2f1`, down) — group 42 is not viable;
/// - `0000:af:00.0` ConnectX-5 with no driver (mlx5_core not loaded), NUMA 1, group 70;
/// - `0000:00:1f.2` a SATA controller (not a network device), ahci.
pub fn standard_devices() -> Vec<FixtureDevice> {
    let pf = PciAddr::new(0, 0x18, 0, 0);
    let vf0 = PciAddr::new(0, 0x18, 1, 0);
    let vf1 = PciAddr::new(0, 0x18, 1, 1);
    let mut pf_dev =
        FixtureDevice::new("0000:18:00.0", "pci0000:17/0000:17:00.0/0000:18:00.0", 0x020000, 0x8086, 0x1592)
            .driver("ice")
            .numa(0)
            .group(40)
            .iface("ens1f0", true);
    pf_dev.sriov = Some((8, 2));
    pf_dev.vfs = vec![vf0, vf1];
    let mut vf0_dev =
        FixtureDevice::new("0000:18:01.0", "pci0000:17/0000:17:00.0/0000:18:01.0", 0x020000, 0x8086, 0x1889)
            .driver("iavf")
            .numa(0)
            .group(41)
            .iface("ens1f0v0", false);
    vf0_dev.physfn = Some(pf);
    let mut vf1_dev =
        FixtureDevice::new("0000:18:01.1", "pci0000:17/0000:17:00.0/0000:18:01.1", 0x020000, 0x8086, 0x1889)
            .driver("vfio-pci")
            .native("iavf")
            .numa(0)
            .group(44);
    vf1_dev.physfn = Some(pf);
    vf1_dev.driver_override = Some("vfio-pci".into());
    let mut virtio = FixtureDevice::new("0000:00:03.0", "pci0000:00/0000:00:03.0", 0x020000, 0x1af4, 0x1041)
        .driver("virtio-pci")
        .iface("eth1", true);
    virtio.virtio_child = Some("virtio2".into());
    vec![
        virtio,
        FixtureDevice::new("0000:00:1f.2", "pci0000:00/0000:00:1f.2", 0x010601, 0x8086, 0xa352).driver("ahci").numa(0),
        FixtureDevice::new("0000:17:00.0", "pci0000:17/0000:17:00.0", 0x060400, 0x8086, 0x347a)
            .driver("pcieport")
            .numa(0)
            .group(17),
        pf_dev,
        vf0_dev,
        vf1_dev,
        FixtureDevice::new("0000:3b:00.0", "pci0000:3a/0000:3a:00.0/0000:3b:00.0", 0x020000, 0x8086, 0x10fb)
            .driver("ixgbe")
            .numa(1)
            .group(60)
            .iface("eno1", true),
        FixtureDevice::new("0000:5e:00.0", "pci0000:5d/0000:5d:00.0/0000:5e:00.0", 0x020000, 0x8086, 0x1572)
            .driver("vfio-pci")
            .native("i40e")
            .numa(1)
            .group(42),
        FixtureDevice::new("0000:5e:00.1", "pci0000:5d/0000:5d:00.0/0000:5e:00.1", 0x020000, 0x8086, 0x1572)
            .driver("i40e")
            .numa(1)
            .group(42)
            .iface("ens2f1", false),
        FixtureDevice::new("0000:af:00.0", "pci0000:ae/0000:ae:00.0/0000:af:00.0", 0x020000, 0x15b3, 0x1017)
            .native("mlx5_core")
            .numa(1)
            .group(70),
    ]
}

/// `proc/net/route` of the standard fixture: `eno1` carries the default route and a
/// 192.0.2.0/24 route, `eth1` (virtio) a 192.168.0.0/16 route; nothing goes through the
/// E810.
pub const STANDARD_ROUTE: &str =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eno1\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eno1\t000200C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

/// `modules.alias` of the standard fixture.
pub const STANDARD_ALIASES: &str = "# Aliases extracted from modules themselves.\n\
alias pci:v00008086d00001592sv*sd*bc*sc*i* ice\n\
alias pci:v00008086d00001889sv*sd*bc*sc*i* iavf\n\
alias pci:v00008086d000010FBsv*sd*bc*sc*i* ixgbe\n\
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n\
alias pci:v00008086d00001572sv*sd*bc*sc*i* i40e\n\
alias pci:v000015B3d00001017sv*sd*bc*sc*i* mlx5_core\n\
alias pci:v*d*sv*sd*bc01sc06i01* ahci\n\
alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n";

/// The loaded drivers of the standard fixture (mlx5_core is not loaded).
pub const STANDARD_DRIVERS: [&str; 8] = ["ice", "iavf", "ixgbe", "i40e", "vfio-pci", "pcieport", "ahci", "virtio-pci"];

/// Builds the standard fixture under `root` and a simulated kernel that knows each
/// device's native driver.
///
/// # Errors
/// Any filesystem error.
pub fn standard_fixture(root: &Path) -> io::Result<(SysRoot, SimKernel)> {
    let devices = standard_devices();
    let sys = build_tree(root, &devices, &STANDARD_DRIVERS, STANDARD_ROUTE, STANDARD_ALIASES)?;
    Ok((sys, SimKernel::new(&devices)))
}

/// How a simulated step misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write fails with EIO (the next time that step runs).
    Fail,
    /// The probe binds the native driver, ignoring `driver_override` (next probe only).
    IgnoreOverride,
}

/// A simulated kernel: `driver_override` writes go to the file; unbind removes the `driver`
/// link and the driver's device link, and the device's netdevs (`net/`, `class/net` links);
/// probe binds the override (if loaded) or the native driver (if loaded), and a kernel
/// driver brings the netdevs back. Faults can be injected per step; every call is logged.
#[derive(Debug, Default)]
pub struct SimKernel {
    native: HashMap<PciAddr, String>,
    faults: Vec<(Step, Fault)>,
    /// The calls made, in order: (step, device, argument).
    pub log: Vec<(Step, PciAddr, String)>,
}

impl SimKernel {
    /// A kernel that knows these devices' native drivers.
    pub fn new(devices: &[FixtureDevice]) -> Self {
        SimKernel {
            native: devices.iter().filter_map(|d| Some((d.addr, d.native_driver.clone()?))).collect(),
            ..Default::default()
        }
    }

    /// Makes the next call of `step` misbehave. [`Step::SetOverride`] covers setting,
    /// [`Step::ClearOverride`] clearing.
    pub fn inject(&mut self, step: Step, fault: Fault) {
        self.faults.push((step, fault));
    }

    fn take_fault(&mut self, step: Step) -> Option<Fault> {
        let i = self.faults.iter().position(|(s, _)| *s == step)?;
        Some(self.faults.remove(i).1)
    }

    fn phys(root: &SysRoot, dev: PciAddr) -> io::Result<PathBuf> {
        let sys = fs::canonicalize(root.path().join("sys"))?;
        let real = fs::canonicalize(root.pci_device(dev))?;
        real.strip_prefix(&sys).map(Path::to_path_buf).map_err(|_| io::Error::other("device outside sys/"))
    }

    fn stash(root: &SysRoot, dev: PciAddr) -> PathBuf {
        root.path().join("sim-stash").join(dev.to_string())
    }

    /// A kernel driver going away unregisters the device's netdevs (and virtio child
    /// devices): move `net/` and `virtio*/` aside and drop their `class/net` links.
    fn detach_netdevs(root: &SysRoot, dev: PciAddr) -> io::Result<()> {
        let dev_dir = root.pci_device(dev);
        let stash = Self::stash(root, dev);
        for e in fs::read_dir(&dev_dir)? {
            let e = e?;
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n != "net" && !n.starts_with("virtio") {
                continue;
            }
            let net = if n == "net" { e.path() } else { e.path().join("net") };
            if let Ok(rd) = fs::read_dir(&net) {
                for i in rd {
                    let _ = fs::remove_file(root.class_net().join(i?.file_name()));
                }
            }
            fs::create_dir_all(&stash)?;
            fs::rename(e.path(), stash.join(&name))?;
        }
        Ok(())
    }

    /// A kernel (non-DPDK) driver taking the device registers its netdevs again.
    fn attach_netdevs(root: &SysRoot, dev: PciAddr, phys: &Path) -> io::Result<()> {
        let stash = Self::stash(root, dev);
        let Ok(rd) = fs::read_dir(&stash) else {
            return Ok(());
        };
        let sys = root.path().join("sys");
        for e in rd {
            let e = e?;
            let name = e.file_name();
            let n = name.to_string_lossy().into_owned();
            fs::rename(e.path(), root.pci_device(dev).join(&name))?;
            let rel = if n == "net" { phys.join("net") } else { phys.join(&n).join("net") };
            if let Ok(ifs) = fs::read_dir(sys.join(&rel)) {
                for i in ifs {
                    let iname = i?.file_name();
                    let iname = iname.to_string_lossy();
                    sys_link(&sys, Path::new("class/net"), &iname, &rel.join(&*iname))?;
                }
            }
        }
        Ok(())
    }

    fn attach(root: &SysRoot, dev: PciAddr, driver: &str) -> io::Result<()> {
        let sys = root.path().join("sys");
        let phys = Self::phys(root, dev)?;
        let drv_dir = Path::new("bus/pci/drivers").join(driver);
        sys_link(&sys, &phys, "driver", &drv_dir)?;
        sys_link(&sys, &drv_dir, &dev.to_string(), &phys)?;
        if !crate::sysfs::DPDK_DRIVERS.contains(&driver) {
            Self::attach_netdevs(root, dev, &phys)?;
        }
        Ok(())
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

impl Kernel for SimKernel {
    fn set_driver_override(&mut self, root: &SysRoot, dev: PciAddr, driver: Option<&str>) -> io::Result<()> {
        let step = if driver.is_some() { Step::SetOverride } else { Step::ClearOverride };
        self.log.push((step, dev, driver.unwrap_or_default().to_string()));
        if self.take_fault(step).is_some() {
            return Err(eio());
        }
        let path = root.pci_device(dev).join("driver_override");
        if !path.exists() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        fs::write(path, format!("{}\n", driver.unwrap_or("(null)")))
    }

    fn unbind(&mut self, root: &SysRoot, dev: PciAddr, driver: &str) -> io::Result<()> {
        self.log.push((Step::Unbind, dev, driver.to_string()));
        if self.take_fault(Step::Unbind).is_some() {
            return Err(eio());
        }
        let link = root.pci_device(dev).join("driver");
        if crate::sysfs::link_name(&link).as_deref() != Some(driver) {
            // The kernel answers ENODEV when the device is not bound to that driver.
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        fs::remove_file(&link)?;
        let _ = fs::remove_file(root.pci_driver(driver).join(dev.to_string()));
        Self::detach_netdevs(root, dev)
    }

    fn probe(&mut self, root: &SysRoot, dev: PciAddr) -> io::Result<()> {
        self.log.push((Step::Probe, dev, String::new()));
        let fault = self.take_fault(Step::Probe);
        if fault == Some(Fault::Fail) {
            return Err(eio());
        }
        if crate::sysfs::current_driver(root, dev).is_some() {
            return Ok(());
        }
        let over =
            read_trimmed(&root.pci_device(dev).join("driver_override")).filter(|s| !s.is_empty() && s != "(null)");
        let choice = match (over, fault) {
            (Some(o), None) => Some(o),
            _ => self.native.get(&dev).cloned(),
        };
        match choice {
            Some(d) if root.pci_driver(&d).is_dir() => Self::attach(root, dev, &d),
            // No driver matches: the kernel leaves the device unbound and the write succeeds.
            _ => Ok(()),
        }
    }
}
