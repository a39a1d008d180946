//! Configuration mistakes that used to be accepted silently (issue 17, item 10): each is now
//! an error (exit 2) or a warning naming the mistake.

use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

/// Runs the VNF; one that has not exited after 20 s is killed (a limit not checked can mean
/// a run that never ends).
fn run(args: &[&str]) -> Output {
    let mut c = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while c.try_wait().unwrap().is_none() && t0.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = c.kill();
    c.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage(args: &[&str], want: &[&str]) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} does not say {w:?}");
    }
}

/// The first CPU this process may use (an lcore id for `--config`).
fn first_cpu() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string();
    l.split([',', '-']).next().unwrap().parse().unwrap()
}

/// `--config` naming a queue beyond an explicit `queues=` was silently grown.
#[test]
fn config_queue_beyond_queues_is_an_error() {
    let c = first_cpu();
    let config = format!("(0,0,{c}),(0,2,{c}),(1,0,{c})");
    assert_usage(
        &["l2fwd", "--port", "null,queues=2", "--port", "null", "--config", &config],
        &["port 0", "queues=2", "rx queue 2"],
    );
    // Without queues= the port gets what --config needs, as before.
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--config", &config, "--duration", "0.2", "-T", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A port in two `--portmap` pairs: the last pair won silently. DPDK l2fwd refuses it ("port
/// %u is used in other port pairs").
#[test]
fn duplicate_portmap_pair_is_an_error() {
    let four = ["--port", "null", "--port", "null", "--port", "null", "--port", "null"];
    for (map, port) in [("(0,1)(0,1)", "port 0"), ("(0,1)(2,3)(1,0)", "port 1"), ("(0,1)(2,1)", "port 1")] {
        for mode in ["l2fwd", "io", "macswap"] {
            let mut args = vec![mode];
            args.extend(four);
            args.extend(["--portmap", map, "--duration", "1"]);
            assert_usage(&args, &["--portmap", port, "two pairs"]);
        }
    }
    // A port paired with itself is one pair (testpmd's loopback), and allowed.
    let o = run(&["io", "--port", "null", "--portmap", "(0,0)", "--duration", "0.2", "-T", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An enabled port that no `--portmap` pair names drops all it receives.
#[test]
fn unpaired_port_is_a_warning() {
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--port", "null", "--portmap", "(0,1)"]
        .into_iter()
        .chain(["--duration", "0.2", "-T", "0"])
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("port 2 is in no --portmap pair"), "{}", stderr(&o));
}
