//! Binding PCI devices to vfio-pci and back, the way `dpdk-devbind.py --bind/--unbind` does.
//!
//! A bind to driver `D` is:
//! 1. [`Step::SetOverride`]: write `D` to the device's `driver_override`, so that only `D`
//!    may take it;
//! 2. [`Step::Unbind`]: write the address to `drivers/<current>/unbind` (if bound);
//! 3. [`Step::Probe`]: write the address to `sys/bus/pci/drivers_probe`;
//! 4. [`Step::Verify`]: read the `driver` link back; it must name `D`.
//!
//! If any step fails, the bind is rolled back: `driver_override` is cleared, the device is
//! unbound from whatever holds it now, and re-probed so that its original driver takes it
//! back. The error says which step failed and what the rollback achieved.
//!
//! An unbind is: clear `driver_override`, unbind, probe, so that the kernel driver that
//! matches the device takes it again.
//!
//! A device whose interface carries the default route, or is up with routes, is refused
//! unless `force` is set. All writes go through [`Kernel`]: [`SysfsKernel`] writes the real
//! files; tests use a simulated kernel.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, FailCause, Rollback};
use crate::sysfs::{self, current_driver, GroupMember, PciAddr, ReadContext, RouteTable, SysRoot, VFIO_PCI};

/// A step of a bind or unbind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Writing `driver_override` (setting it).
    SetOverride,
    /// Writing `driver_override` (clearing it).
    ClearOverride,
    /// Writing `drivers/<driver>/unbind`.
    Unbind,
    /// Writing `drivers_probe`.
    Probe,
    /// Reading back the `driver` link.
    Verify,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::SetOverride => "set driver_override",
            Step::ClearOverride => "clear driver_override",
            Step::Unbind => "unbind",
            Step::Probe => "drivers_probe",
            Step::Verify => "verify driver",
        })
    }
}

impl Step {
    /// The file this step writes (or, for [`Step::Verify`], reads). `driver` is the driver
    /// being unbound from, for [`Step::Unbind`].
    pub fn path(self, root: &SysRoot, dev: PciAddr, driver: Option<&str>) -> PathBuf {
        match self {
            Step::SetOverride | Step::ClearOverride => root.pci_device(dev).join("driver_override"),
            Step::Unbind => root.pci_driver(driver.unwrap_or("<none>")).join("unbind"),
            Step::Probe => root.drivers_probe(),
            Step::Verify => root.pci_device(dev).join("driver"),
        }
    }
}

/// The writes a bind needs from the kernel. [`SysfsKernel`] writes sysfs files; a simulation
/// (see `vfio::testing`) moves `driver` links as the kernel would.
pub trait Kernel {
    /// Sets (`Some`) or clears (`None`) the device's `driver_override`.
    ///
    /// # Errors
    /// The write's error.
    fn set_driver_override(&mut self, root: &SysRoot, dev: PciAddr, driver: Option<&str>) -> io::Result<()>;

    /// Unbinds the device from `driver` (`drivers/<driver>/unbind`).
    ///
    /// # Errors
    /// The write's error.
    fn unbind(&mut self, root: &SysRoot, dev: PciAddr, driver: &str) -> io::Result<()>;

    /// Asks the kernel to find a driver for the device (`drivers_probe`).
    ///
    /// # Errors
    /// The write's error.
    fn probe(&mut self, root: &SysRoot, dev: PciAddr) -> io::Result<()>;
}

/// The real kernel: writes the sysfs files under the [`SysRoot`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SysfsKernel;

fn write_sysfs(path: &std::path::Path, value: &str) -> io::Result<()> {
    // sysfs attributes: open for writing as `echo v > attr` does (truncate, which sysfs
    // ignores; never create), one write.
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())
}

impl Kernel for SysfsKernel {
    fn set_driver_override(&mut self, root: &SysRoot, dev: PciAddr, driver: Option<&str>) -> io::Result<()> {
        // A lone newline clears the override (the kernel strips it and stores nothing).
        let value = driver.map_or_else(|| "\n".to_string(), |d| format!("{d}\n"));
        write_sysfs(&Step::SetOverride.path(root, dev, None), &value)
    }

    fn unbind(&mut self, root: &SysRoot, dev: PciAddr, driver: &str) -> io::Result<()> {
        write_sysfs(&Step::Unbind.path(root, dev, Some(driver)), &dev.to_string())
    }

