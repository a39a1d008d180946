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

/// The CPUs this process may use (two lcores need two; one CPU runs both lcores' threads).
fn cpus() -> Vec<usize> {
    vnf_l2fwd::node_features::allowed_cpus()
}

#[test]
fn lcore_config_with_dpdk_ports_uses_two_queues() {
    let c = cpus();
    let (a, b) = (c[0], *c.get(1).unwrap_or(&c[0]));
    // Two lcores, each polling queue k of both ports and sending on tx queue k.
    let config = format!("(0,0,{a}),(1,0,{a}),(0,1,{b}),(1,1,{b})");
    let out = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["l2fwd", "--port", "vdev:net_null0", "--port", "vdev:net_null1", "--duration", "2", "-T", "0"])
        .args(["--config", &config])
        .output()
        .expect("run vnf-l2fwd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("polls (port, queue) [(0, 1), (1, 1)]"), "{stdout}");
    // Per-lcore lines: both lcores forwarded.
    let sent: Vec<u64> =
        stdout.lines().filter_map(|l| l.strip_prefix("Packets sent:")).map(|v| v.trim().parse().unwrap()).collect();
    assert!(sent.len() >= 2 && sent.iter().all(|&n| n > 0), "{stdout}");
    assert!(stdout.contains("no leak"), "{stdout}");
}

#[test]
fn txonly_on_a_dpdk_null_vdev() {
    let out = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["txonly", "--port", "vdev:net_null0", "--duration", "1", "-T", "0", "--txpkts", "128"])
        .output()
        .expect("run vnf-l2fwd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let sent: u64 = stdout.lines().find_map(|l| l.strip_prefix("Packets sent:")).unwrap().trim().parse().unwrap();
    assert!(sent > 1000, "{stdout}");
    assert!(stdout.contains("no leak"), "{stdout}");
}
