//! `discover` against pod fixtures: the downward API annotations files under
//! `tests/fixtures/discover/` are in the kubelet's exact format (sorted `key="value"` lines,
//! Go `%q` quoting, no final newline) with Multus' indented network-status JSON and NPWG
//! device-info 1.1; the sysfs/procfs trees are built here with `vfio::testing`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use vfio::testing::{build_tree, FixtureDevice};
use vnf_l2fwd::discover::{discover_with, go_unquote, parse_downward_map, DiscoverError, NETWORK_STATUS_ANNOTATION};
use vnf_l2fwd::node_features::AfXdpSupport;

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

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/discover").join(name)
}

fn xdp(available: bool) -> AfXdpSupport {
    AfXdpSupport { available, how: if available { "test: yes" } else { "test: no" }.into() }
}

fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn write(p: &Path, s: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

/// A pod's view: one E810 PF with four VFs, two on iavf with net1/net2 in the pod
/// (netdevice mode), two on vfio-pci; cgroup v2 cpuset 2-5 inside affinity 0-7; a 1Gi
/// hugetlbfs emptyDir; node pools.
fn pod_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let pf = "pci0000:17/0000:17:00.0/0000:18:00.0";
    let vf =
        |addr: &str| FixtureDevice::new(addr, &format!("pci0000:17/0000:17:00.0/{addr}"), 0x020000, 0x8086, 0x1889);
    let mut pfd = FixtureDevice::new("0000:18:00.0", pf, 0x020000, 0x8086, 0x1592).driver("ice").numa(0);
    pfd.sriov = Some((64, 4));
    pfd.vfs =
        ["0000:18:02.2", "0000:18:02.3", "0000:18:02.5", "0000:18:02.6"].iter().map(|a| a.parse().unwrap()).collect();
    let devices = vec![
        pfd,
        vf("0000:18:02.2").driver("iavf").iface("net1", true),
        vf("0000:18:02.3").driver("iavf").iface("net2", true),
        vf("0000:18:02.5").driver("vfio-pci").native("iavf").group(101),
        vf("0000:18:02.6").driver("vfio-pci").native("iavf").group(102),
        vf("0000:18:03.1").driver("vfio-pci").native("iavf").group(103),
    ];
    build_tree(&root, &devices, &["ice", "iavf", "vfio-pci"], "", "").unwrap();
    write(&root.join("sys/fs/cgroup/cpuset.cpus.effective"), "2-5\n");
    write(&root.join("proc/self/status"), "Name:\tvnf-l2fwd\nCpus_allowed:\tff\nCpus_allowed_list:\t0-7\n");
    write(
        &root.join("proc/mounts"),
        "overlay / overlay rw,relatime 0 0\nnodev /hugepages hugetlbfs rw,relatime,pagesize=1024M 0 0\n\
         tmpfs /etc/podnetinfo tmpfs ro 0 0\n",
    );
    for (size, nr, free) in [("2048", "512", "512"), ("1048576", "8", "4")] {
        write(&root.join(format!("sys/kernel/mm/hugepages/hugepages-{size}kB/nr_hugepages")), nr);
        write(&root.join(format!("sys/kernel/mm/hugepages/hugepages-{size}kB/free_hugepages")), free);
    }
    root
}

/// The podnetinfo directory: the annotations fixture plus downward API hugepage files.
fn podnetinfo(dir: &Path, annotations: &str) -> PathBuf {
    let d = dir.join("podnetinfo");
    fs::create_dir_all(&d).unwrap();
    fs::copy(fixture(annotations), d.join("annotations")).unwrap();
    write(&d.join("hugepages_1G_request_vnf"), "2048");
    write(&d.join("hugepages_1G_limit_vnf"), "2048");
    d.join("annotations")
}

