//! `vnf-l2fwd ctl reload`: the VNF's pidfile, SIGHUP through it, and l3fwd reporting the new
//! route generation; l3fwd without --port goes to discovery.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

#[test]
fn ctl_reload_through_the_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    let pidfile = dir.path().join("vnf.pid");
    std::fs::write(&routes, "R198.18.1.0/24 0\n").unwrap();
    let mut child = Command::new(bin())
        .args(["l3fwd", "--port", "null", "--port", "null", "--duration", "20", "-T", "0"])
        .arg("--rule_ipv4")
        .arg(&routes)
        .arg("--pidfile")
        .arg(&pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = {
        let e = child.stderr.take().unwrap();
        std::thread::spawn(move || BufReader::new(e).lines().map_while(Result::ok).collect::<Vec<String>>())
    };
    let t0 = Instant::now();
    while !pidfile.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no pidfile");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), child.id().to_string());
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.2.0/24 1\nR198.18.3.0/24 1\n").unwrap();
    let o = Command::new(bin()).args(["ctl", "reload", "--pidfile"]).arg(&pidfile).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains(&format!("pid {}", child.id())), "{said}");
    assert!(said.contains("reload: routes reloaded: generation 1, 3 IPv4 routes"), "{said}");
    // Then a bad file is rejected and the tables stay.
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    std::fs::write(&routes, "R198.18.1.0/99 0\n").unwrap();
    let o = Command::new(bin())
        .args(["ctl", "reload", "--pid", &child.id().to_string(), "--pidfile"])
        .arg(&pidfile)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a rejected reload is a failure");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rejected"), "{}", String::from_utf8_lossy(&o.stderr));
    // SIGTERM: the VNF stops cleanly and removes its pidfile.
    assert!(Command::new("kill").arg(child.id().to_string()).status().unwrap().success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("no leak")), "{rest:?}");
    assert!(
        rest.iter().any(|l| l == "Route table: generation 1, 3 IPv4 / 0 IPv6 routes; reloads 1 ok, 1 rejected"),
        "the final statistics carry the reloads and the table size: {rest:?}"
    );
    assert!(!pidfile.exists());
    assert!(!dir.path().join("vnf.pid.reload").exists());
    // The VNF logs each reload's outcome once (not also on stdout), a rejected one as a
    // warning.
    let log = log.join().unwrap();
    let all: Vec<&String> = log.iter().chain(&rest).collect();
    let ok: Vec<_> = all.iter().filter(|l| l.contains("routes reloaded: generation 1, 3 IPv4 routes")).collect();
    assert_eq!(ok.len(), 1, "{all:?}");
    assert!(ok[0].contains("INFO") && ok[0].contains("reload 1: "), "{ok:?}");
    let bad: Vec<_> = all.iter().filter(|l| l.contains("rejected, generation 1 stays")).collect();
    assert_eq!(bad.len(), 1, "{all:?}");
    assert!(bad[0].contains("WARN") && bad[0].contains("reload 2: "), "{bad:?}");
}

#[test]
fn sighup_does_not_stop_l2fwd() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("l2.pid");
    let child = Command::new(bin())
        .args(["l2fwd", "--port", "null", "--port", "null", "--duration", "2", "-T", "0", "--pidfile"])
        .arg(&pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !pidfile.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no pidfile");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = Command::new(bin()).args(["ctl", "reload", "--pidfile"]).arg(&pidfile).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to reload"));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "l2fwd survived SIGHUP and finished its run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no leak"));
}

#[test]
fn ctl_reload_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.pid");
    let o = Command::new(bin()).args(["ctl", "reload", "--pidfile"]).arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // Not a VNF: this test process.
    let me = std::process::id().to_string();
    let o = Command::new(bin()).args(["ctl", "reload", "--pid", &me]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(bin()).args(["ctl", "reload", "--pid", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(bin()).args(["ctl", "reload", "--timeout", "0", "--pidfile"]).arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timeout"));
}

#[test]
fn l3fwd_without_port_uses_discovery() {
    let o = Command::new(bin())
        .args(["l3fwd", "--rule_ipv4", "/nonexistent.cfg", "--podnetinfo", "/nonexistent/annotations"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("discovery"), "{err}");
}
