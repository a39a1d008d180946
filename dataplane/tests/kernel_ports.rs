//! AF_XDP and AF_PACKET ports on veth pairs in network namespaces.
//!
//! Topology: `sender` (s0) <-> (f0) `fwd` (f1) <-> (r0) `receiver`. In `fwd` two ports are
//! opened on f0/f1 and a small loop forwards f0 -> f1 with DPDK l2fwd's rewrite (src = the tx
//! port's MAC, dst = 02:00:00:00:00:<tx port id>). The sender sends numbered UDP frames from
//! an AF_PACKET socket; the receiver checks each arrived exactly once, rewritten.
//!
//! Needs root. Without it (or without `ip`) the tests print why and skip; with `CI=true` they
//! fail instead.
#![cfg(target_os = "linux")]

use dataplane::mbuf::{MemBacking, Mempool, MempoolConfig};
use dataplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use dataplane::port::af_xdp::{AfXdpConfig, AfXdpPort, XdpMode};
use dataplane::port::{MacAddr, Port, PortError, PortStats};
use dataplane::{Burst, Mbuf, PacketBuf};
use netns::{veth_pair_mq, Netns, RawSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const N: u32 = 2000;
const MAGIC: &[u8; 6] = b"DPTEST";
const S0: [u8; 6] = [2, 0, 0, 0, 0x10, 0];
const F0: [u8; 6] = [2, 0, 0, 0, 0x20, 0];
const F1: [u8; 6] = [2, 0, 0, 0, 0x20, 1];
const R0: [u8; 6] = [2, 0, 0, 0, 0x30, 0];

struct Topo {
    sender: Netns,
    fwd: Netns,
    receiver: Netns,
}

fn topology(queues: u16) -> Topo {
    let sender = Netns::new("sender").unwrap();
    let fwd = Netns::new("fwd").unwrap();
    let receiver = Netns::new("receiver").unwrap();
    // The veths live in the namespaces and vanish with them; no separate guard needed.
    std::mem::forget(veth_pair_mq(&sender, "s0", &fwd, "f0", queues).unwrap());
    std::mem::forget(veth_pair_mq(&fwd, "f1", &receiver, "r0", queues).unwrap());
    sender.set_mac("s0", S0).unwrap();
    fwd.set_mac("f0", F0).unwrap();
    fwd.set_mac("f1", F1).unwrap();
    receiver.set_mac("r0", R0).unwrap();
    sender.add_addr("s0", "198.18.0.1/24").unwrap();
    receiver.add_addr("r0", "198.18.1.1/24").unwrap();
    Topo { sender, fwd, receiver }
}

fn pool(name: &str) -> Mempool {
    let mut c = MempoolConfig::new(name, 8192);
    c.backing = MemBacking::Normal;
    Mempool::new(c).unwrap()
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP frame 198.18.0.1 -> 198.18.1.1 carrying MAGIC and `seq`.
fn frame(seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&F0);
    f.extend_from_slice(&S0);
    f.extend_from_slice(&[0x08, 0x00]);
    let payload_len = 18;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + payload_len) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 1, 1]);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&1234u16.to_be_bytes());
    f.extend_from_slice(&5678u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(64, 0);
    f
}

/// The sequence number of one of our frames (None for anything else).
fn seq_of(f: &[u8]) -> Option<u32> {
    let p = 14 + 20 + 8;
    if f.len() < p + 10 || f[12..14] != [0x08, 0x00] || &f[p..p + 6] != MAGIC {
        return None;
    }
    Some(u32::from_be_bytes([f[p + 6], f[p + 7], f[p + 8], f[p + 9]]))
}

/// An mbuf of `pool` holding `f`.
fn mbuf_of(pool: &Mempool, f: &[u8]) -> Mbuf {
    let mut m = pool.alloc().unwrap();
    assert!(m.set_len(f.len()));
    m.data_mut().copy_from_slice(f);
    m
}