#[test]
fn annotations_file_is_the_kubelet_format() {
    let text = fs::read_to_string(fixture("netdevice.annotations")).unwrap();
    assert!(!text.ends_with('\n'), "the kubelet writes no final newline");
    let m = parse_downward_map(Path::new("a"), &text).unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m["kubernetes.io/config.source"], "api");
    let ns = &m[NETWORK_STATUS_ANNOTATION];
    assert!(ns.starts_with("[\n    {\n        \"name\": \"k8s-pod-network\""), "{ns}");
    // Go %q escapes: quote, backslash, newline, and \u/\x for what is not printable.
    assert_eq!(go_unquote(r#""{\"a\":\"b\\\\c\"}\n\x01\u2028""#).unwrap(), "{\"a\":\"b\\\\c\"}\n\u{1}\u{2028}");
}

#[test]
fn netdevice_pod_gives_kernel_ports() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "netdevice.annotations");
    // The device plugin also exports the VFs; they are the same devices, not new ports.
    let e = env(&[("PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE", "0000:18:02.2,0000:18:02.3"), ("HOME", "/")]);
    let d = discover_with(&root, &e, &ann, xdp(true)).unwrap();
    assert_eq!(d.port_specs(), vec!["af_xdp:net1", "af_xdp:net2"]);
    assert_eq!(d.ports[0].source, "network-status[1] (vnf/sriov-net-a)");
    assert_eq!(d.ports[0].pci.unwrap().to_string(), "0000:18:02.2");
    assert!(d.ports[0].reason.contains("kernel driver iavf"), "{}", d.ports[0].reason);
    assert_eq!(d.skipped.len(), 1);
    assert!(d.skipped[0].contains("eth0") && d.skipped[0].contains("default"), "{:?}", d.skipped);

    let d = discover_with(&root, &e, &ann, xdp(false)).unwrap();
    assert_eq!(d.port_specs(), vec!["af_packet:net1", "af_packet:net2"]);
    assert!(d.ports[1].reason.contains("AF_PACKET instead"), "{}", d.ports[1].reason);
}

#[test]
fn kernel_interfaces_without_device_info() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "macvlan.annotations");
    let d = discover_with(&root, &[], &ann, xdp(true)).unwrap();
    assert_eq!(d.port_specs(), vec!["af_xdp:net1", "af_xdp:net2"]);
    assert!(d.ports.iter().all(|p| p.pci.is_none() && p.reason.starts_with("kernel interface (no device-info)")));
    assert_eq!(d.command(), "vnf-l2fwd l2fwd --port af_xdp:net1 --port af_xdp:net2 --cpu 3");
}

#[test]
fn vfio_pod_gives_dpdk_ports_cpus_and_hugepages() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "vfio.annotations");
    let info = r#"{"0000:18:02.5":{"generic":{"deviceID":"0000:18:02.5"},"vfio":{"dev-mount":"/dev/vfio/101","mount":"/dev/vfio/vfio"}},"0000:18:02.6":{"generic":{"deviceID":"0000:18:02.6"},"vfio":{"dev-mount":"/dev/vfio/102","mount":"/dev/vfio/vfio"}}}"#;
    let e = env(&[
        ("PCIDEVICE_INTEL_COM_SRIOV_VFIO", "0000:18:02.5,0000:18:02.6"),
        ("PCIDEVICE_INTEL_COM_SRIOV_VFIO_INFO", info),
        // A third VF from another pool that no network-attachment names: appended.
        ("PCIDEVICE_INTEL_COM_SRIOV_EXTRA", "0000:18:03.1"),
    ]);
    let d = discover_with(&root, &e, &ann, xdp(true)).unwrap();
    assert_eq!(d.port_specs(), vec!["0000:18:02.5", "0000:18:02.6", "0000:18:03.1"]);
    assert!(d.ports[0].reason.contains("bound to vfio-pci: PCI port ("), "{}", d.ports[0].reason);
    let driver = if cfg!(feature = "dpdk") { "DPDK's PMD" } else { "the native driver" };
    assert!(d.ports[0].reason.contains(driver), "{}", d.ports[0].reason);
    assert_eq!(d.ports[2].source, "env PCIDEVICE_INTEL_COM_SRIOV_EXTRA");
    assert_eq!(d.ports[1].network.as_deref(), Some("vnf/sriov-dpdk-b"));

    assert_eq!(d.cpus.cgroup, Some(("/sys/fs/cgroup/cpuset.cpus.effective".into(), vec![2, 3, 4, 5])));
    assert_eq!(d.cpus.effective, vec![2, 3, 4, 5]);
    assert_eq!((d.cpus.main, d.cpus.workers.clone()), (Some(2), vec![3, 4, 5]));

    let hp = &d.hugepages;
    assert_eq!(hp.mounts.len(), 1);
    assert_eq!((hp.mounts[0].path.as_str(), hp.mounts[0].pagesize_kb), ("/hugepages", Some(1 << 20)));
    assert_eq!(
        hp.pools.iter().map(|p| (p.size_kb, p.total, p.free)).collect::<Vec<_>>(),
        [(2048, 512, 512), (1 << 20, 8, 4)]
    );
    assert_eq!(hp.limits.len(), 2);
    assert!(hp.limits.iter().all(|l| l.container == "vnf" && l.size == "1G" && l.mib == 2048));

    let js: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(js["ports"][0]["spec"], "0000:18:02.5");
    assert_eq!(js["command"], "vnf-l2fwd l2fwd --port 0000:18:02.5 --port 0000:18:02.6 --port 0000:18:03.1 --cpu 3");
    let table = d.to_table();
    assert!(table.contains("hugetlbfs: /hugepages (1Gi)") && table.contains("main 2, workers 3-5"), "{table}");
}

