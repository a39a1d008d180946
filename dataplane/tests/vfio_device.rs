//! The VFIO layer (`bindings/vfio`) on a real PCI device: container, group, device, config
//! space, BAR mapping, and DMA mapping of a mempool's whole region.
//!
//! These tests need a device bound to vfio-pci behind an IOMMU, which only the emulated guests
//! of `ci/vm-test` have (scenario `vfio-open`), so they are `#[ignore]`d in a normal
//! `cargo test`; the scenario runs this binary with `--ignored` and names the devices:
//! - `VFIO_TEST_DEVICE`: an Intel 82576 (igb) PF on vfio-pci, alone in its IOMMU group;
//! - `VFIO_TEST_NONVIABLE`: a device on vfio-pci whose IOMMU group has another device still
//!   on a kernel driver.
//!
//! Without the variable a test fails and says what it needs: running them by hand without a
//! device is a mistake, not a skip.

use dataplane::mbuf::{Mempool, MempoolConfig};
use std::fs;
use vfio::device::{open_device, Container, IommuType, VfioError};
use vfio::{PciAddr, SysRoot};

fn device_from(var: &str) -> PciAddr {
    let v = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} must name a PCI device bound to vfio-pci (these tests run in ci/vm-test's guests)")
    });
    v.parse().unwrap_or_else(|e| panic!("{var}={v}: {e}"))
}

fn sysfs_config(addr: PciAddr) -> Vec<u8> {
    fs::read(format!("/sys/bus/pci/devices/{addr}/config")).expect("read the device's sysfs config")
}

#[test]
#[ignore = "needs a device on vfio-pci: run by ci/vm-test (scenario vfio-open)"]
fn group_is_viable_and_the_device_opens() {
    let addr = device_from("VFIO_TEST_DEVICE");
    let root = SysRoot::host();
    let d = open_device(&root, addr).expect("open the device through VFIO");
    let group = vfio::sysfs::device_iommu_group(&root, addr).unwrap();
    assert_eq!(d.group.id(), group);
    assert!(!d.group.is_noiommu(), "an IOMMU group, not a no-IOMMU one");
    assert_eq!(d.container.iommu_type(), Some(IommuType::Type1v2));
    assert!(d.device.info().is_pci());
    assert!(d.device.info().num_regions > vfio::device::CONFIG_REGION, "{:?}", d.device.info());
    assert_eq!(d.device.addr(), addr);
}

#[test]
#[ignore = "needs a device on vfio-pci: run by ci/vm-test (scenario vfio-open)"]
fn config_space_read_through_vfio_matches_sysfs() {
    let addr = device_from("VFIO_TEST_DEVICE");
    let d = open_device(&SysRoot::host(), addr).unwrap();
    let mut via_vfio = [0u8; 64];
    d.device.read_config(0, &mut via_vfio).unwrap();
    let sys = sysfs_config(addr);
    // The type-0 header: IDs, revision and class, header type, subsystem and the BARs are the
    // device's own in both views. (vfio virtualises the command/status word and the interrupt
    // line, so those bytes are not compared.)
    for (range, what) in [
        (0x00..0x04, "vendor and device id"),
        (0x08..0x0c, "revision and class"),
        (0x0e..0x0f, "header type"),
        (0x10..0x28, "BARs"),
        (0x2c..0x30, "subsystem ids"),
        (0x3d..0x3e, "interrupt pin"),
    ] {
        assert_eq!(
            via_vfio[range.clone()],
            sys[range.clone()],
            "{what} ({range:x?}) differ: vfio {via_vfio:02x?} sysfs {:02x?}",
            &sys[..64]
        );
    }
    assert_eq!(u16::from_le_bytes([via_vfio[0], via_vfio[1]]), 0x8086);
    // Past the end of config space is an error, not a short read.
    let info = d.device.region_info(vfio::device::CONFIG_REGION).unwrap();
    let mut b = [0u8; 4];
    assert!(matches!(d.device.read_config(info.size - 2, &mut b), Err(VfioError::Region { .. })));
}

/// LEDCTL (offset 0xE00) of the 82576: its documented power-on value is 0x07068302 (LED0
/// link/activity, LED1 and LED2 as the datasheet's default modes). vfio-pci resets the device
/// (function-level reset) when it is opened, so the value read is the reset value.
const LEDCTL: usize = 0x0e00;
const LEDCTL_RESET: u32 = 0x0706_8302;
/// STATUS (offset 0x8) bit 1: function id 0 of a single-port device reads 0.
const STATUS: usize = 0x0008;

