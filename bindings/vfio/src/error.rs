//! Errors of the sysfs and devbind side. The VFIO ioctl side has its own,
//! [`crate::device::VfioError`].

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::devbind::Step;
use crate::sysfs::{GroupMember, PciAddr};

/// Errors from reading sysfs and from binding or unbinding a device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory that must exist could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A string is not a PCI address (`DDDD:BB:DD.F` or `BB:DD.F`) nor a known interface.
    #[error("{0:?} is not a PCI address (DDDD:BB:DD.F) or a network interface with a PCI device")]
    BadAddress(String),
    /// No such PCI device under `sys/bus/pci/devices`.
    #[error("{device}: no such PCI device ({path} missing)")]
    NoSuchDevice {
        /// The device asked for.
        device: PciAddr,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The target driver is not loaded, so nothing could take the device.
    #[error("{device}: driver {driver} is not loaded ({path} missing): modprobe {module}")]
    DriverNotLoaded {
        /// The device to bind.
        device: PciAddr,
        /// The driver asked for.
        driver: String,
        /// The driver's directory that is missing.
        path: PathBuf,
        /// The module to load (the driver name with `-` as `_`).
        module: String,
    },
    /// The device's interface is in use; binding it away would cut the machine off. Pass
    /// `force` to override.
    #[error("{device}: interface {iface} {reason}; not binding it (use force to override)")]
    InterfaceInUse {
        /// The device.
        device: PciAddr,
        /// Its kernel interface.
        iface: String,
        /// What makes it in use.
        reason: InUse,
    },
    /// A step of a bind failed; the device was rolled back (or not, as `rollback` says).
    #[error("{device}: binding to {driver} failed at step {step} ({path}): {cause}; {rollback}")]
    BindFailed {
        /// The device.
        device: PciAddr,
        /// The driver it was being bound to.
        driver: String,
        /// The step that failed.
        step: Step,
        /// The file that step writes or reads.
        path: PathBuf,
        /// Why it failed.
        cause: FailCause,
        /// What the rollback achieved (boxed to keep the error small).
        rollback: Box<Rollback>,
    },
    /// A step of an unbind failed (no rollback: the device is left as `driver_now` says).
    #[error("{device}: unbinding failed at step {step} ({path}): {source}; device is now on {}", driver_display(.driver_now))]
    UnbindFailed {
        /// The device.
        device: PciAddr,
        /// The step that failed.
        step: Step,
        /// The file that step writes.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
        /// The driver the device is bound to now.
        driver_now: Option<String>,
    },
    /// Some device of an IOMMU group is bound to a driver that VFIO does not accept, so the
    /// group (and every device in it) cannot be used through VFIO.
    #[error("IOMMU group {group} is not viable: {}", offenders_display(.offenders))]
    GroupNotViable {
        /// The group.
        group: u32,
        /// The devices bound to a driver other than vfio-pci, pci-stub or pcieport.
        offenders: Vec<GroupMember>,
    },
    /// The device has no IOMMU group (no IOMMU, and no-IOMMU mode not in use).
    #[error("{device}: no IOMMU group ({path} missing): enable the IOMMU (intel_iommu=on, amd_iommu=on, or iommu.passthrough=0 on arm64) or vfio's no-IOMMU mode")]
    NoIommuGroup {
        /// The device.
        device: PciAddr,
        /// The missing `iommu_group` link.
        path: PathBuf,
    },
}

fn driver_display(d: &Option<String>) -> String {
    d.clone().unwrap_or_else(|| "no driver".into())
}

fn offenders_display(o: &[GroupMember]) -> String {
    let list: Vec<String> = o.iter().map(|m| format!("{} (drv={})", m.addr, driver_display(&m.driver))).collect();
    format!("{} bound to a kernel driver; bind them to vfio-pci too", list.join(", "))
}

/// Why an interface is considered in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InUse {
    /// It carries a default route (IPv4 destination 0.0.0.0/0 or IPv6 ::/0).
    DefaultRoute,
    /// It is up and has routes.
    ActiveWithRoutes,
}

impl fmt::Display for InUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InUse::DefaultRoute => f.write_str("carries the default route"),
            InUse::ActiveWithRoutes => f.write_str("is up and has routes"),
        }
    }
}

/// Why a bind step failed.
#[derive(Debug)]
pub enum FailCause {
    /// Writing the sysfs file failed.
    Io(io::Error),
    /// After the probe, the device is bound to another driver (or none).
    WrongDriver {
        /// The driver found.
        found: Option<String>,
    },
}

impl fmt::Display for FailCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailCause::Io(e) => write!(f, "{e}"),
            FailCause::WrongDriver { found } => {
                write!(f, "device ended up on {}", driver_display(found))
            }
        }
    }
}

/// What the rollback after a failed bind achieved.
#[derive(Debug)]
pub enum Rollback {
    /// The device is back on its original driver (or on none, if it had none).
    Restored {
        /// The driver it is on now.
        driver: Option<String>,
    },
    /// The rollback failed too: the device needs a look by hand.
    Failed {
        /// The rollback step that failed.
        step: Step,
        /// What went wrong.
        cause: FailCause,
        /// The driver the device is on now.
        driver_now: Option<String>,
    },
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollback::Restored { driver } => {
                write!(f, "rolled back, device is on {}", driver_display(driver))
            }
            Rollback::Failed { step, cause, driver_now } => write!(
                f,
                "rollback failed too at step {step}: {cause}; device is now on {}",
                driver_display(driver_now)
            ),
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
