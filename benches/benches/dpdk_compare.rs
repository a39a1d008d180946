//! Our code against DPDK's on the same machine in the same process (feature `dpdk`, root):
//!
//! - `ring_vs_rte_ring`: burst enqueue + dequeue on one thread, per element, at bursts 8 and
//!   32: our MPMC `Ring<u64>` and SPSC channel against `rte_ring` in SP/SC and MP/MC modes
//!   (8-byte elements on both sides: u64 here, `void *` there).
//! - `l2fwd_dpdk`: one `Lcore::poll_once` over two net_null vdevs opened as `DpdkPort`s
//!   (rx 32 from each, l2fwd rewrite, tx), in packets.
//!
//! EAL runs with `--no-huge --no-pci -m 512 -l 1` (main lcore pinned to cpu 1).
//! Run: `cargo bench -p dataplane-benches --features dpdk --bench dpdk_compare`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::burst::Burst;
use dataplane::dpdk::{DpdkDevice, DpdkMempool, DpdkMempoolConfig, DpdkPort, DpdkPortConfig, Eal, RteRing};
use dataplane::fwd::L2Fwd;
use dataplane::lcore::Lcore;
use dataplane::port::Port;
use dataplane::ring::{spsc, Ring};
use std::ffi::c_void;
use std::hint::black_box;

fn eal() {
    if Eal::get().is_some() {
        return;
    }
    let prefix = format!("dpb-{}", std::process::id());
    let args: Vec<String> = [
        "-l",
        "1",
        "--no-huge",
        "--no-pci",
        "-m",
        "512",
        "--no-telemetry",
        "--log-level=warning",
        "--file-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Eal::init(&args).expect("EAL init (run as root)");
}

fn rings(c: &mut Criterion) {
    eal();
    let mut g = c.benchmark_group("ring_vs_rte_ring");
    for burst in [8usize, 32] {
        g.throughput(Throughput::Elements(burst as u64));
        let src: Vec<u64> = (1..=burst as u64).collect();
        let mut dst = vec![0u64; burst];
        let psrc: Vec<*mut c_void> = src.iter().map(|&v| v as usize as *mut c_void).collect();
        let mut pdst = vec![std::ptr::null_mut::<c_void>(); burst];

        let mpmc = Ring::<u64>::new(1024).unwrap();
        g.bench_with_input(BenchmarkId::new("ours_mpmc", burst), &burst, |b, _| {
            b.iter(|| {
                let n = mpmc.enqueue_slice(black_box(&src));
                let m = mpmc.dequeue_slice(black_box(&mut dst));
                black_box((n, m));
            })
        });
        let (tx, rx) = spsc::channel::<u64>(1024).unwrap();
        g.bench_with_input(BenchmarkId::new("ours_spsc", burst), &burst, |b, _| {
            b.iter(|| {
                let n = tx.enqueue_slice(black_box(&src));
                let m = rx.dequeue_slice(black_box(&mut dst));
                black_box((n, m));
            })
        });
        for (name, single) in [("rte_ring_sp_sc", true), ("rte_ring_mp_mc", false)] {
            let r = RteRing::new(&format!("bench_{name}_{burst}"), 1024, single, single).unwrap();
            g.bench_with_input(BenchmarkId::new(name, burst), &burst, |b, _| {
                b.iter(|| {
                    let n = r.enqueue_burst(black_box(&psrc));
                    let m = r.dequeue_burst(black_box(&mut pdst));
                    black_box((n, m));
                })
            });
        }
    }
    g.finish();
}

fn l2fwd(c: &mut Criterion) {
    eal();
    let pool = DpdkMempool::new(DpdkMempoolConfig::new("bench_pool", 8191)).unwrap();
    let open = |id: u16| {
        let cfg = DpdkPortConfig { id: Some(id), pool: Some(pool.clone()), ..Default::default() };
        DpdkPort::open(DpdkDevice::Devargs(format!("net_null{id}")), cfg).unwrap()
    };
    let (mut p0, mut p1) = (open(0), open(1));
    let mut fwd = L2Fwd::new();
    fwd.pair(0, 1).set_port_mac(0, p0.mac()).set_port_mac(1, p1.mac());
    let mut l = Lcore::new("bench", None, fwd);
    l.add_rx(0, p0.rx_queue(0).unwrap()).add_rx(1, p1.rx_queue(0).unwrap());
    l.add_tx(0, p0.tx_queue(0).unwrap()).unwrap();
    l.add_tx(1, p1.tx_queue(0).unwrap()).unwrap();
    let mut burst = Burst::new();
    let mut g = c.benchmark_group("l2fwd_dpdk");
    g.throughput(Throughput::Elements(64));
    g.bench_function("net_null-net_null-1core", |b| b.iter(|| l.poll_once(&mut burst, false)));
    g.finish();
    drop(l);
    drop((p0, p1));
    assert_eq!(pool.in_use(), 0);
}

criterion_group!(benches, rings, l2fwd);
criterion_main!(benches);
