//! `--config "(port,queue,lcore),..."` and `-q N`: bad maps exit 2; two lcores on two-queue
//! null ports both forward, and every mbuf comes back.

use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

/// The CPUs this test may use (the VNF checks lcores against the same set).
fn allowed() -> Vec<usize> {
    vnf_l2fwd::node_features::allowed_cpus()
}

#[test]
fn bad_lcore_maps_exit_2() {
    let ports = ["--port", "null,queues=2", "--port", "null,queues=2"];
    let not_allowed = format!("(0,0,{})", allowed().iter().max().unwrap() + 1);
    for cmd in ["l2fwd", "l3fwd"] {
        for extra in [
            vec!["--config", "(0,0)"],
            vec!["--config", "(0,0,x)"],
            vec!["--config", "(0,0,0"],
            vec!["--config", "(0,0,0)(0,0,0)"],
            vec!["--config", "(0,1,0)(0,1,0)"],
            vec!["--config", "(5,0,0)"],
            vec!["--config", &not_allowed],
            vec!["-q", "0"],
            vec!["-q", "1", "--config", "(0,0,0)"],
        ] {
            let mut c = Command::new(bin());
            c.arg(cmd).args(ports).args(&extra).args(["--duration", "1"]);
            if cmd == "l3fwd" {
                c.args(["--rule_ipv4", "/nonexistent/routes.cfg"]);
            }
            let o = c.output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{cmd} {extra:?}: {err}");
            assert!(err.contains("--config") || err.contains("-q"), "{cmd} {extra:?}: {err}");
        }
    }
}

/// "Lcore N: received R sent S" lines of the final summary.
fn lcore_lines(out: &str) -> Vec<(usize, u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Lcore ")?;
            let (id, rest) = rest.split_once(": received ")?;
            let (rx, tx) = rest.split_once(" sent ")?;
            Some((id.parse().ok()?, rx.parse().ok()?, tx.parse().ok()?))
        })
        .collect()
}

#[test]
fn two_lcores_forward_on_both() {
    let cpus = allowed();
    if cpus.len() < 2 {
        eprintln!("two_lcores_forward_on_both: SKIPPED: needs 2 CPUs, have {cpus:?}");
        return;
    }
    let (a, b) = (cpus[0], cpus[1]);
    let config = format!("(0,0,{a})(0,1,{b})(1,0,{a})(1,1,{b})");
    let o = Command::new(bin())
        .args(["l2fwd", "--port", "null,queues=2", "--port", "null"])
        .args(["--config", &config, "--duration", "1", "-T", "0"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    let lines = lcore_lines(&out);
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), vec![a, b], "{out}");
    for &(id, rx, tx) in &lines {
        assert!(rx > 0 && tx > 0, "lcore {id} did not forward: {out}");
    }
    assert!(out.contains("no leak"), "{out}");
}

#[test]
fn l3fwd_runs_on_two_lcores() {
    let cpus = allowed();
    if cpus.len() < 2 {
        eprintln!("l3fwd_runs_on_two_lcores: SKIPPED: needs 2 CPUs, have {cpus:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    std::fs::write(&routes, "R198.18.0.0/16 1\n").unwrap();
    let o = Command::new(bin())
        .args(["l3fwd", "--port", "null", "--port", "null", "-q", "1", "--duration", "1", "-T", "0"])
        .arg("--rule_ipv4")
        .arg(&routes)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    let lines = lcore_lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    for &(id, rx, _) in &lines {
        assert!(rx > 0, "lcore {id} received nothing: {out}");
    }
    assert!(out.contains("no leak"), "{out}");
}
