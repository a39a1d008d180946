//! Exact loss / duplicate / reorder accounting: a crafted sequence fed to the tracker
//! directly, to the receiver through a `ring` port pair, and a whole trial over a ring pair.

use dataplane::mbuf::Mbuf;
use dataplane::port::ring::RingPort;
use dataplane::port::Port;
use dataplane::Burst;
use pktgen::engine::{receive, run_trial, Opener, Side, TrialConfig};
use pktgen::frame::{FrameSize, GenConfig, Signature};
use pktgen::ports::{pool_for, DynPort};
use pktgen::rx::Receiver;
use pktgen::seq::SeqTracker;
use pktgen::tx::TxConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Flow 0: 0..20 with 5 and 11 dropped, 7 sent three times, 14 and 15 swapped, 3 after 9.
/// Flow 1: 0..10 with 9 (the last) dropped and 0 duplicated at the end.
fn crafted() -> (Vec<(u16, u64)>, [u64; 2]) {
    let mut f0: Vec<u64> = vec![0, 1, 2, 4, 6, 7, 7, 8, 9, 3, 7, 10, 12, 13, 15, 14, 16, 17, 18, 19];
    f0.retain(|&s| s != 5 && s != 11);
    let f1: Vec<u64> = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    let mut v = Vec::new();
    let n = f0.len().max(f1.len());
    for i in 0..n {
        if let Some(&s) = f0.get(i) {
            v.push((0, s));
        }
        if let Some(&s) = f1.get(i) {
            v.push((1, s));
        }
    }
    (v, [20, 10])
}

fn check(c0: pktgen::seq::SeqCounts, c1: pktgen::seq::SeqCounts) {
    // flow 0: 20 sent, 18 distinct (5 and 11 lost), 7 twice more, 3 and 14 late.
    assert_eq!((c0.received, c0.unique, c0.lost, c0.duplicated, c0.reordered), (20, 18, 2, 2, 2));
    // flow 1: 10 sent, 9 distinct, 9 lost, one duplicate 0 (a duplicate, not a reorder).
    assert_eq!((c1.received, c1.unique, c1.lost, c1.duplicated, c1.reordered), (10, 9, 1, 1, 0));
}

#[test]
fn tracker_directly() {
    let (v, sent) = crafted();
    let mut t = [SeqTracker::new(), SeqTracker::new()];
    for (f, s) in v {
        t[f as usize].record(s);
    }
    check(t[0].counts(Some(sent[0])), t[1].counts(Some(sent[1])));
}

#[test]
fn through_a_ring_port_pair() {
    let (v, sent) = crafted();
    let g = GenConfig { flows: 2, ..GenConfig::default() };
    let pool = pool_for("acct", 128, 256).unwrap();
    let (mut a, b) = RingPort::<Mbuf>::pair(0, 1, 1, 256).unwrap();
    let mut txq = a.tx_queue(0).unwrap();
    let mut burst: Burst<Mbuf> = Burst::new();
    for &(flow, seq) in &v {
        let mut f = g.template(flow, 64);
        Signature { flow, seq, tx_ns: pktgen::now_ns() as u32 }.write(&mut f[g.header_len()..]);
        burst.push(Mbuf::from_slice(&pool, &f).unwrap()).unwrap();
    }
    // Plus one frame that is not ours.
    burst.push(Mbuf::from_slice(&pool, &[0u8; 60]).unwrap()).unwrap();
    assert_eq!(txq.tx_burst(&mut burst), v.len() + 1);
    let mut port: DynPort = Box::new(b);
    let mut r = Receiver::new(2, g.dst_port);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        s2.store(true, Ordering::Relaxed);
    });
    receive(&mut port, &mut r, &stop, || {}).unwrap();
    t.join().unwrap();
    let rep = r.report(&sent, Some(1.0));
    check(rep.flows[0].counts, rep.flows[1].counts);
    assert_eq!(rep.foreign, 1);
    assert_eq!(rep.total.lost, 3);
    assert_eq!(rep.latency.count, 27, "one latency sample per distinct packet");
    assert!(rep.latency.max_ns < 1_000_000_000);
}

fn once(p: DynPort, pool: dataplane::Mempool) -> Opener {
    let slot = Mutex::new(Some((p, pool)));
    Arc::new(move || slot.lock().unwrap().take().ok_or_else(|| "port already used".to_string()))
}

#[test]
fn a_whole_trial_over_a_ring_pair_loses_nothing() {
    let (a, b) = RingPort::<Mbuf>::pair(0, 1, 1, 4096).unwrap();
    let pool = pool_for("trial", 1600, 8192).unwrap();
    let cfg = TrialConfig {
        gen: GenConfig { flows: 7, size: FrameSize::Imix, vlan: Some(42), ..GenConfig::default() },
        tx: TxConfig { rate_pps: Some(200_000.0), duration: Duration::from_secs(5), count: Some(10_000), burst: 32 },
        drain: Duration::from_millis(200),
    };
    let r = run_trial(
        &cfg,
        Side { open: once(Box::new(a), pool.clone()), ns: None },
        Side { open: once(Box::new(b), pool.clone()), ns: None },
    )
    .unwrap();
    assert_eq!(r.sent, Some(10_000));
    assert_eq!((r.total.received, r.total.lost, r.total.duplicated, r.total.reordered), (10_000, 0, 0, 0));
    assert_eq!(r.flows.len(), 7);
    assert_eq!(r.flows[0].sent, Some(1429));
    assert_eq!(r.foreign, 0);
    assert!(r.latency.count == 10_000 && r.latency.p99_ns > 0);
}
