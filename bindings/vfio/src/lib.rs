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
//!   mappings (with MMIO accessors of every width), config-space access (capability list,
//!   bus mastering), DMA mappings (`VFIO_IOMMU_MAP_DMA`), unmapped on drop, and the IOVA
//!   ranges the IOMMU accepts.
//! - [`pci`]: the config-space header's registers and a capability-list walk over bytes.
//! - `testing` (feature `testing`, always in this crate's own tests): a realistic sysfs fixture
//!   and a simulated kernel that moves `driver` links the way the real one does.
//!
//! What `vnf-l2fwd devbind --status|--bind vfio-pci ADDR|--unbind ADDR [--force] [--json]`
//! needs:
//! ```no_run
//! use vfio::{devbind, status::Status, SysRoot};
//! let root = SysRoot::host();
//! let st = Status::read(&root)?;
//! print!("{}", st.to_text()); // or st.to_json()
//! let addr = root.resolve("ens1f0")?; // or "0000:18:00.0"
//! let out = devbind::bind_vfio(&root, &mut devbind::SysfsKernel, addr, false)?;
//! if !out.group_offenders.is_empty() {
//!     eprintln!("IOMMU group {:?} is not viable yet", out.iommu_group);
//! }
//! devbind::unbind(&root, &mut devbind::SysfsKernel, addr)?;
//! # Ok::<(), vfio::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod devbind;
pub mod device;
mod error;
pub mod pci;
pub mod status;
pub mod sysfs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, FailCause, InUse, Rollback};
pub use sysfs::{PciAddr, SysRoot};

#[cfg(test)]
mod tests {
    //! The flow the `vnf-l2fwd devbind` subcommand runs: resolve, bind, status, open, unbind.
    use super::*;
    use crate::testing::standard_fixture;

    #[test]
    fn devbind_flow_by_interface_name() {
        let dir = tempfile::tempdir().unwrap();
        let (root, mut kernel) = standard_fixture(dir.path()).unwrap();
        let addr = root.resolve("ens1f0v0").unwrap();
        assert_eq!(addr.to_string(), "0000:18:01.0");

        let out = devbind::bind_vfio(&root, &mut kernel, addr, false).unwrap();
        assert_eq!(out.driver.as_deref(), Some(sysfs::VFIO_PCI));
        let text = status::Status::read(&root).unwrap().to_text();
        let dpdk_section = text.split("\n\n").next().unwrap();
        assert!(
            dpdk_section.contains("0000:18:01.0 'Ethernet Adaptive Virtual Function 1889' drv=vfio-pci unused=iavf"),
            "{text}"
        );
        // Once bound, the interface is gone from sysfs on a real kernel; in the fixture it
        // stays, which the listing shows as is.

        // Opening it through VFIO fails clearly: no /dev/vfio here.
        let e = device::open_device(&root, addr).unwrap_err();
        assert!(matches!(e, device::VfioError::NotAvailable { .. }), "{e}");

        let out = devbind::unbind(&root, &mut kernel, addr).unwrap();
        assert_eq!(out.driver.as_deref(), Some("iavf"));
        // And came back with it.
        assert_eq!(root.resolve("ens1f0v0").unwrap(), addr);
    }
}