/// How often each numbered frame `0..k` arrived, from what `recv` hands over (each call gives
/// whatever frames are there to its callback): until every one arrived (and 300 ms more, for
/// duplicates), at most `max`.
fn tally(k: u32, max: Duration, mut recv: impl FnMut(&mut dyn FnMut(&[u8]))) -> Vec<u32> {
    let mut seen = vec![0u32; k as usize];
    let mut deadline = Instant::now() + max;
    let mut all = false;
    while Instant::now() < deadline {
        recv(&mut |f| {
            if let Some(c) = seq_of(f).and_then(|s| seen.get_mut(s as usize)) {
                *c += 1;
            }
        });
        if !all && seen.iter().all(|&c| c > 0) {
            all = true;
            deadline = deadline.min(Instant::now() + Duration::from_millis(300));
        }
    }
    seen
}

/// Counts numbered frames `0..k` arriving on `ifname` in namespace `ns` with a raw socket
/// ([`tally`]), in a thread that is receiving when this returns.
fn count_frames(ns: &Netns, ifname: &'static str, k: u32, max: Duration) -> std::thread::JoinHandle<Vec<u32>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = ns
        .spawn(move || {
            let fd = RawSocket::open(ifname).unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            tally(k, max, |got| {
                if let Some(n) = fd.recv(&mut buf) {
                    got(&buf[..n]);
                }
            })
        })
        .unwrap();
    ready_rx.recv().unwrap();
    h
}

/// What the forwarding thread reports.
struct FwdReport {
    forwarded: u64,
    tx_dropped: u64,
    rx_stats: PortStats,
    tx_stats: PortStats,
    headrooms: (usize, usize),
    in_use_after_drop: usize,
    detail: String,
}

/// Opens two ports in the current namespace and forwards every rx queue of port 0 to tx queue
/// 0 of port 1 until `stop`.
fn forward<P: Port<Buf = Mbuf> + std::fmt::Debug>(
    open: impl FnOnce(&Mempool) -> Result<(P, P), PortError>,
    ready: mpsc::Sender<Result<(), String>>,
    stop: Arc<AtomicBool>,
) -> FwdReport {
    let pool = pool("fwd");
    let (mut p0, mut p1) = match open(&pool) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return FwdReport {
                forwarded: 0,
                tx_dropped: 0,
                rx_stats: PortStats::default(),
                tx_stats: PortStats::default(),
                headrooms: (0, 0),
                in_use_after_drop: pool.in_use(),
                detail: e.to_string(),
            };
        }
    };
    let detail = format!("{:?} / {:?}", p0, p1).replace('\n', " ");
    let mut rxs: Vec<_> = (0..p0.info().rx_queues).map(|q| p0.rx_queue(q).unwrap()).collect();
    let mut tx = p1.tx_queue(0).unwrap();
    let tx_mac = p1.mac().octets();
    let tx_dst = MacAddr::local(1).octets();
    let mut b: Burst<Mbuf> = Burst::new();
    let (mut forwarded, mut tx_dropped) = (0u64, 0u64);
    let mut headrooms = (usize::MAX, 0usize);
    ready.send(Ok(())).unwrap();
    // Bounded in time even if the main thread never says stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut n = 0;
        for rx in rxs.iter_mut() {
            n += rx.rx_burst(&mut b, 32);
        }
        for m in b.iter_mut() {
            headrooms = (headrooms.0.min(m.headroom()), headrooms.1.max(m.headroom()));
            let d = m.data_mut();
            if d.len() >= 12 {
                d[0..6].copy_from_slice(&tx_dst);
                d[6..12].copy_from_slice(&tx_mac);
            }
        }
        let mut tries = 0;
        while !b.is_empty() && tries < 1000 {
            forwarded += tx.tx_burst(&mut b) as u64;
            tries += 1;
        }
        tx_dropped += b.len() as u64;
        b.clear();
        tx.flush();
        if n == 0 {
            std::thread::yield_now();
        }
    }
    // Let the last completions arrive.
    for _ in 0..100 {
        tx.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    let rx_stats = p0.stats();
    let tx_stats = p1.stats();
    drop((rxs, tx, p0, p1));
    FwdReport { forwarded, tx_dropped, rx_stats, tx_stats, headrooms, in_use_after_drop: pool.in_use(), detail }
}

