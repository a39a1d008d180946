//! The `dpdk-devbind.py --status` listing, as text and as JSON.
//!
//! ```text
//! Network devices using DPDK-compatible driver
//! ============================================
//! 0000:18:01.1 'Ethernet Adaptive Virtual Function 1889' drv=vfio-pci unused=iavf numa=0 iommu_group=44 pf=0000:18:00.0
//!
//! Network devices using kernel driver
//! ===================================
//! 0000:3b:00.0 '82599ES 10-Gigabit SFI/SFP+ Network Connection 10fb' if=eno1 drv=ixgbe unused=vfio-pci numa=1 iommu_group=60 *Active*
//!
//! Other Network devices
//! =====================
//! 0000:af:00.0 'MT27800 Family [ConnectX-5] 1017' unused=mlx5_core,vfio-pci numa=1 iommu_group=70
//! ```
//! The fields after `unused=` are ours: NUMA node, IOMMU group, SR-IOV (`vfs=2/8` on a PF,
//! `pf=` on a VF).

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::Error;
use crate::sysfs::{self, IommuStatus, PciDevice, SysRoot};

/// Everything `--status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// IOMMU / VFIO availability.
    pub iommu: IommuStatus,
    /// The network devices, sorted by address.
    pub devices: Vec<PciDevice>,
}

impl Status {
    /// Reads the status from `root`.
    ///
    /// # Errors
    /// [`Error::Io`] when `sys/bus/pci/devices` cannot be read.
    pub fn read(root: &SysRoot) -> Result<Self, Error> {
        Ok(Status { iommu: sysfs::iommu_status(root), devices: sysfs::list_network_devices(root)? })
    }