#[test]
fn env_only_and_cgroup_v1() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    fs::remove_file(root.join("sys/fs/cgroup/cpuset.cpus.effective")).unwrap();
    write(&root.join("sys/fs/cgroup/cpuset/cpuset.cpus"), "6-7\n");
    let e = env(&[("PCIDEVICE_INTEL_COM_SRIOV_VFIO", "0000:18:02.6,0000:18:02.5")]);
    let d = discover_with(&root, &e, &dir.path().join("nowhere/annotations"), xdp(true)).unwrap();
    assert_eq!(d.port_specs(), vec!["0000:18:02.6", "0000:18:02.5"], "variable order is port order");
    assert!(d.notes.iter().any(|n| n.contains("not found")), "{:?}", d.notes);
    assert_eq!((d.cpus.main, d.cpus.workers.clone()), (Some(6), vec![7]));

    // A kernel-bound VF from the plugin with no interface in the pod is not used, and said so.
    fs::remove_dir_all(root.join("sys/devices/pci0000:17/0000:17:00.0/0000:18:02.2/net")).unwrap();
    let e = env(&[("PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE", "0000:18:02.2")]);
    let d = discover_with(&root, &e, &dir.path().join("nowhere/annotations"), xdp(true)).unwrap();
    assert!(d.ports.is_empty());
    assert!(d.notes.iter().any(|n| n.contains("0000:18:02.2 is bound to kernel driver iavf")), "{:?}", d.notes);
}

#[test]
fn vdpa_and_vhost_user() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "vdpa.annotations");
    let d = discover_with(&root, &[], &ann, xdp(true)).unwrap();
    assert_eq!(
        d.port_specs(),
        vec![
            "vdev:virtio_user0,path=/dev/vhost-vdpa-0",
            "vdev:net_virtio_user1,path=/var/lib/cni/usrspcni/abc-net2.sock,server=1"
        ]
    );
}

fn err(root: &Path, e: &[(&str, &str)], ann: &Path) -> String {
    match discover_with(root, &env(e), ann, xdp(true)) {
        Ok(d) => panic!("expected an error, got {d:?}"),
        Err(e) => e.to_string(),
    }
}

/// Writes an annotations file holding one network-status value, Go-quoted.
fn status_file(dir: &Path, json: &str) -> PathBuf {
    let p = dir.join("podnetinfo/annotations");
    write(&p, &format!("{NETWORK_STATUS_ANNOTATION}={}", serde_json::to_string(json).unwrap()));
    p
}

