//! `node-features` against fixture /proc and /sys trees of an Arm Neoverse-N1 node and an
//! x86 node, and for real on this machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use vfio::testing::{build_tree, FixtureDevice};
use vnf_l2fwd::node_features::{NodeFeatures, NFD_PREFIX};

/// The VNF binary as a command; under a cross-test runner (qemu-user, set as cargo's
/// `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER`) through that runner, as cargo runs tests.
fn vnf() -> Command {
    let bin = env!("CARGO_BIN_EXE_vnf-l2fwd");
    let runner = cfg!(target_arch = "aarch64")
        .then(|| std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER").ok())
        .flatten();
    match runner.as_deref().map(|r| r.split_whitespace().collect::<Vec<_>>()) {
        Some(parts) if !parts.is_empty() => {
            let mut c = Command::new(parts[0]);
            c.args(&parts[1..]).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

fn hugepages(dir: &Path, pools: &[(u64, u64, u64)]) {
    for (size, nr, free) in pools {
        write(&dir.join(format!("hugepages-{size}kB/nr_hugepages")), &format!("{nr}\n"));
        write(&dir.join(format!("hugepages-{size}kB/free_hugepages")), &format!("{free}\n"));
    }
}

/// An Ampere Altra-like node: 80 Neoverse-N1 cores in two NUMA nodes, a
/// ConnectX-6 Dx PF with 4 of 8 VFs (2 on vfio-pci, 2 on mlx5_core), IOMMU on, vfio-pci
/// loaded, 1Gi and 2Mi hugepages, Linux 5.15.
fn neoverse_root(dir: &Path) -> PathBuf {
    let root = dir.join("arm");
    let pf = "pci000c:00/000c:00:01.0/000c:01:00.0";
    let vf = |a: &str| FixtureDevice::new(a, &format!("pci000c:00/000c:00:01.0/{a}"), 0x020000, 0x15b3, 0x101e);
    let mut pfd = FixtureDevice::new("000c:01:00.0", pf, 0x020000, 0x15b3, 0x101d)
        .driver("mlx5_core")
        .iface("enP12p1s0f0np0", true)
        .numa(0)
        .group(10);
    pfd.sriov = Some((8, 4));
    pfd.vfs =
        ["000c:01:00.2", "000c:01:00.3", "000c:01:00.4", "000c:01:00.5"].iter().map(|a| a.parse().unwrap()).collect();
    let devices = vec![
        pfd,
        vf("000c:01:00.2").driver("vfio-pci").group(11),
        vf("000c:01:00.3").driver("vfio-pci").group(12),
        vf("000c:01:00.4").driver("mlx5_core").group(13),
        vf("000c:01:00.5").driver("mlx5_core").group(14),
    ];
    build_tree(&root, &devices, &["mlx5_core", "vfio-pci"], "", "").unwrap();
    let mut cpuinfo = String::new();
    for i in 0..80 {
        cpuinfo += &format!(
            "processor\t: {i}\nBogoMIPS\t: 50.00\n\
             Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\n\
             CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
        );
    }
    write(&root.join("proc/cpuinfo"), &cpuinfo);
    write(&root.join("proc/sys/kernel/osrelease"), "5.15.0-1019-aws\n");
    write(&root.join("sys/devices/system/cpu/online"), "0-79\n");
    write(&root.join("sys/devices/system/node/node0/cpulist"), "0-39\n");
    write(&root.join("sys/devices/system/node/node1/cpulist"), "40-79\n");
    hugepages(&root.join("sys/devices/system/node/node0/hugepages"), &[(2048, 512, 500), (1048576, 4, 2)]);
    hugepages(&root.join("sys/devices/system/node/node1/hugepages"), &[(2048, 512, 512), (1048576, 4, 2)]);
    hugepages(&root.join("sys/kernel/mm/hugepages"), &[(2048, 1024, 1012), (1048576, 8, 4)]);
    root
}

/// An x86 node: Xeon with AVX-512, no IOMMU but no-IOMMU mode on, vfio-pci only as a module,
/// no SR-IOV, Linux 5.4 (too old for our AF_XDP), no NUMA directory.
fn x86_root(dir: &Path) -> PathBuf {
    let root = dir.join("x86");
    let nic = FixtureDevice::new("0000:3b:00.0", "pci0000:3a/0000:3a:00.0/0000:3b:00.0", 0x020000, 0x8086, 0x10fb)
        .driver("ixgbe")
        .iface("eno1", true);
    // Devices our native drivers support: a modern virtio-net on virtio-pci and an 82576 VF
    // on no driver (node-features reads their config headers).
    let virtio = FixtureDevice::new("0000:00:03.0", "pci0000:00/0000:00:03.0", 0x020000, 0x1af4, 0x1041)
        .driver("virtio-pci")
        .iface("eth0", true);
    let vf = FixtureDevice::new("0000:3b:10.0", "pci0000:3a/0000:3a:00.0/0000:3b:10.0", 0x020000, 0x8086, 0x10ca);
    build_tree(&root, &[nic, virtio, vf], &["ixgbe", "virtio-pci"], "", "").unwrap();
    for (addr, vendor, device) in
        [("0000:3b:00.0", 0x8086u16, 0x10fbu16), ("0000:00:03.0", 0x1af4, 0x1041), ("0000:3b:10.0", 0x8086, 0x10ca)]
    {
        let mut hdr = [0u8; 64];
        hdr[0..2].copy_from_slice(&vendor.to_le_bytes());
        hdr[2..4].copy_from_slice(&device.to_le_bytes());
        hdr[0x0b] = 0x02; // class: network
        fs::write(root.join("sys/bus/pci/devices").join(addr).join("config"), hdr).unwrap();
    }
    write(
        &root.join("proc/cpuinfo"),
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\n\
         model name\t: Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz\n\
         flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 aes pclmulqdq avx avx2 avx512f avx512bw avx512vl sha_ni gfni\n\n\
         processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu\n",
    );
    write(&root.join("proc/sys/kernel/osrelease"), "5.4.0-150-generic\n");
    write(&root.join("sys/module/vfio/parameters/enable_unsafe_noiommu_mode"), "Y\n");
    write(
        &root.join("lib/modules/5.4.0-150-generic/modules.dep"),
        "kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/vfio.ko\nkernel/drivers/vfio/vfio.ko:\n",
    );
    hugepages(&root.join("sys/kernel/mm/hugepages"), &[(2048, 0, 0)]);
    root
}

#[test]
fn neoverse_node() {
    let dir = tempfile::tempdir().unwrap();
    let f = NodeFeatures::read(&neoverse_root(dir.path()));
    assert_eq!((f.cpu.arch.as_str(), f.cpu.vendor.as_str(), f.cpu.model.as_str()), ("aarch64", "Arm", "Neoverse-N1"));
    assert_eq!((f.cpu.implementer, f.cpu.part), (Some(0x41), Some(0xd0c)));
    for e in ["neon", "crc32", "aes", "pmull", "sha1", "sha2", "atomics"] {
        assert!(f.extensions[e], "{e}");
    }
    assert!(!f.extensions["sve"] && !f.extensions["sve2"]);
    assert_eq!(f.cpus_online, 80);
    assert_eq!(f.numa_nodes.len(), 2);
    assert_eq!(f.numa_nodes[1].cpus, (40..80).collect::<Vec<_>>());
    assert_eq!(f.numa_nodes[0].hugepages[0].free, 500);
    assert_eq!(f.iommu.mode, vfio::sysfs::IommuMode::Iommu);
    assert!(f.vfio_pci.loaded);
    assert_eq!(f.sriov.len(), 1);
    let n = &f.sriov[0];
    assert_eq!((n.pf.to_string().as_str(), n.total_vfs, n.num_vfs), ("000c:01:00.0", 8, 4));
    assert_eq!(n.driver.as_deref(), Some("mlx5_core"));
    assert_eq!(n.vf_drivers.get("vfio-pci"), Some(&2));
    assert_eq!(n.vf_drivers.get("mlx5_core"), Some(&2));
    assert!(f.af_xdp.available, "{}", f.af_xdp.how);

    let nfd = f.to_nfd();
    for line in [
        "arch=arm64",
        "neon=true",
        "sve=false",
        "crc32=true",
        "cpu-implementer=0x41",
        "cpu-part=0xd0c",
        "cpu-model=neoverse-n1",
        "hugepages-1Gi-free=4",
        "hugepages-1Gi-total=8",
        "hugepages-2Mi-free=1012",
        "sriov-vfs=4",
        "sriov-vfs-total=8",
        "iommu=true",
        "vfio-pci=true",
        "af-xdp=true",
        "numa-nodes=2",
        "cpus=80",
    ] {
        assert!(nfd.lines().any(|l| l == format!("{NFD_PREFIX}{line}")), "{line} missing from\n{nfd}");
    }
    // Every label line is a valid NFD feature-file line with a valid label name and value.
    for l in nfd.lines().filter(|l| !l.starts_with('#')) {
        let (k, v) = l.split_once('=').unwrap();
        let name = k.strip_prefix(NFD_PREFIX).unwrap();
        assert!(name.len() <= 63 && v.len() <= 63, "{l}");
        let ok = |s: &str| s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
        assert!(ok(name) && ok(v) && !v.starts_with('-') && !v.ends_with('-'), "{l}");
    }
    let table = f.to_table();
    assert!(table.contains("Arm Neoverse-N1 (implementer 0x41, part 0xd0c)"), "{table}");
    assert!(table.contains("vfs 4/8 [2xmlx5_core 2xvfio-pci]"), "{table}");
    let js: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
    assert_eq!(js["sriov"][0]["pf"], "000c:01:00.0");
    assert_eq!(js["cpu"]["part"], 0xd0c);
}

#[test]
fn x86_node() {
    let dir = tempfile::tempdir().unwrap();
    let f = NodeFeatures::read(&x86_root(dir.path()));
    assert_eq!((f.cpu.arch.as_str(), f.cpu.vendor.as_str()), ("x86_64", "GenuineIntel"));
    assert_eq!(f.cpu.model, "Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz");
    for e in ["sse4_2", "crc32", "avx2", "avx512f", "aes", "sha_ni"] {
        assert!(f.extensions[e], "{e}");
    }
    assert!(!f.extensions.contains_key("neon"));
    assert_eq!(f.cpus_online, 2, "no cpu/online: the processors in cpuinfo");
    assert!(f.numa_nodes.is_empty());
    assert_eq!(f.iommu.mode, vfio::sysfs::IommuMode::NoIommu);
    assert_eq!((f.vfio_pci.loaded, f.vfio_pci.module_available), (false, true));
    assert!(f.sriov.is_empty());
    let native: Vec<(String, &str, Option<&str>)> =
        f.native_pci.iter().map(|d| (d.addr.to_string(), d.native_driver.as_str(), d.bound_to.as_deref())).collect();
    assert_eq!(
        native,
        [("0000:00:03.0".into(), "virtio-net", Some("virtio-pci")), ("0000:3b:10.0".into(), "igbvf", None)]
    );
    assert!(!f.af_xdp.available);
    assert!(f.af_xdp.how.contains("5.4.0-150-generic < 5.9"), "{}", f.af_xdp.how);
    let labels = f.labels();
    assert_eq!(labels["arch"], "amd64");
    assert_eq!(labels["cpu-model"], "intel-r-xeon-r-gold-6338n-cpu-2.20ghz");
    assert_eq!(labels["vfio-noiommu"], "true");
    assert_eq!(labels["iommu"], "false");
    assert_eq!(labels["vfio-pci"], "true");
    assert_eq!(labels["sriov"], "false");
    assert_eq!(labels["numa-nodes"], "1");
    assert_eq!(labels["af-xdp"], "false");
    assert_eq!(labels["native-pci-devices"], "2");
    assert_eq!((labels["native-pci-virtio-net"].as_str(), labels["native-pci-igbvf"].as_str()), ("1", "1"));
    assert_eq!(labels["native-pci-igb"], "0");
    assert!(!labels.contains_key("hugepages-1Gi-free"));
}

#[test]
fn empty_root_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let f = NodeFeatures::read(dir.path());
    assert_eq!(f.cpu.arch, "unknown");
    assert!(f.notes.iter().any(|n| n.contains("proc/cpuinfo")), "{:?}", f.notes);
    assert!(f.notes.iter().any(|n| n.contains("PCI devices not readable")), "{:?}", f.notes);
    assert!(!f.af_xdp.available);
    assert!(f.to_table().contains("architecture       unknown"));
}

#[test]
fn this_machine() {
    let mut node_arch = None;
    for fmt in ["table", "json", "nfd"] {
        let out = vnf().args(["node-features", "--format", fmt]).output().unwrap();
        assert!(out.status.success(), "{fmt}: {}", String::from_utf8_lossy(&out.stderr));
        let s = String::from_utf8(out.stdout).unwrap();
        match fmt {
            "json" => {
                let js: serde_json::Value = serde_json::from_str(&s).unwrap();
                // The node's architecture as /proc/cpuinfo tells it: the build's, except
                // under user-mode emulation (qemu-aarch64 on x86 shows the host's cpuinfo).
                let arch = js["cpu"]["arch"].as_str().unwrap().to_string();
                assert!(["x86_64", "aarch64"].contains(&arch.as_str()), "{arch}");
                assert!(js["cpus_online"].as_u64().unwrap() >= 1);
                node_arch = Some(if arch == "aarch64" { "arm64" } else { "amd64" });
            }
            "nfd" => {
                let arch = node_arch.expect("json ran first");
                assert!(s.contains(&format!("{NFD_PREFIX}arch={arch}\n")), "{s}");
            }
            _ => assert!(s.starts_with("architecture"), "{s}"),
        }
    }
}

/// `--root` that is not a node's root printed `arch=unknown` and exited 0, so a DaemonSet with
/// a wrong mount labelled the node wrongly instead of failing.
#[test]
fn root_that_is_not_a_node_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for root in [dir.path().join("nonexistent"), dir.path().to_path_buf()] {
        let out = vnf().args(["node-features", "--root"]).arg(&root).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", root.display());
        assert!(err.contains("--root") && err.contains(&root.display().to_string()), "{err}");
        assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // A fixture root with proc/cpuinfo is fine.
    let root = x86_root(dir.path());
    let out = vnf().args(["node-features", "--root"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