#[test]
#[ignore = "needs a device on vfio-pci: run by ci/vm-test (scenario vfio-open)"]
fn bar0_maps_and_a_register_reads_its_reset_value() {
    let addr = device_from("VFIO_TEST_DEVICE");
    let d = open_device(&SysRoot::host(), addr).unwrap();
    let bars = d.device.bars().unwrap();
    let bar0 = bars.iter().find(|b| b.index == 0).expect("BAR0 is implemented");
    assert!(bar0.mmappable() && bar0.readable() && bar0.writable(), "{bar0:?}");
    assert_eq!(bar0.size, 128 * 1024, "the 82576's BAR0 is 128 KiB");
    let map = d.device.map_region(0).expect("mmap BAR0");
    assert_eq!(map.len(), 128 * 1024);
    assert_eq!(map.read32(LEDCTL), Some(LEDCTL_RESET), "LEDCTL after the reset vfio-pci did at open");
    assert_eq!(map.read32(STATUS).map(|s| s & 0b1100), Some(0), "STATUS function id");
    // Out of range or unaligned accesses are refused, not performed.
    assert_eq!(map.read32(map.len()), None);
    assert_eq!(map.read32(LEDCTL + 1), None);
    // A write reaches the device: LEDCTL is read/write.
    assert!(map.write32(LEDCTL, LEDCTL_RESET ^ 0x8000));
    assert_eq!(map.read32(LEDCTL), Some(LEDCTL_RESET ^ 0x8000));
    assert!(map.write32(LEDCTL, LEDCTL_RESET));
}

#[test]
#[ignore = "needs a device on vfio-pci: run by ci/vm-test (scenario vfio-open)"]
fn the_whole_mempool_region_is_dma_mapped_and_unmapped() {
    let addr = device_from("VFIO_TEST_DEVICE");
    let d = open_device(&SysRoot::host(), addr).unwrap();
    let pool = Mempool::new(MempoolConfig::new("vfio-dma", 4096)).expect("mempool");
    let region = pool.region();
    println!(
        "mempool region: {} bytes, page size {}, hugepages {}",
        region.len(),
        region.page_size(),
        region.is_hugepages()
    );
    let iova = 1u64 << 32;
    // SAFETY: the region is the pool's mapping, which outlives the DMA mapping (dropped or
    // unmapped below, before the pool); the device is idle after its reset at open.
    let map = unsafe { d.container.map_dma(region.base(), region.len(), iova) }.expect("VFIO_IOMMU_MAP_DMA");
    assert_eq!((map.iova(), map.len()), (iova, region.len()));
    // The IOMMU tracks the mapping: the same IOVA range cannot be mapped twice.
    // SAFETY: as above; this mapping is refused by the kernel.
    let again = unsafe { d.container.map_dma(region.base(), region.len(), iova) };
    match again {
        Err(VfioError::Ioctl { op: "VFIO_IOMMU_MAP_DMA", source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EEXIST), "{source}")
        }
        other => panic!("a second mapping of the same IOVA range: {other:?}"),
    }
    map.unmap().expect("VFIO_IOMMU_UNMAP_DMA");
    // Unmapped, so the range can be mapped again, and dropping unmaps it.
    // SAFETY: as above.
    let remap = unsafe { d.container.map_dma(region.base(), region.len(), iova) }.expect("map again after unmap");
    drop(remap);
}

#[test]
#[ignore = "needs a device on vfio-pci: run by ci/vm-test (scenario vfio-open)"]
fn a_group_that_is_not_viable_is_a_clear_error() {
    let addr = device_from("VFIO_TEST_NONVIABLE");
    let root = SysRoot::host();
    let group = vfio::sysfs::device_iommu_group(&root, addr).unwrap();
    let e = open_device(&root, addr).expect_err("a group with a device on a kernel driver");
    match &e {
        VfioError::GroupNotViable { group: g } => assert_eq!(*g, group),
        other => panic!("expected GroupNotViable, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&format!("IOMMU group {group} is not viable")), "{msg}");
    assert!(msg.contains("bind every device of the group to vfio-pci"), "{msg}");
    // The container itself is fine; only the group is refused.
    let mut c = Container::open().unwrap();
    assert!(matches!(c.open_group(&root, group), Err(VfioError::GroupNotViable { .. })));
}
