//! The README's `vnf-l2fwd icmpecho --port af_packet:net1` answers a kernel `ping` from the
//! peer namespace (root needed; skipped without it, failing under CI=true): with no `--addr`
//! it answers ARP and echo for any address, as testpmd does; with `--addr` only for that one.

use netns::{veth_pair, Netns};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs icmpecho in `pod` with `extra` options and pings `target` three times from `client`;
/// returns how many replies came back.
fn ping_through(client: &Netns, pod: &Netns, extra: &[&str], target: &str) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("vnf.pid");
    let mut child = Command::new("ip")
        .args(["netns", "exec", pod.name(), env!("CARGO_BIN_EXE_vnf-l2fwd"), "icmpecho"])
        .args(["--port", "af_packet:net1", "-T", "0", "--duration", "30", "--pidfile"])
        .arg(&pidfile)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !pidfile.exists() {
        if t0.elapsed() > Duration::from_secs(15) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("icmpecho did not start: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = client.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", target]);
    // SAFETY: kill(2) on our child's pid (`ip netns exec` execs the VNF in place).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "icmpecho: {}", String::from_utf8_lossy(&o.stderr));
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(netns::Error::Cmd { stderr, .. }) => stderr,
        Err(e) => panic!("ping: {e}"),
    };
    text.lines().find_map(|l| l.split(", ").nth(1)?.strip_suffix(" received")?.parse().ok()).unwrap_or(0)
}

#[test]
fn icmpecho_answers_a_kernel_ping() {
    if !netns::require_or_skip("icmpecho_answers_a_kernel_ping") {
        return;
    }
    let (client, pod) = (Netns::new("pingc").unwrap(), Netns::new("pingpod").unwrap());
    let _v = veth_pair(&client, "c0", &pod, "net1").unwrap();
    client.add_addr("c0", "198.18.5.2/24").unwrap();
    assert_eq!(ping_through(&client, &pod, &[], "198.18.5.1"), 3, "no --addr: every address answered");
    // Another address: the client's ARP cache must not carry the old answer.
    assert_eq!(ping_through(&client, &pod, &["--addr", "0,198.18.5.7"], "198.18.5.7"), 3, "its --addr answered");
    assert_eq!(ping_through(&client, &pod, &["--addr", "0,198.18.5.7"], "198.18.5.8"), 0, "other addresses are not");
}
