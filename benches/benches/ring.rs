//! Ring burst enqueue + dequeue on one thread, per element, for our SPSC and MPMC rings side
//! by side with `crossbeam::queue::ArrayQueue` doing the same number of push + pop.
//! Run: `cargo bench -p dataplane-benches --bench ring`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use dataplane::ring::{spsc, Ring};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    for burst in [8usize, 32] {
        g.throughput(Throughput::Elements(burst as u64));
        let src: Vec<u64> = (0..burst as u64).collect();
        let mut dst = vec![0u64; burst];

        let mpmc = Ring::<u64>::new(1024).unwrap();
        g.bench_with_input(BenchmarkId::new("mpmc", burst), &burst, |b, _| {
            b.iter(|| {
                let n = mpmc.enqueue_slice(black_box(&src));
                let m = mpmc.dequeue_slice(black_box(&mut dst));
                black_box((n, m));
            })
        });

        let (tx, rx) = spsc::channel::<u64>(1024).unwrap();
        g.bench_with_input(BenchmarkId::new("spsc", burst), &burst, |b, _| {
            b.iter(|| {
                let n = tx.enqueue_slice(black_box(&src));
                let m = rx.dequeue_slice(black_box(&mut dst));
                black_box((n, m));
            })
        });

        let aq = ArrayQueue::<u64>::new(1024);
        g.bench_with_input(BenchmarkId::new("crossbeam_arrayqueue", burst), &burst, |b, _| {
            b.iter(|| {
                for &v in black_box(&src) {
                    let _ = aq.push(v);
                }
                for d in dst.iter_mut() {
                    *d = aq.pop().unwrap_or(0);
                }
                black_box(&dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
