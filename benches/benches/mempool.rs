//! Mempool get/put in bursts from one thread's cache, and one mbuf at a time.
//! Run: `cargo bench -p dataplane-benches --bench mempool`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::burst::Burst;
use dataplane::mbuf::{Mbuf, Mempool, MempoolConfig};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let pool = Mempool::new(MempoolConfig::new("bench", 8192)).unwrap();
    let mut g = c.benchmark_group("mempool");
    for n in [1usize, 8, 32, 128] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("alloc_bulk+free_bulk", n), &n, |b, &n| {
            let mut burst: Burst<Mbuf> = Burst::new();
            b.iter(|| {
                pool.alloc_bulk(&mut burst, n).unwrap();
                black_box(&burst);
                Mbuf::free_bulk(&mut burst);
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("alloc+drop", |b| b.iter(|| drop(black_box(pool.alloc().unwrap()))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
