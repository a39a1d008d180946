//! The null → l2fwd → null loop on one core: what `vnf-l2fwd demo` runs, one iteration of the
//! lcore loop per criterion iteration (rx 32 from each of two null ports, rewrite, tx).
//! Throughput is in packets. Run: `cargo bench -p dataplane-benches --bench l2fwd`
//! The DPDK anchor (testpmd mac mode on two net_null vdevs) is run side by side by
//! `ci/bench`; see BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::burst::Burst;
use dataplane::fwd::L2Fwd;
use dataplane::lcore::Lcore;
use dataplane::mbuf::{Mempool, MempoolConfig};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::Port;

fn bench(c: &mut Criterion) {
    let pool = Mempool::new(MempoolConfig::new("bench", 8192)).unwrap();
    let mut p0 = NullPort::new(0, NullConfig::new(0), pool.clone()).unwrap();
    let mut p1 = NullPort::new(1, NullConfig::new(1), pool.clone()).unwrap();
    let mut fwd = L2Fwd::new();
    fwd.pair(0, 1).set_port_mac(0, p0.mac()).set_port_mac(1, p1.mac());
    let mut l = Lcore::new("bench", None, fwd);
    l.add_rx(0, p0.rx_queue(0).unwrap()).add_rx(1, p1.rx_queue(0).unwrap());
    l.add_tx(0, p0.tx_queue(0).unwrap()).unwrap();
    l.add_tx(1, p1.tx_queue(0).unwrap()).unwrap();
    let mut burst = Burst::new();
    let mut g = c.benchmark_group("l2fwd");
    g.throughput(Throughput::Elements(64));
    g.bench_function("null-null-1core", |b| b.iter(|| l.poll_once(&mut burst, false)));
    g.finish();
    drop(l);
    assert_eq!(pool.in_use(), 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
