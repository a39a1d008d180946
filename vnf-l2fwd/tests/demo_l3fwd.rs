//! `vnf-l2fwd demo --mode l3fwd`: every templated IPv4/UDP frame is routed (nothing dropped)
//! and every mbuf comes back.

use std::process::Command;

fn total(out: &str, what: &str) -> u64 {
    let l = out.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what:?} in {out}"));
    l.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn demo_l3fwd_routes_everything() {
    let o = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["demo", "--mode", "l3fwd", "--routes", "5000", "--duration", "1", "-T", "0"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("through 5002 LPM routes"), "{out}");
    let (sent, rx) = (total(&out, "Total packets sent:"), total(&out, "Total packets received:"));
    assert!(rx > 0, "{out}");
    assert_eq!(sent, rx, "every received frame is routed: {out}");
    assert_eq!(total(&out, "Total packets dropped:"), 0, "{out}");
    assert!(out.contains("no leak"), "{out}");
}

#[test]
fn demo_bad_mode_exits_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd")).args(["demo", "--mode", "l4fwd"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