fn run_forwarding<P: Port<Buf = Mbuf> + std::fmt::Debug + 'static>(
    test: &str,
    queues: u16,
    open: impl FnOnce(&Mempool) -> Result<(P, P), PortError> + Send + 'static,
) {
    if !netns::require_or_skip(test) {
        return;
    }
    let topo = topology(queues);
    let names: Vec<String> = [&topo.sender, &topo.fwd, &topo.receiver].iter().map(|n| n.name().to_string()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let st = stop.clone();
    let fwd = topo.fwd.spawn(move || forward(open, ready_tx, st)).unwrap();
    if let Err(e) = ready_rx.recv_timeout(Duration::from_secs(20)).expect("forwarder did not start") {
        stop.store(true, Ordering::Relaxed);
        let _ = fwd.join();
        panic!("{test}: opening the ports failed: {e}");
    }

    let (rready_tx, rready_rx) = mpsc::channel();
    let receiver = topo
        .receiver
        .spawn(move || {
            let fd = RawSocket::open("r0").unwrap();
            rready_tx.send(()).unwrap();
            let mut seen = vec![0u32; N as usize];
            let mut bad_rewrite = 0u32;
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut got = 0;
            while got < N && Instant::now() < deadline {
                let Some(n) = fd.recv(&mut buf) else { continue };
                let f = &buf[..n];
                if let Some(s) = seq_of(f) {
                    if f[0..6] != MacAddr::local(1).octets() || f[6..12] != F1 {
                        bad_rewrite += 1;
                    }
                    if let Some(c) = seen.get_mut(s as usize) {
                        *c += 1;
                        if *c == 1 {
                            got += 1;
                        }
                    }
                }
            }
            // Catch duplicates arriving late.
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                if let Some(n) = fd.recv(&mut buf) {
                    if let Some(s) = seq_of(&buf[..n]) {
                        if let Some(c) = seen.get_mut(s as usize) {
                            *c += 1;
                        }
                    }
                }
            }
            (seen, bad_rewrite)
        })
        .unwrap();
    rready_rx.recv_timeout(Duration::from_secs(10)).expect("receiver did not start");

    topo.sender
        .run(|| {
            let fd = RawSocket::open("s0").unwrap();
            for seq in 0..N {
                let f = frame(seq);
                fd.send(&f).unwrap();
                // ~20 kpps: far below what either backend forwards over veth.
                if seq % 10 == 9 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        })
        .unwrap();

    let (seen, bad_rewrite) = receiver.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let r = fwd.join().unwrap();
    let missing: Vec<usize> = seen.iter().enumerate().filter(|(_, &c)| c == 0).map(|(i, _)| i).collect();
    let dups: Vec<usize> = seen.iter().enumerate().filter(|(_, &c)| c > 1).map(|(i, _)| i).collect();
    eprintln!(
        "{test}: {}: forwarded {} (tx dropped {}), rx {:?}, tx {:?}, headroom {:?}",
        r.detail, r.forwarded, r.tx_dropped, r.rx_stats, r.tx_stats, r.headrooms
    );
    assert!(
        missing.is_empty(),
        "{test}: {} of {N} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(dups.is_empty(), "{test}: duplicates {:?}", &dups[..dups.len().min(10)]);
    assert_eq!(bad_rewrite, 0, "{test}: frames without the l2fwd rewrite");
    assert_eq!(r.tx_dropped, 0);
    assert_eq!(r.headrooms, (256, 256), "{test}: received data must start at chunk + 64 + 256");
    assert_eq!(r.in_use_after_drop, 0, "{test}: mbufs leaked after the ports were dropped");
    for ifname in ["f0", "f1"] {
        assert!(xdp_detached(&topo.fwd, ifname), "{test}: XDP program left on {ifname}");
    }
    drop(topo);
    for n in names {
        assert!(!std::path::Path::new(&format!("/run/netns/{n}")).exists(), "namespace {n} left behind");
    }
}

#[test]
fn af_xdp_forwards_between_veths() {
    run_forwarding("af_xdp_forwards_between_veths", 1, |pool: &Mempool| {
        let mut c0 = AfXdpConfig::new("f0");
        c0.fill_size = 1024;
        let mut c1 = AfXdpConfig::new("f1");
        c1.fill_size = 1024;
        let p0 = AfXdpPort::open(0, c0, pool.clone())?;
        let p1 = AfXdpPort::open(1, c1, pool.clone())?;
        assert!(p1.mode().shared_umem, "the second port on one pool shares the UMEM");
        eprintln!("af_xdp modes: {:?} / {:?}", p0.mode(), p1.mode());
        Ok((p0, p1))
    });
}

/// The UMEM registered in aligned chunk mode (the default is unaligned): descriptors carry
/// plain offsets.
#[test]
fn af_xdp_aligned_chunks() {
    run_forwarding("af_xdp_aligned_chunks", 1, |pool: &Mempool| {
        let c0 = AfXdpConfig { fill_size: 1024, unaligned_chunks: false, ..AfXdpConfig::new("f0") };
        let c1 = AfXdpConfig { fill_size: 1024, unaligned_chunks: false, ..AfXdpConfig::new("f1") };
        Ok((AfXdpPort::open(0, c0, pool.clone())?, AfXdpPort::open(1, c1, pool.clone())?))
    });
}

#[test]
fn af_packet_forwards_between_veths() {
    run_forwarding("af_packet_forwards_between_veths", 1, |pool: &Mempool| {
        let p0 = AfPacketPort::open(0, AfPacketConfig::new("f0"), pool.clone())?;
        let p1 = AfPacketPort::open(1, AfPacketConfig::new("f1"), pool.clone())?;
        Ok((p0, p1))
    });
}

/// Two queues: one socket per veth queue for AF_XDP (packets land on either); a two-socket
/// fanout group for AF_PACKET (without the group each packet would arrive twice).
#[test]
fn af_xdp_two_queues() {
    run_forwarding("af_xdp_two_queues", 2, |pool: &Mempool| {
        let c0 = AfXdpConfig { queues: 2, fill_size: 1024, ..AfXdpConfig::new("f0") };
        let c1 = AfXdpConfig { queues: 2, fill_size: 1024, ..AfXdpConfig::new("f1") };
        Ok((AfXdpPort::open(0, c0, pool.clone())?, AfXdpPort::open(1, c1, pool.clone())?))
    });
}

#[test]
fn af_packet_two_queues_fanout() {
    run_forwarding("af_packet_two_queues_fanout", 2, |pool: &Mempool| {
        let c0 = AfPacketConfig { queues: 2, ..AfPacketConfig::new("f0") };
        let c1 = AfPacketConfig { queues: 2, qdisc_bypass: true, promiscuous: true, ..AfPacketConfig::new("f1") };
        Ok((AfPacketPort::open(0, c0, pool.clone())?, AfPacketPort::open(1, c1, pool.clone())?))
    });
}

#[test]
fn missing_interface_is_a_clear_error() {
    let pool = pool("missing");
    let check = |r: Result<(), PortError>| match r {
        Err(PortError::Os { source, hint, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENODEV));
            assert!(hint.contains("does not exist"), "{hint}");
        }
        other => panic!("expected PortError::Os(ENODEV), got {other:?}"),
    };
    check(AfXdpPort::open(0, AfXdpConfig::new("dpnoexist0"), pool.clone()).map(drop));
    check(AfPacketPort::open(0, AfPacketConfig::new("dpnoexist0"), pool.clone()).map(drop));
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn native_xdp_on_a_device_without_it_is_a_clear_error() {
    let test = "native_xdp_on_a_device_without_it_is_a_clear_error";
    if !netns::require_or_skip(test) {
        return;
    }
    let ns = Netns::new("xdpfail").unwrap();
    // Loopback has no native XDP (no ndo_bpf) but runs generic XDP; this namespace's `lo`
    // is ours alone.
    let (native, generic) = ns
        .run(|| {
            let pool = pool("xdpfail");
            let mut c = AfXdpConfig::new("lo");
            c.fill_size = 256;
            c.xdp_mode = XdpMode::Native;
            let native = AfXdpPort::open(0, c.clone(), pool.clone()).map(drop);
            c.xdp_mode = XdpMode::Auto;
            let generic = AfXdpPort::open(0, c, pool.clone()).map(|p| p.mode());
            assert_eq!(pool.in_use(), 0, "a failed or closed open returns every mbuf");
            (native, generic)
        })
        .unwrap();
    match native {
        Err(PortError::Os { hint, .. }) => assert!(hint.contains("native XDP"), "{hint}"),
        other => panic!("expected an attach error, got {other:?}"),
    }
    let mode = generic.expect("auto mode falls back to generic XDP");
    assert!(!mode.native_xdp && !mode.zerocopy);
    assert!(xdp_detached(&ns, "lo"), "XDP program left on lo");
}

/// A port whose interface is deleted reports its link down, and keeps saying so when an
/// interface of the same name comes back: its sockets stay bound to the old one.
#[test]
fn deleted_interface_is_down_for_good() {
    if !netns::require_or_skip("deleted_interface_is_down_for_good") {
        return;
    }
    let (a, b) = (Netns::new("dela").unwrap(), Netns::new("delb").unwrap());
    let _v = veth_pair_mq(&a, "d0", &b, "d1", 1).unwrap();
    let (na, nb) = (a.name().to_string(), b.name().to_string());
    let ip = move |args: &[&str]| {
        let o = std::process::Command::new("ip").args(args).output().unwrap();
        assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let seen = a
        .run(move || {
            let pool = pool("del");
            let xdp =
                AfXdpPort::open(0, AfXdpConfig { fill_size: 1024, ..AfXdpConfig::new("d0") }, pool.clone()).unwrap();
            let pkt = AfPacketPort::open(1, AfPacketConfig::new("d0"), pool.clone()).unwrap();
            let mut seen = vec![(xdp.link().up, pkt.link().up)];
            ip(&["-n", &na, "link", "del", "d0"]);
            seen.push((xdp.link().up, pkt.link().up));
            ip(&["-n", &na, "link", "add", "d0", "type", "veth", "peer", "name", "d1", "netns", &nb]);
            ip(&["-n", &na, "link", "set", "d0", "up"]);
            ip(&["-n", &nb, "link", "set", "d1", "up"]);
            std::thread::sleep(std::time::Duration::from_millis(200));
            seen.push((xdp.link().up, pkt.link().up));
            drop((xdp, pkt));
            assert_eq!(pool.in_use(), 0);
            seen
        })
        .unwrap();
    assert_eq!(seen, [(true, true), (false, false), (false, false)], "(AF_XDP, AF_PACKET): up, deleted, recreated");
}

/// True once no XDP program is attached to `ifname` (within 3 s): closing the BPF link
/// detaches the program, but a child process another test thread is forking at that moment
/// holds a copy of the fd until its exec (close-on-exec), so allow a short grace period.
fn xdp_detached(ns: &Netns, ifname: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while ns.xdp_attached(ifname).unwrap() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// A rough forwarding rate over veth for one backend: the sender blasts 64-byte frames from
/// an AF_PACKET tx ring for two seconds; the figure is what the forwarder moved. Not a
/// benchmark (sender, forwarder and softirqs share the machine's cores); run with
/// `cargo test --release -p dataplane --test kernel_ports -- --ignored --nocapture`.
fn measure<P: Port<Buf = Mbuf> + std::fmt::Debug + 'static>(
    test: &str,
    open: impl FnOnce(&Mempool) -> Result<(P, P), PortError> + Send + 'static,
) {
    if !netns::require_or_skip(test) {
        return;
    }
    let topo = topology(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let st = stop.clone();
    let fwd = topo.fwd.spawn(move || forward(open, ready_tx, st)).unwrap();
    ready_rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
    let secs = 2.0;
    let sent = topo
        .sender
        .run(move || {
            let pool = pool("blast");
            let cfg = AfPacketConfig { qdisc_bypass: true, tx_frames: 4096, ..AfPacketConfig::new("s0") };
            let mut p = AfPacketPort::open(0, cfg, pool.clone()).unwrap();
            let mut tx = p.tx_queue(0).unwrap();
            let f = frame(0);
            let mut b: Burst<Mbuf> = Burst::new();
            let t0 = Instant::now();
            let mut sent = 0u64;
            while t0.elapsed().as_secs_f64() < secs {
                while b.len() < 32 {
                    let _ = b.push(Mbuf::from_slice(&pool, &f).unwrap());
                }
                sent += tx.tx_burst(&mut b) as u64;
            }
            sent
        })
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let r = fwd.join().unwrap();
    eprintln!(
        "{test}: sender {:.3} Mpps offered, forwarder {:.3} Mpps ({} of {sent}), rx missed {}",
        sent as f64 / secs / 1e6,
        r.forwarded as f64 / secs / 1e6,
        r.forwarded,
        r.rx_stats.imissed
    );
}

#[test]
#[ignore = "rough rate figure, run by hand"]
fn rate_af_xdp() {
    measure("rate_af_xdp", |pool: &Mempool| {
        let c0 = AfXdpConfig { fill_size: 2048, ..AfXdpConfig::new("f0") };
        let c1 = AfXdpConfig { fill_size: 2048, ..AfXdpConfig::new("f1") };
        Ok((AfXdpPort::open(0, c0, pool.clone())?, AfXdpPort::open(1, c1, pool.clone())?))
    });
}

#[test]
#[ignore = "rough rate figure, run by hand"]
fn rate_af_packet() {
    measure("rate_af_packet", |pool: &Mempool| {
        let c1 = AfPacketConfig { qdisc_bypass: true, ..AfPacketConfig::new("f1") };
        Ok((AfPacketPort::open(0, AfPacketConfig::new("f0"), pool.clone())?, AfPacketPort::open(1, c1, pool.clone())?))
    });
}

/// A frame the kernel's qdisc refuses after an AF_PACKET port handed it over (`sendto` fails
/// with `ENOBUFS`) is not lost: the kernel marks it for sending again, and it goes out, once,
/// with a later kick when the qdisc takes it. A `pfifo` of length 0 refuses every frame; the
/// test then removes it.
#[test]
fn af_packet_frames_a_full_qdisc_refuses_go_out_later() {
    if !netns::require_or_skip("af_packet_frames_a_full_qdisc_refuses_go_out_later") {
        return;
    }
    let (a, b) = (Netns::new("qfull").unwrap(), Netns::new("qpeer").unwrap());
    let _v = veth_pair_mq(&a, "q0", &b, "q1", 1).unwrap();
    a.exec(&["tc", "qdisc", "add", "dev", "q0", "root", "pfifo", "limit", "0"]).unwrap();
    const K: u32 = 10;
    let receiver = count_frames(&b, "q1", K, Duration::from_secs(5));
    let na = a.name().to_string();
    let (refused, stats, in_use) = a
        .run(move || {
            let pool = pool("qfull");
            let mut port = AfPacketPort::open(0, AfPacketConfig::new("q0"), pool.clone()).unwrap();
            let mut tx = port.tx_queue(0).unwrap();
            let mut b: Burst<Mbuf> = Burst::new();
            for seq in 0..K {
                assert!(b.push(mbuf_of(&pool, &frame(seq))).is_ok());
            }
            assert_eq!(tx.tx_burst(&mut b), K as usize, "the ring takes the whole burst");
            for _ in 0..K {
                tx.flush();
            }
            let qdisc = |args: &[&str]| {
                let o =
                    std::process::Command::new("ip").args(["netns", "exec", &na, "tc"]).args(args).output().unwrap();
                assert!(o.status.success(), "tc {args:?}: {}", String::from_utf8_lossy(&o.stderr));
                String::from_utf8_lossy(&o.stdout).into_owned()
            };
            let refused = qdisc(&["-s", "qdisc", "show", "dev", "q0"]);
            qdisc(&["qdisc", "del", "dev", "q0", "root"]);
            for _ in 0..10 {
                tx.flush();
                std::thread::sleep(Duration::from_millis(10));
            }
            let s = port.stats();
            drop((tx, port));
            (refused, s, pool.in_use())
        })
        .unwrap();
    assert!(!refused.contains("dropped 0,"), "the qdisc refused frames: {refused}");
    let seen = receiver.join().unwrap();
    assert!(seen.iter().all(|&c| c == 1), "each frame arrived once: {seen:?}");
    assert_eq!((stats.opackets, stats.oerrors), (K as u64, 0), "{stats:?}");
    assert_eq!(in_use, 0);
}

/// Sends `K` numbered frames through transmit queue 0 of the port `open` makes on `s0` (as
/// fast as its ring takes them), flushes once, drops the queue and the port at once, and
/// checks that each frame arrived on the peer `s1` at most once, that every one that did not
/// is one the receiving port counted as missed, and that the port counts them all sent
/// without errors. `slow_qdisc` puts a 2 Mbit/s `tbf` on `s0`.
fn pending_at_close_go_out<P: Port<Buf = Mbuf>>(
    tag: &str,
    slow_qdisc: bool,
    open: impl FnOnce(&Mempool) -> Result<P, PortError> + Send + 'static,
) {
    if !netns::require_or_skip(tag) {
        return;
    }
    let (a, b) = (Netns::new(&format!("{tag}_tx")).unwrap(), Netns::new(&format!("{tag}_rx")).unwrap());
    let _v = veth_pair_mq(&a, "s0", &b, "s1", 1).unwrap();
    if slow_qdisc {
        a.exec(&["tc", "qdisc", "add", "dev", "s0", "root", "tbf", "rate", "2mbit", "burst", "4kb", "limit", "10mb"])
            .unwrap();
    }
    const K: u32 = 3000;
    let (ready_tx, ready_rx) = mpsc::channel();
    let rtag = format!("{tag}_rx");
    let receiver = b
        .spawn(move || {
            // A packet-ring receiver (megabytes of ring) keeps up with an unpaced sender.
            let pool = pool(&rtag);
            let mut port = AfPacketPort::open(0, AfPacketConfig::new("s1"), pool.clone()).unwrap();
            let mut rx = port.rx_queue(0).unwrap();
            ready_tx.send(()).unwrap();
            let mut burst: Burst<Mbuf> = Burst::new();
            let seen = tally(K, Duration::from_secs(10), |got| {
                if rx.rx_burst(&mut burst, 32) == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
                for m in burst.iter() {
                    got(m.data());
                }
                burst.clear();
            });
            (seen, port.stats().imissed)
        })
        .unwrap();
    ready_rx.recv().unwrap();
    let ptag = tag.to_string();
    let (stats, in_use) = a
        .run(move || {
            let pool = pool(&ptag);
            let mut port = open(&pool).unwrap();
            let mut tx = port.tx_queue(0).unwrap();
            let mut b: Burst<Mbuf> = Burst::new();
            let mut seq = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while seq < K || !b.is_empty() {
                while seq < K && !b.is_full() {
                    assert!(b.push(mbuf_of(&pool, &frame(seq))).is_ok());
                    seq += 1;
                }
                if tx.tx_burst(&mut b) == 0 {
                    assert!(Instant::now() < deadline, "the ring never took frame {seq}");
                    tx.flush();
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            tx.flush();
            drop(tx);
            let s = port.stats();
            drop(port);
            (s, pool.in_use())
        })
        .unwrap();
    let (seen, missed) = receiver.join().unwrap();
    let missing: Vec<usize> = seen.iter().enumerate().filter(|(_, &c)| c == 0).map(|(i, _)| i).collect();
    // The receiving port may miss a frame when the host starves it (it counts each one): every
    // frame that did not arrive must be one of those.
    assert_eq!(
        missing.len() as u64,
        missed,
        "{} of {K} frames never arrived (the receiver missed {missed}), first {:?}",
        missing.len(),
        &missing[..missing.len().min(8)]
    );
    assert!(seen.iter().all(|&c| c <= 1), "a frame arrived twice");
    assert_eq!((stats.opackets, stats.oerrors), (K as u64, 0), "{stats:?}");
    assert_eq!(in_use, 0);
}

/// Frames an AF_PACKET transmit queue took are sent even when the queue is dropped right after
/// its last flush: while a slow link (a `tbf` qdisc) holds earlier frames, the socket's send
/// buffer is full, the kernel leaves later frames marked in the ring (`sendto` gives `EAGAIN`),
/// and closing the socket then would lose them. Dropping the queue waits until the kernel has
/// taken every marked frame.
#[test]
fn af_packet_frames_pending_at_close_still_go_out() {
    pending_at_close_go_out("afp_close", true, |pool| AfPacketPort::open(0, AfPacketConfig::new("s0"), pool.clone()));
}

/// The same for an AF_XDP transmit queue: in copy mode a kick sends a bounded batch, so
/// frames the last flush did not reach would be lost with the socket.
#[test]
fn af_xdp_frames_pending_at_close_still_go_out() {
    pending_at_close_go_out("xdp_close", false, |pool| {
        AfXdpPort::open(0, AfXdpConfig { fill_size: 1024, ..AfXdpConfig::new("s0") }, pool.clone())
    });
}

/// A frame longer than the interface's MTU allows is a counted transmit error, and the frames
/// after it go out at once. The limit is MTU + 14, and MTU + 18 only for an 802.1Q-tagged
/// frame ([`dataplane::port`]'s `FrameLimit`).
/// - AF_PACKET: the kernel refuses such a frame (`EMSGSIZE`). Without `PACKET_LOSS` it would
///   stay at the head of the ring, holding back every later frame until the ring wrapped
///   around to it; with it, an untagged frame of MTU + 16 used to be counted as sent, and lost.
/// - AF_XDP: the kernel hands any length to the driver, and veth dropped the 1600-byte frame
///   (its own counter) after the port had counted it as sent.
fn frame_over_the_mtu_is_counted_and_blocks_nothing<P: Port<Buf = Mbuf>>(
    tag: &str,
    open: impl FnOnce(&Mempool) -> Result<P, PortError> + Send + 'static,
) {
    if !netns::require_or_skip(tag) {
        return;
    }
    let (a, b) = (Netns::new(&format!("{tag}_tx")).unwrap(), Netns::new(&format!("{tag}_rx")).unwrap());
    let _v = veth_pair_mq(&a, "m0", &b, "m1", 1).unwrap();
    const K: u32 = 10;
    let receiver = count_frames(&b, "m1", K, Duration::from_millis(1500));
    let ptag = tag.to_string();
    let (stats_before_drop, in_use) = a
        .run(move || {
            let pool = pool(&ptag);
            let mut port = open(&pool).unwrap();
            let mut tx = port.tx_queue(0).unwrap();
            let mut b: Burst<Mbuf> = Burst::new();
            // A 1500-byte MTU: at most 1514 bytes untagged, 1518 with an 802.1Q tag.
            for seq in 0..K {
                let mut f = frame(seq);
                match seq {
                    3 => f.resize(1600, 0), // over both limits
                    5 => f.resize(1516, 0), // untagged, 2 bytes over
                    7 => {
                        // Tagged (VLAN 7), at the limit: sent. veth strips the tag on receipt.
                        f.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
                        f.resize(1518, 0);
                    }
                    _ => {}
                }
                assert!(b.push(mbuf_of(&pool, &f)).is_ok());
            }
            assert_eq!(tx.tx_burst(&mut b), K as usize, "the ring takes the whole burst");
            for _ in 0..10 {
                tx.flush();
                std::thread::sleep(Duration::from_millis(20));
            }
            // Before the queue's drop, which would count what is still held back.
            let s = port.stats();
            drop((tx, port));
            (s, pool.in_use())
        })
        .unwrap();
    let seen = receiver.join().unwrap();
    let want: Vec<u32> = (0..K).map(|s| u32::from(s != 3 && s != 5)).collect();
    assert_eq!(seen, want, "every frame but the two oversized ones arrived, once");
    assert_eq!((stats_before_drop.opackets, stats_before_drop.oerrors), (K as u64 - 2, 2), "{stats_before_drop:?}");
    assert_eq!(in_use, 0);
}

#[test]
fn af_packet_frame_over_the_mtu_is_counted_and_blocks_nothing() {
    frame_over_the_mtu_is_counted_and_blocks_nothing("afp_mtu", |pool| {
        AfPacketPort::open(0, AfPacketConfig::new("m0"), pool.clone())
    });
}

#[test]
fn af_xdp_frame_over_the_mtu_is_counted_and_blocks_nothing() {
    frame_over_the_mtu_is_counted_and_blocks_nothing("xdp_mtu", |pool| {
        AfXdpPort::open(0, AfXdpConfig::new("m0"), pool.clone())
    });
}