    /// The text listing (see the module docs).
    pub fn to_text(&self) -> String {
        format_status(&self.devices, Some(&self.iommu))
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers to a String cannot fail; fall back
        // to an empty object rather than panic should serde_json ever say otherwise.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// One device's line, without a newline.
pub fn device_line(d: &PciDevice) -> String {
    let mut s = d.addr.to_string();
    let id = d.device.map_or_else(|| "????".to_string(), |i| format!("{i:04x}"));
    let name = d.name.unwrap_or("Device");
    let _ = write!(s, " '{name} {id}'");
    if !d.interfaces.is_empty() {
        let names: Vec<&str> = d.interfaces.iter().map(|i| i.name.as_str()).collect();
        let _ = write!(s, " if={}", names.join(","));
    }
    if let Some(drv) = &d.driver {
        let _ = write!(s, " drv={drv}");
    }
    if !d.unused.is_empty() {
        let _ = write!(s, " unused={}", d.unused.join(","));
    }
    if let Some(n) = d.numa_node {
        let _ = write!(s, " numa={n}");
    }
    if let Some(g) = d.iommu_group {
        let _ = write!(s, " iommu_group={g}");
    }
    if let Some(sr) = &d.sriov {
        let _ = write!(s, " vfs={}/{}", sr.num_vfs, sr.total_vfs);
    }
    if let Some(pf) = d.physfn {
        let _ = write!(s, " pf={pf}");
    }
    if d.in_use().is_some() {
        s.push_str(" *Active*");
    }
    s
}

fn section(out: &mut String, title: &str, devs: &[&PciDevice]) {
    let _ = writeln!(out, "\n{title}\n{}", "=".repeat(title.len()));
    if devs.is_empty() {
        out.push_str("<none>\n");
    }
    for d in devs {
        out.push_str(&device_line(d));
        out.push('\n');
    }
}

/// The `--status` text for these devices; with `iommu`, a closing line on IOMMU mode.
pub fn format_status(devices: &[PciDevice], iommu: Option<&IommuStatus>) -> String {
    let (dpdk, rest): (Vec<&PciDevice>, Vec<&PciDevice>) = devices.iter().partition(|d| d.on_dpdk_driver());
    let (kernel, other): (Vec<&PciDevice>, Vec<&PciDevice>) = rest.into_iter().partition(|d| d.driver.is_some());
    let mut out = String::new();
    section(&mut out, "Network devices using DPDK-compatible driver", &dpdk);
    section(&mut out, "Network devices using kernel driver", &kernel);
    section(&mut out, "Other Network devices", &other);
    if let Some(st) = iommu {
        let mode = match st.mode {
            sysfs::IommuMode::Iommu => format!("IOMMU on ({} groups)", st.iommu_groups),
            sysfs::IommuMode::NoIommu => "no IOMMU, vfio unsafe no-IOMMU mode on".to_string(),
            sysfs::IommuMode::Unavailable => "no IOMMU and no-IOMMU mode off: VFIO unusable".to_string(),
        };
        let _ = writeln!(
            out,
            "\nVFIO: {mode}; vfio-pci {}; /dev/vfio/vfio {}",
            if st.vfio_pci_loaded { "loaded" } else { "not loaded" },
            if st.dev_vfio { "present" } else { "absent" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::standard_fixture;

    fn status() -> (tempfile::TempDir, Status) {
        let dir = tempfile::tempdir().unwrap();
        let (root, _) = standard_fixture(dir.path()).unwrap();
        let st = Status::read(&root).unwrap();
        (dir, st)
    }

    #[test]
    fn text_listing_like_dpdk_devbind() {
        let (_d, st) = status();
        let text = st.to_text();
        let expected = "
Network devices using DPDK-compatible driver
============================================
0000:18:01.1 'Ethernet Adaptive Virtual Function 1889' drv=vfio-pci unused=iavf numa=0 iommu_group=44 pf=0000:18:00.0
0000:5e:00.0 'Ethernet Controller X710 for 10GbE SFP+ 1572' drv=vfio-pci unused=i40e numa=1 iommu_group=42

Network devices using kernel driver
===================================
0000:00:03.0 'Virtio 1.0 network device 1041' if=eth1 drv=virtio-pci unused=vfio-pci *Active*
0000:18:00.0 'Ethernet Controller E810-C for QSFP 1592' if=ens1f0 drv=ice unused=vfio-pci numa=0 iommu_group=40 vfs=2/8
0000:18:01.0 'Ethernet Adaptive Virtual Function 1889' if=ens1f0v0 drv=iavf unused=vfio-pci numa=0 iommu_group=41 pf=0000:18:00.0
0000:3b:00.0 '82599ES 10-Gigabit SFI/SFP+ Network Connection 10fb' if=eno1 drv=ixgbe unused=vfio-pci numa=1 iommu_group=60 *Active*
0000:5e:00.1 'Ethernet Controller X710 for 10GbE SFP+ 1572' if=ens2f1 drv=i40e unused=vfio-pci numa=1 iommu_group=42

Other Network devices
=====================
0000:af:00.0 'MT27800 Family [ConnectX-5] 1017' unused=mlx5_core,vfio-pci numa=1 iommu_group=70

VFIO: IOMMU on (7 groups); vfio-pci loaded; /dev/vfio/vfio absent
";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_sections_say_none_and_unknown_devices_get_ids() {
        let mut d = {
            let (_d, st) = status();
            st.devices[0].clone()
        };
        d.name = None;
        d.device = None;
        d.driver = None;
        d.unused.clear();
        d.interfaces.clear();
        d.numa_node = None;
        d.iommu_group = None;
        d.sriov = None;
        let text = format_status(&[d], None);
        assert_eq!(
            text,
            "\nNetwork devices using DPDK-compatible driver\n\
             ============================================\n<none>\n\
             \nNetwork devices using kernel driver\n\
             ===================================\n<none>\n\
             \nOther Network devices\n=====================\n\
             0000:00:03.0 'Device ????'\n"
        );
    }

    #[test]
    fn json_form() {
        let (_d, st) = status();
        let v: serde_json::Value = serde_json::from_str(&st.to_json()).unwrap();
        assert_eq!(v["iommu"]["mode"], "iommu");
        assert_eq!(v["iommu"]["vfio_pci_loaded"], true);
        let devs = v["devices"].as_array().unwrap();
        assert_eq!(devs.len(), 8);
        assert_eq!(devs[0]["interfaces"][0]["name"], "eth1");
        assert!(devs[0]["numa_node"].is_null());
        let pf = &devs[1];
        assert_eq!(pf["addr"], "0000:18:00.0");
        assert_eq!(pf["vendor"], 0x8086);
        assert_eq!(pf["device"], 0x1592);
        assert_eq!(pf["driver"], "ice");
        assert_eq!(pf["interfaces"][0]["name"], "ens1f0");
        assert_eq!(pf["numa_node"], 0);
        assert_eq!(pf["iommu_group"], 40);
        assert_eq!(pf["sriov"]["num_vfs"], 2);
        assert_eq!(pf["sriov"]["total_vfs"], 8);
        assert_eq!(pf["sriov"]["vfs"][1], "0000:18:01.1");
        assert_eq!(devs[2]["physfn"], "0000:18:00.0");
        assert_eq!(devs[4]["interfaces"][0]["default_route"], true);
        assert!(devs[7]["driver"].is_null());
    }
}