    fn probe(&mut self, root: &SysRoot, dev: PciAddr) -> io::Result<()> {
        write_sysfs(&root.drivers_probe(), &dev.to_string())
    }
}

/// The result of a bind or unbind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindOutcome {
    /// The device.
    pub device: PciAddr,
    /// Its driver before.
    pub previous_driver: Option<String>,
    /// Its driver now.
    pub driver: Option<String>,
    /// Whether anything was changed (false when it already was on the driver asked for).
    pub changed: bool,
    /// Its IOMMU group, if any.
    pub iommu_group: Option<u32>,
    /// After a bind to vfio-pci: the devices of its group that still keep the group from
    /// being usable through VFIO (empty = viable). Empty after other binds.
    pub group_offenders: Vec<GroupMember>,
}

/// Checks the default-route guard: refuses a device whose interface carries the default
/// route, or is up with routes.
///
/// # Errors
/// [`Error::InterfaceInUse`]; [`Error::Io`] when `proc/net/route` cannot be read (the guard
/// fails closed); [`Error::NoSuchDevice`].
pub fn check_not_in_use(root: &SysRoot, dev: PciAddr) -> Result<(), Error> {
    let ctx = ReadContext { routes: RouteTable::read(root)?, ..ReadContext::default() };
    let d = sysfs::read_device(root, dev, &ctx)?;
    match d.in_use() {
        Some((iface, reason)) => Err(Error::InterfaceInUse { device: dev, iface: iface.name.clone(), reason }),
        None => Ok(()),
    }
}

/// Binds `dev` to vfio-pci (see [`bind`]).
///
/// # Errors
/// As [`bind`].
pub fn bind_vfio(root: &SysRoot, kernel: &mut dyn Kernel, dev: PciAddr, force: bool) -> Result<BindOutcome, Error> {
    bind(root, kernel, dev, VFIO_PCI, force)
}

