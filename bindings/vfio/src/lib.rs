//! `vfio`: what `dpdk-devbind.py` does, in Rust, plus opening a PCI device through Linux VFIO.
//!
//! - [`sysfs`]: the kernel's view of PCI network devices, read from a [`SysRoot`] (`/` in
//!   production, a directory tree in tests): addresses, ids, drivers, interfaces, NUMA node,
//!   IOMMU group, SR-IOV relations, routes, IOMMU and no-IOMMU status.
//! - [`devbind`]: binding a device to `vfio-pci` (or another driver) and back, with a
//!   default-route guard, a rollback on failure, and IOMMU group viability checks. Every write
//!   to the kernel goes through the [`devbind::Kernel`] trait.
//! - [`status`]: the `dpdk-devbind.py --status` listing, as text and as JSON.
//! - [`device`]: the VFIO container / group / device file descriptors, BAR regions and their
//!   mappings, and DMA mappings (`VFIO_IOMMU_MAP_DMA`), unmapped on drop.
//! - `testing` (feature `testing`, always in this crate's own tests): a realistic sysfs fixture
//!   and a simulated kernel that moves `driver` links the way the real one does.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod devbind;
pub mod device;
mod error;
pub mod status;
pub mod sysfs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, FailCause, Rollback};
pub use sysfs::{PciAddr, SysRoot};