#[test]
fn malformed_input_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "bad-pci.annotations");
    assert_eq!(
        err(&root, &[], &ann),
        r#"network-status[1].device-info.pci.pci-address: "0000:zz" is not a PCI address"#
    );

    let cases: [(&str, &str); 9] = [
        ("{}", "network-status: is not a JSON list"),
        ("[{\"name\": \"a\", \"interface\": \"net1\",", "network-status: not JSON"),
        ("[{\"interface\": \"net1\"}]", "network-status[0].name: missing"),
        ("[{\"name\": \"a\", \"default\": \"yes\"}]", "network-status[0].default: \"yes\" is not a boolean"),
        ("[{\"name\": \"a\"}]", "network-status[0].interface: missing"),
        (
            "[{\"name\": \"a\", \"interface\": \"net1\", \"device-info\": {\"type\": \"usb\"}}]",
            "network-status[0].device-info.type: \"usb\" is not one of",
        ),
        (
            "[{\"name\": \"a\", \"interface\": \"net1\", \"device-info\": {\"type\": \"pci\", \"version\": \"2.0.0\", \"pci\": {}}}]",
            "network-status[0].device-info.version: \"2.0.0\" is not a 1.x",
        ),
        (
            "[{\"name\": \"a\", \"interface\": \"net1\", \"device-info\": {\"type\": \"pci\"}}]",
            "network-status[0].device-info.pci: missing",
        ),
        (
            "[{\"name\": \"a\", \"interface\": \"net1\"}, {\"name\": \"b\", \"interface\": \"net1\"}]",
            "network-status[1]: gives port af_xdp:net1 again",
        ),
    ];
    for (json, want) in cases {
        let ann = status_file(dir.path(), json);
        let got = err(&root, &[], &ann);
        assert!(got.starts_with(want), "{json}: got {got:?}, want {want:?}");
    }

    // A line that is not key="value".
    let p = dir.path().join("podnetinfo/annotations");
    write(&p, "a=\"ok\"\nb=unquoted");
    let got = err(&root, &[], &p);
    assert!(got.ends_with(":2: b: value is not a double-quoted string"), "{got}");
    write(&p, "a=\"bad \\q escape\"");
    assert!(err(&root, &[], &p).contains("unknown escape \\q"));

    // Device plugin variables.
    let none = dir.path().join("none");
    let got = err(&root, &[("PCIDEVICE_INTEL_COM_SRIOV", "0000:18:02.5,0000:zz")], &none);
    assert_eq!(got, r#"environment variable PCIDEVICE_INTEL_COM_SRIOV: entry 1 "0000:zz" is not a PCI address"#);
    let got = err(
        &root,
        &[("PCIDEVICE_INTEL_COM_SRIOV", "0000:18:02.5"), ("PCIDEVICE_INTEL_COM_SRIOV_INFO", r#"{"0000:18:02.6":{}}"#)],
        &none,
    );
    assert!(got.starts_with("environment variable PCIDEVICE_INTEL_COM_SRIOV_INFO: 0000:18:02.6 is not among"), "{got}");
    let got = err(
        &root,
        &[("PCIDEVICE_INTEL_COM_SRIOV", "0000:18:02.5"), ("PCIDEVICE_INTEL_COM_SRIOV_INFO", "{not json")],
        &none,
    );
    assert!(got.contains("_INFO: not JSON"), "{got}");

    // CPU sets.
    write(&root.join("sys/fs/cgroup/cpuset.cpus.effective"), "2-x\n");
    let got = err(&root, &[], &none);
    assert!(got.contains("cpuset.cpus.effective: \"2-x\" is not a CPU number or range"), "{got}");
    write(&root.join("sys/fs/cgroup/cpuset.cpus.effective"), "9-10\n");
    let got = err(&root, &[], &none);
    assert!(got.contains("do not overlap"), "{got}");
    assert!(matches!(discover_with(&root, &[], &none, xdp(true)), Err(DiscoverError::Cpus { .. })));
}

#[test]
fn cli_prints_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let ann = podnetinfo(dir.path(), "vfio.annotations");
    let out = vnf()
        .args(["discover", "--json", "--root"])
        .arg(&root)
        .arg("--podnetinfo")
        .arg(&ann)
        .env("PCIDEVICE_INTEL_COM_SRIOV_VFIO", "0000:18:02.5,0000:18:02.6")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let js: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(js["ports"].as_array().unwrap().len(), 2);
    assert_eq!(js["cpus"]["workers"], serde_json::json!([3, 4, 5]));

    let bad = dir.path().join("bad/annotations");
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::copy(fixture("bad-pci.annotations"), &bad).unwrap();
    let out = vnf().args(["discover", "--root"]).arg(&root).arg("--podnetinfo").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("network-status[1].device-info.pci.pci-address"));
}

/// A `PCIDEVICE_*` address that is not a PCI device of the node was taken as a port (and
/// failed only when opened); a discovery that found no port printed a command to run anyway.
#[test]
fn missing_pcidevice_and_no_port() {
    let dir = tempfile::tempdir().unwrap();
    let root = pod_root(dir.path());
    let none = dir.path().join("none");
    let got = err(&root, &[("PCIDEVICE_INTEL_COM_SRIOV_VFIO", "0000:18:02.5,0000:99:00.0")], &none);
    assert!(
        got.starts_with("environment variable PCIDEVICE_INTEL_COM_SRIOV_VFIO: 0000:99:00.0 is not a PCI device"),
        "{got}"
    );
    // No PCI bus visible at all (a tree without sys/bus/pci): the addresses cannot be checked,
    // and discovery says so instead of failing.
    let bare = dir.path().join("bare");
    fs::create_dir_all(bare.join("proc/self")).unwrap();
    write(&bare.join("proc/self/status"), "Cpus_allowed_list:\t0-1\n");
    let d = discover_with(&bare, &env(&[("PCIDEVICE_X", "0000:99:00.0")]), &none, xdp(true)).unwrap();
    assert_eq!(d.port_specs(), vec!["0000:99:00.0"]);
    assert!(d.notes.iter().any(|n| n.contains("cannot check")), "{:?}", d.notes);

    // Nothing found: no command to run, in the table and in the JSON.
    let d = discover_with(&root, &[], &none, xdp(true)).unwrap();
    assert!(d.ports.is_empty());
    let table = d.to_table();
    assert!(!table.contains("would run: vnf-l2fwd"), "{table}");
    assert!(table.contains("would run: nothing"), "{table}");
    let js: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(js["command"], serde_json::Value::Null);
    let out = vnf().args(["discover", "--root"]).arg(&root).arg("--podnetinfo").arg(&none).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("found no data port"), "{stderr}");
}