/// Binds `dev` to `driver` via `driver_override`, unbind, `drivers_probe`, and checks the
/// result; rolls back on failure. Unless `force`, refuses a device whose interface is in use
/// (see [`check_not_in_use`]).
///
/// # Errors
/// [`Error::NoSuchDevice`], [`Error::DriverNotLoaded`], [`Error::InterfaceInUse`],
/// [`Error::Io`] (routes unreadable), [`Error::BindFailed`] with the failed step and the
/// rollback's outcome.
pub fn bind(
    root: &SysRoot,
    kernel: &mut dyn Kernel,
    dev: PciAddr,
    driver: &str,
    force: bool,
) -> Result<BindOutcome, Error> {
    let dev_dir = root.pci_device(dev);
    if !dev_dir.is_dir() {
        return Err(Error::NoSuchDevice { device: dev, path: dev_dir });
    }
    let original = current_driver(root, dev);
    let group = sysfs::device_iommu_group(root, dev).ok();
    let offenders = |root: &SysRoot| -> Vec<GroupMember> {
        match group {
            Some(g) if driver == VFIO_PCI => sysfs::group_offenders(root, g).unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    if original.as_deref() == Some(driver) {
        return Ok(BindOutcome {
            device: dev,
            previous_driver: original.clone(),
            driver: original,
            changed: false,
            iommu_group: group,
            group_offenders: offenders(root),
        });
    }
    let drv_dir = root.pci_driver(driver);
    if !drv_dir.is_dir() {
        return Err(Error::DriverNotLoaded {
            device: dev,
            driver: driver.to_string(),
            path: drv_dir,
            module: driver.replace('-', "_"),
        });
    }
    if !force {
        check_not_in_use(root, dev)?;
    }

    let fail = |kernel: &mut dyn Kernel, step: Step, cause: FailCause| -> Error {
        Error::BindFailed {
            device: dev,
            driver: driver.to_string(),
            step,
            path: step.path(root, dev, original.as_deref()),
            cause,
            rollback: Box::new(rollback(root, kernel, dev, original.as_deref())),
        }
    };

    if let Err(e) = kernel.set_driver_override(root, dev, Some(driver)) {
        return Err(fail(kernel, Step::SetOverride, FailCause::Io(e)));
    }
    if let Some(orig) = original.as_deref() {
        if let Err(e) = kernel.unbind(root, dev, orig) {
            return Err(fail(kernel, Step::Unbind, FailCause::Io(e)));
        }
    }
    if let Err(e) = kernel.probe(root, dev) {
        return Err(fail(kernel, Step::Probe, FailCause::Io(e)));
    }
    let now = current_driver(root, dev);
    if now.as_deref() != Some(driver) {
        return Err(fail(kernel, Step::Verify, FailCause::WrongDriver { found: now }));
    }
    Ok(BindOutcome {
        device: dev,
        previous_driver: original,
        driver: now,
        changed: true,
        iommu_group: group,
        group_offenders: offenders(root),
    })
}

/// Puts `dev` back on `original`: clear the override, unbind from whatever holds it now,
/// re-probe, check.
fn rollback(root: &SysRoot, kernel: &mut dyn Kernel, dev: PciAddr, original: Option<&str>) -> Rollback {
    let failed = |kernel_step: Step, cause: FailCause| Rollback::Failed {
        step: kernel_step,
        cause,
        driver_now: current_driver(root, dev),
    };
    if let Err(e) = kernel.set_driver_override(root, dev, None) {
        return failed(Step::ClearOverride, FailCause::Io(e));
    }
    let now = current_driver(root, dev);
    if now.as_deref() == original {
        return Rollback::Restored { driver: now };
    }
    if let Some(cur) = now.as_deref() {
        if let Err(e) = kernel.unbind(root, dev, cur) {
            return failed(Step::Unbind, FailCause::Io(e));
        }
    }
    if original.is_some() {
        if let Err(e) = kernel.probe(root, dev) {
            return failed(Step::Probe, FailCause::Io(e));
        }
    }
    let now = current_driver(root, dev);
    if now.as_deref() == original {
        Rollback::Restored { driver: now }
    } else {
        failed(Step::Verify, FailCause::WrongDriver { found: now })
    }
}

/// Unbinds `dev` from its driver (vfio-pci, usually) and lets the kernel driver that matches
/// it take it back: clear `driver_override`, unbind, `drivers_probe`. The outcome's `driver`
/// is the driver that took it (`None` if none did).
///
/// # Errors
/// [`Error::NoSuchDevice`]; [`Error::UnbindFailed`] with the failed step and where the
/// device was left.
pub fn unbind(root: &SysRoot, kernel: &mut dyn Kernel, dev: PciAddr) -> Result<BindOutcome, Error> {
    let dev_dir = root.pci_device(dev);
    if !dev_dir.is_dir() {
        return Err(Error::NoSuchDevice { device: dev, path: dev_dir });
    }
    let original = current_driver(root, dev);
    let fail = |step: Step, source: io::Error| Error::UnbindFailed {
        device: dev,
        step,
        path: step.path(root, dev, original.as_deref()),
        source,
        driver_now: current_driver(root, dev),
    };
    kernel.set_driver_override(root, dev, None).map_err(|e| fail(Step::ClearOverride, e))?;
    if let Some(orig) = original.as_deref() {
        kernel.unbind(root, dev, orig).map_err(|e| fail(Step::Unbind, e))?;
    }
    kernel.probe(root, dev).map_err(|e| fail(Step::Probe, e))?;
    let now = current_driver(root, dev);
    Ok(BindOutcome {
        device: dev,
        changed: now != original,
        previous_driver: original,
        driver: now,
        iommu_group: sysfs::device_iommu_group(root, dev).ok(),
        group_offenders: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InUse;
    use crate::testing::{standard_fixture, Fault, SimKernel};
    use std::fs;

    const PF: PciAddr = PciAddr::new(0, 0x18, 0, 0);
    const VF0: PciAddr = PciAddr::new(0, 0x18, 1, 0);
    const VF1: PciAddr = PciAddr::new(0, 0x18, 1, 1);
    const ENO1: PciAddr = PciAddr::new(0, 0x3b, 0, 0);
    const X710_0: PciAddr = PciAddr::new(0, 0x5e, 0, 0);
    const X710_1: PciAddr = PciAddr::new(0, 0x5e, 0, 1);
    const CX5: PciAddr = PciAddr::new(0, 0xaf, 0, 0);

    fn fixture() -> (tempfile::TempDir, SysRoot, SimKernel) {
        let dir = tempfile::tempdir().unwrap();
        let (root, k) = standard_fixture(dir.path()).unwrap();
        (dir, root, k)
    }

    fn drv(root: &SysRoot, a: PciAddr) -> Option<String> {
        current_driver(root, a)
    }

    fn override_of(root: &SysRoot, a: PciAddr) -> String {
        fs::read_to_string(root.pci_device(a).join("driver_override")).unwrap().trim().to_string()
    }

    /// The driver's directory lists the device exactly when the device's link names it.
    fn links_consistent(root: &SysRoot, a: PciAddr) {
        for d in crate::testing::STANDARD_DRIVERS {
            let listed = root.pci_driver(d).join(a.to_string()).exists();
            assert_eq!(listed, drv(root, a).as_deref() == Some(d), "{a} / {d}");
        }
    }

    #[test]
    fn bind_vf_to_vfio_and_back() {
        let (_d, root, mut k) = fixture();
        let out = bind_vfio(&root, &mut k, VF0, false).unwrap();
        assert_eq!(out.previous_driver.as_deref(), Some("iavf"));
        assert_eq!(out.driver.as_deref(), Some("vfio-pci"));
        assert!(out.changed);
        assert_eq!(out.iommu_group, Some(41));
        assert!(out.group_offenders.is_empty());
        assert_eq!(drv(&root, VF0).as_deref(), Some("vfio-pci"));
        assert_eq!(override_of(&root, VF0), "vfio-pci");
        links_consistent(&root, VF0);
        let steps: Vec<Step> = k.log.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(steps, [Step::SetOverride, Step::Unbind, Step::Probe]);
        assert_eq!(k.log[1].2, "iavf");

        k.log.clear();
        let out = unbind(&root, &mut k, VF0).unwrap();
        assert_eq!(out.previous_driver.as_deref(), Some("vfio-pci"));
        assert_eq!(out.driver.as_deref(), Some("iavf"));
        assert!(out.changed);
        assert_eq!(override_of(&root, VF0), "(null)");
        links_consistent(&root, VF0);
        let steps: Vec<Step> = k.log.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(steps, [Step::ClearOverride, Step::Unbind, Step::Probe]);
    }

    #[test]
    fn bind_is_a_no_op_when_already_bound() {
        let (_d, root, mut k) = fixture();
        let out = bind_vfio(&root, &mut k, VF1, false).unwrap();
        assert!(!out.changed);
        assert_eq!(out.driver.as_deref(), Some("vfio-pci"));
        assert!(k.log.is_empty());
    }

    #[test]
    fn bind_an_unbound_device() {
        let (_d, root, mut k) = fixture();
        let out = bind_vfio(&root, &mut k, CX5, false).unwrap();
        assert_eq!(out.previous_driver, None);
        assert_eq!(out.driver.as_deref(), Some("vfio-pci"));
        // No unbind step for a device without a driver.
        assert!(!k.log.iter().any(|(s, _, _)| *s == Step::Unbind));
        // Unbinding it: mlx5_core is not loaded, so it stays without a driver.
        let out = unbind(&root, &mut k, CX5).unwrap();
        assert_eq!(out.driver, None);
        links_consistent(&root, CX5);
    }

    #[test]
    fn rollback_when_probe_fails() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::Probe, Fault::Fail);
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        match &e {
            Error::BindFailed { device, step, path, cause, rollback, .. } => {
                assert_eq!(*device, VF0);
                assert_eq!(*step, Step::Probe);
                assert_eq!(path, &root.drivers_probe());
                assert!(matches!(cause, crate::FailCause::Io(_)));
                assert!(
                    matches!(&**rollback, Rollback::Restored { driver } if driver.as_deref() == Some("iavf")),
                    "{rollback}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("failed at step drivers_probe"), "{msg}");
        assert!(msg.contains("rolled back, device is on iavf"), "{msg}");
        // Really restored: original driver, override cleared, links consistent.
        assert_eq!(drv(&root, VF0).as_deref(), Some("iavf"));
        assert_eq!(override_of(&root, VF0), "(null)");
        links_consistent(&root, VF0);
        // The device was unbound, then re-probed during the rollback.
        let steps: Vec<Step> = k.log.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(steps, [Step::SetOverride, Step::Unbind, Step::Probe, Step::ClearOverride, Step::Probe]);
    }

    #[test]
    fn rollback_when_unbind_fails() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::Unbind, Fault::Fail);
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        assert!(
            matches!(&e, Error::BindFailed { step: Step::Unbind, path, .. }
                if path.ends_with("drivers/iavf/unbind")),
            "{e}"
        );
        assert_eq!(drv(&root, VF0).as_deref(), Some("iavf"));
        assert_eq!(override_of(&root, VF0), "(null)");
    }

    #[test]
    fn rollback_when_the_wrong_driver_takes_the_device() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::Probe, Fault::IgnoreOverride);
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        match &e {
            Error::BindFailed {
                step: Step::Verify, cause: crate::FailCause::WrongDriver { found }, rollback, ..
            } => {
                assert_eq!(found.as_deref(), Some("iavf"));
                assert!(matches!(&**rollback, Rollback::Restored { .. }));
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(drv(&root, VF0).as_deref(), Some("iavf"));
        assert_eq!(override_of(&root, VF0), "(null)");
    }

    #[test]
    fn failed_rollback_is_reported() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::Probe, Fault::Fail);
        k.inject(Step::Probe, Fault::Fail);
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        match &e {
            Error::BindFailed { rollback, .. } => match &**rollback {
                Rollback::Failed { step, driver_now, .. } => {
                    assert_eq!(*step, Step::Probe);
                    assert_eq!(*driver_now, None);
                }
                r => panic!("unexpected {r}"),
            },
            other => panic!("unexpected {other}"),
        }
        assert!(e.to_string().contains("rollback failed too"), "{e}");
        // Left without a driver; a later unbind (clear, probe) brings it back.
        assert_eq!(drv(&root, VF0), None);
        let out = unbind(&root, &mut k, VF0).unwrap();
        assert_eq!(out.driver.as_deref(), Some("iavf"));
    }

    #[test]
    fn set_override_failure_leaves_the_device_alone() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::SetOverride, Fault::Fail);
        let e = bind_vfio(&root, &mut k, PF, false).unwrap_err();
        assert!(
            matches!(&e, Error::BindFailed { step: Step::SetOverride, rollback, .. }
                if matches!(&**rollback, Rollback::Restored { driver } if driver.as_deref() == Some("ice"))),
            "{e}"
        );
        assert!(!k.log.iter().any(|(s, _, _)| *s == Step::Unbind));
        assert_eq!(drv(&root, PF).as_deref(), Some("ice"));
    }

    #[test]
    fn default_route_guard_and_force() {
        let (_d, root, mut k) = fixture();
        let e = bind_vfio(&root, &mut k, ENO1, false).unwrap_err();
        match &e {
            Error::InterfaceInUse { device, iface, reason } => {
                assert_eq!(*device, ENO1);
                assert_eq!(iface, "eno1");
                assert_eq!(*reason, InUse::DefaultRoute);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(e.to_string().contains("eno1 carries the default route"), "{e}");
        assert!(k.log.is_empty(), "nothing written when refused");
        assert_eq!(drv(&root, ENO1).as_deref(), Some("ixgbe"));

        let out = bind_vfio(&root, &mut k, ENO1, true).unwrap();
        assert_eq!(out.driver.as_deref(), Some("vfio-pci"));
    }

    #[test]
    fn virtio_net_interface_is_guarded_and_comes_back() {
        let (_d, root, mut k) = fixture();
        let virtio = PciAddr::new(0, 0, 3, 0);
        let e = bind_vfio(&root, &mut k, virtio, false).unwrap_err();
        assert!(
            matches!(&e, Error::InterfaceInUse { iface, reason: InUse::ActiveWithRoutes, .. } if iface == "eth1"),
            "{e}"
        );
        bind_vfio(&root, &mut k, virtio, true).unwrap();
        assert!(!root.class_net().join("eth1").exists());
        assert!(!root.pci_device(virtio).join("virtio2").exists());
        let out = unbind(&root, &mut k, virtio).unwrap();
        assert_eq!(out.driver.as_deref(), Some("virtio-pci"));
        assert_eq!(root.resolve("eth1").unwrap(), virtio);
    }

    #[test]
    fn up_with_routes_is_guarded_too() {
        let (_d, root, mut k) = fixture();
        // Give the (up) E810 PF a subnet route, no default route.
        let mut route = fs::read_to_string(root.proc_net_route()).unwrap();
        route.push_str("ens1f0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        fs::write(root.proc_net_route(), &route).unwrap();
        let e = bind_vfio(&root, &mut k, PF, false).unwrap_err();
        assert!(matches!(e, Error::InterfaceInUse { reason: InUse::ActiveWithRoutes, .. }), "{e}");
        // The same route on a down interface (the X710's ens2f1) does not block.
        route.push_str("ens2f1\t0065A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        fs::write(root.proc_net_route(), &route).unwrap();
        bind_vfio(&root, &mut k, X710_1, false).unwrap();
        // Unreadable routes: the guard fails closed, force bypasses it.
        fs::remove_file(root.proc_net_route()).unwrap();
        assert!(matches!(bind_vfio(&root, &mut k, VF0, false), Err(Error::Io { .. })));
        bind_vfio(&root, &mut k, VF0, true).unwrap();
    }

    #[test]
    fn binding_reports_and_fixes_group_viability() {
        let (_d, root, mut k) = fixture();
        // Group 42: 5e:00.0 on vfio-pci, 5e:00.1 on i40e. Binding 5e:00.0 again reports 5e:00.1.
        let out = bind_vfio(&root, &mut k, X710_0, false).unwrap();
        assert!(!out.changed);
        assert_eq!(out.group_offenders.len(), 1);
        assert_eq!(out.group_offenders[0].addr, X710_1);
        // Binding the other function makes the group viable.
        let out = bind_vfio(&root, &mut k, X710_1, false).unwrap();
        assert!(out.changed);
        assert!(out.group_offenders.is_empty());
        crate::sysfs::check_group_viable(&root, 42).unwrap();
        // Unbinding one makes it not viable again.
        unbind(&root, &mut k, X710_1).unwrap();
        assert!(matches!(crate::sysfs::check_group_viable(&root, 42), Err(Error::GroupNotViable { .. })));
    }

    #[test]
    fn driver_not_loaded_and_no_such_device() {
        let (_d, root, mut k) = fixture();
        let e = bind(&root, &mut k, VF0, "igb_uio", false).unwrap_err();
        assert!(matches!(&e, Error::DriverNotLoaded { module, .. } if module == "igb_uio"));
        fs::remove_dir_all(root.pci_driver("vfio-pci")).unwrap();
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        assert!(e.to_string().contains("modprobe vfio_pci"), "{e}");
        let nodev = PciAddr::new(0, 0x77, 0, 0);
        assert!(matches!(bind_vfio(&root, &mut k, nodev, false), Err(Error::NoSuchDevice { .. })));
        assert!(matches!(unbind(&root, &mut k, nodev), Err(Error::NoSuchDevice { .. })));
        assert!(k.log.is_empty());
    }

    #[test]
    fn unbind_failure_says_where_the_device_is() {
        let (_d, root, mut k) = fixture();
        k.inject(Step::Probe, Fault::Fail);
        let e = unbind(&root, &mut k, VF1).unwrap_err();
        match e {
            Error::UnbindFailed { step, driver_now, .. } => {
                assert_eq!(step, Step::Probe);
                assert_eq!(driver_now, None);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn sysfs_kernel_writes_the_files() {
        // The real implementation against plain files: check what it writes where.
        let (_d, root, _) = fixture();
        let mut k = SysfsKernel;
        k.set_driver_override(&root, VF0, Some("vfio-pci")).unwrap();
        assert_eq!(fs::read_to_string(root.pci_device(VF0).join("driver_override")).unwrap(), "vfio-pci\n");
        k.set_driver_override(&root, VF0, None).unwrap();
        assert_eq!(fs::read_to_string(root.pci_device(VF0).join("driver_override")).unwrap(), "\n");
        k.unbind(&root, VF0, "iavf").unwrap();
        assert_eq!(fs::read_to_string(root.pci_driver("iavf").join("unbind")).unwrap(), "0000:18:01.0");
        k.probe(&root, VF0).unwrap();
        assert_eq!(fs::read_to_string(root.drivers_probe()).unwrap(), "0000:18:01.0");
        // It does not create files: a missing attribute is an error.
        let e = k.unbind(&root, VF0, "nosuchdriver").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        // And a full bind on plain files fails at verify (no kernel moved the link) and the
        // rollback reports the device still on iavf.
        let e = bind_vfio(&root, &mut k, VF0, false).unwrap_err();
        assert!(
            matches!(&e, Error::BindFailed { step: Step::Verify, rollback, .. }
                if matches!(&**rollback, Rollback::Restored { driver } if driver.as_deref() == Some("iavf"))),
            "{e}"
        );
    }
}
