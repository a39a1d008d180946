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
use crate::sysfs::{
    self, current_driver, GroupMember, PciAddr, ReadContext, RouteTable, SysRoot, VFIO_PCI,
};

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
    fn set_driver_override(
        &mut self,
        root: &SysRoot,
        dev: PciAddr,
        driver: Option<&str>,
    ) -> io::Result<()>;

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
    // sysfs attributes: open for writing without create or truncate, one write.
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

impl Kernel for SysfsKernel {
    fn set_driver_override(
        &mut self,
        root: &SysRoot,
        dev: PciAddr,
        driver: Option<&str>,
    ) -> io::Result<()> {
        // A lone newline clears the override (the kernel strips it and stores nothing).
        let value = driver.map_or_else(|| "\n".to_string(), |d| format!("{d}\n"));
        write_sysfs(&Step::SetOverride.path(root, dev, None), &value)
    }

    fn unbind(&mut self, root: &SysRoot, dev: PciAddr, driver: &str) -> io::Result<()> {
        write_sysfs(
            &Step::Unbind.path(root, dev, Some(driver)),
            &dev.to_string(),
        )
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
    let ctx = ReadContext {
        routes: RouteTable::read(root)?,
        ..ReadContext::default()
    };
    let d = sysfs::read_device(root, dev, &ctx)?;
    match d.in_use() {
        Some((iface, reason)) => Err(Error::InterfaceInUse {
            device: dev,
            iface: iface.name.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Binds `dev` to vfio-pci (see [`bind`]).
///
/// # Errors
/// As [`bind`].
pub fn bind_vfio(
    root: &SysRoot,
    kernel: &mut dyn Kernel,
    dev: PciAddr,
    force: bool,
) -> Result<BindOutcome, Error> {
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
        return Err(Error::NoSuchDevice {
            device: dev,
            path: dev_dir,
        });
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
        return Err(fail(
            kernel,
            Step::Verify,
            FailCause::WrongDriver { found: now },
        ));
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
fn rollback(
    root: &SysRoot,
    kernel: &mut dyn Kernel,
    dev: PciAddr,
    original: Option<&str>,
) -> Rollback {
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
        return Err(Error::NoSuchDevice {
            device: dev,
            path: dev_dir,
        });
    }
    let original = current_driver(root, dev);
    let fail = |step: Step, source: io::Error| Error::UnbindFailed {
        device: dev,
        step,
        path: step.path(root, dev, original.as_deref()),
        source,
        driver_now: current_driver(root, dev),
    };
    kernel
        .set_driver_override(root, dev, None)
        .map_err(|e| fail(Step::ClearOverride, e))?;
    if let Some(orig) = original.as_deref() {
        kernel
            .unbind(root, dev, orig)
            .map_err(|e| fail(Step::Unbind, e))?;
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
