//! l2fwd between two kernel-interface ports of several queues each, as an operator would run
//! it (root needed; skipped without it, failing under CI=true):
//!
//! ```text
//!  left (a0) ── A [ vnf-l2fwd l2fwd --port BACKEND:A,queues=Q --port BACKEND:B,queues=Q -q 2 ] B ── (b0) right
//! ```
//!
//! Each frame sent into A must come out of B exactly once and never back out of A: with
//! several queues the ports' receive sockets must not take the frames the VNF itself sends
//! (AF_PACKET fanout groups once echoed every frame back and forth thousands of times), and
//! every queue the kernel spreads flows over must be polled.

use dataplane::port::MacAddr;
use dataplane::txgen::{build_frame, TxGenConfig};
use netns::{veth_pair_mq, Netns, RawSocket};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const A0: [u8; 6] = [2, 0, 0, 0, 0x0a, 0];
const B0: [u8; 6] = [2, 0, 0, 0, 0x0b, 0];
/// Frames sent; each of its own UDP flow, so that fanout and RSS spread them over the queues.
const N: u32 = 400;
const MARK: &[u8; 4] = b"MQT!";

/// Frame `seq`: a0 → b0's MAC, UDP from port 1024 + seq, the mark and `seq` in the payload.
fn frame(seq: u32) -> Vec<u8> {
    let mut f = build_frame(&TxGenConfig {
        src_mac: MacAddr(A0),
        dst_mac: MacAddr(B0),
        src_port: 1024 + seq as u16,
        frame_len: 64,
        ..TxGenConfig::default()
    })
    .unwrap();
    f[42..46].copy_from_slice(MARK);
    f[46..50].copy_from_slice(&seq.to_be_bytes());
    f
}

fn seq_of(f: &[u8]) -> Option<u32> {
    (f.len() >= 50 && &f[42..46] == MARK).then(|| u32::from_be_bytes(f[46..50].try_into().unwrap()))
}

/// Counts each marked frame `sock` receives until `stop`, then 300 ms more.
fn count(sock: Arc<RawSocket>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        let mut seen = vec![0u32; N as usize];
        let mut buf = [0u8; 2048];
        let mut until = None;
        let hard = Instant::now() + Duration::from_secs(60);
        while until.map_or(true, |u| Instant::now() < u) && Instant::now() < hard {
            if until.is_none() && stop.load(Ordering::Relaxed) {
                until = Some(Instant::now() + Duration::from_millis(300));
            }
            if let Some(n) = sock.recv(&mut buf) {
                if let Some(c) = seq_of(&buf[..n]).and_then(|s| seen.get_mut(s as usize)) {
                    *c += 1;
                }
            }
        }
        seen
    })
}

fn run(test: &str, backend: &str, queues: u16) {
    if !netns::require_or_skip(test) {
        return;
    }
    let (left, fwd, right) = (Netns::new("left").unwrap(), Netns::new("fwd").unwrap(), Netns::new("right").unwrap());
    let _va = veth_pair_mq(&left, "a0", &fwd, "A", queues).unwrap();
    let _vb = veth_pair_mq(&fwd, "B", &right, "b0", queues).unwrap();
    left.set_mac("a0", A0).unwrap();
    right.set_mac("b0", B0).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("vnf.pid");
    let spec = |ifname: &str| format!("{backend}:{ifname},queues={queues}");
    let mut child = Command::new("ip")
        .args(["netns", "exec", fwd.name(), env!("CARGO_BIN_EXE_vnf-l2fwd"), "l2fwd"])
        .args(["--port", &spec("A"), "--port", &spec("B"), "-q", "2", "-P", "-T", "0", "--duration", "60"])
        .arg("--pidfile")
        .arg(&pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = |child: &mut std::process::Child| {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = child.stdout.take().unwrap().read_to_string(&mut o);
        let _ = child.stderr.take().unwrap().read_to_string(&mut e);
        format!("{o}\n{e}")
    };
    let t0 = Instant::now();
    while !pidfile.exists() {
        if t0.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test}: the VNF did not start:\n{}", output(&mut child));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give the VNF's first polls (and an XDP program's attach) a moment.
    std::thread::sleep(Duration::from_millis(500));

    // a0's counter shares the sending socket: a packet socket never receives its own sends,
    // so whatever it counts came back out of A.
    let a0 = Arc::new(left.run(|| RawSocket::open("a0")).unwrap().unwrap());
    let b0 = Arc::new(right.run(|| RawSocket::open("b0")).unwrap().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (back, out) = (count(a0.clone(), stop.clone()), count(b0, stop.clone()));
    for seq in 0..N {
        a0.send(&frame(seq)).unwrap();
        if seq % 10 == 9 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let (back, out) = (back.join().unwrap(), out.join().unwrap());

    // SAFETY: kill(2) on our child's pid (`ip netns exec` execs the VNF in place).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("{test}: the VNF did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = output(&mut child);

    let missing: Vec<usize> = out.iter().enumerate().filter(|(_, &c)| c == 0).map(|(i, _)| i).collect();
    let extra: u32 = out.iter().map(|&c| c.saturating_sub(1)).sum();
    let echoed: u32 = back.iter().sum();
    assert!(status.success(), "{test}: exit {status}\n{log}");
    assert!(log.contains("no leak"), "{test}: mbufs leaked\n{log}");
    assert_eq!(echoed, 0, "{test}: {echoed} frames came back out of A (a forwarding loop)\n{log}");
    assert_eq!(extra, 0, "{test}: {extra} duplicate frames out of B (a forwarding loop)\n{log}");
    assert!(
        missing.is_empty(),
        "{test}: {} of {N} frames lost, first {:?}\n{log}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn af_packet_two_queues_one_frame_out_per_frame_in() {
    run("af_packet_two_queues_one_frame_out_per_frame_in", "af_packet", 2);
}

#[test]
fn af_packet_four_queues_one_frame_out_per_frame_in() {
    run("af_packet_four_queues_one_frame_out_per_frame_in", "af_packet", 4);
}

#[test]
fn af_xdp_two_queues_one_frame_out_per_frame_in() {
    run("af_xdp_two_queues_one_frame_out_per_frame_in", "af_xdp", 2);
}

#[test]
fn af_xdp_four_queues_one_frame_out_per_frame_in() {
    run("af_xdp_four_queues_one_frame_out_per_frame_in", "af_xdp", 4);
}
