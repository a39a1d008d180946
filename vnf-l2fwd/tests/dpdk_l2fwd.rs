//! `vnf-l2fwd l2fwd` on two DPDK net_null vdevs (feature `dpdk`; needs root and DPDK's
//! null PMD): exits 0, forwards in both directions, and reports no leak.
#![cfg(feature = "dpdk")]

use std::process::Command;

#[test]
fn l2fwd_on_dpdk_null_vdevs() {
    let out = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["l2fwd", "--port", "vdev:net_null0", "--port", "vdev:net_null1", "--duration", "2", "-T", "0"])
        .output()
        .expect("run vnf-l2fwd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let sent: Vec<u64> =
        stdout.lines().filter_map(|l| l.strip_prefix("Packets sent:")).map(|v| v.trim().parse().unwrap()).collect();
    assert_eq!(sent.len(), 2, "{stdout}");
    assert!(sent.iter().all(|&n| n > 0), "both ports forwarded: {sent:?}");
    assert!(stdout.contains("dpdk:net_null"), "{stdout}");
    assert!(stdout.contains("no leak"), "{stdout}");
}

#[test]
fn dpdk_and_native_ports_do_not_mix() {
    let out = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["l2fwd", "--port", "vdev:net_null0", "--port", "null", "--duration", "1"])
        .output()
        .expect("run vnf-l2fwd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be mixed"));
}
