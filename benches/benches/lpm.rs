//! Route lookup benchmarks: `Lpm4` on a synthetic 1.08M-route IPv4 table with the
//! prefix-length distribution of the anchor measurement (see `routes4`), `Lpm6` on a smaller table, and the
//! exact-match table. Keys are seeded random: 7/8 drawn from inside a random route, 1/8 from
//! 224.0.0.0/3 where no route lives (misses).
//!
//! Each lookup group (`lpm4_lookup`, `lpm6_lookup`) times one pass over the same key array
//! and reports lookups/s; a DPDK `rte_lpm` twin can be added to the same group as another
//! `bench_function` ("dpdk_single", "dpdk_bulk") over the same `keys` vector so criterion puts the
//! two side by side. Table construction happens once, outside the timed loops; its time
//! and the memory figures are printed to stderr.
//!
//! Run: `cargo bench -p dataplane-benches --bench lpm`.
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::lpm::{BulkImpl, EmConfig, EmKey, EmTable, Ipv4FiveTuple, Lpm4, Lpm4Config, Lpm6, Lpm6Config, MISS};
use std::time::{Duration, Instant};

/// (prefix length, number of routes) of the anchor's IPv4 table (1 088 676 routes).
const DIST4: [(u8, u32); 22] = [
    (8, 201),
    (12, 381),
    (13, 775),
    (14, 2104),
    (15, 3712),
    (16, 69319),
    (17, 12983),
    (18, 23667),
    (19, 69068),
    (20, 62354),
    (21, 48531),
    (22, 72355),
    (23, 85427),
    (24, 583900),
    (25, 2654),
    (26, 5650),
    (27, 6467),
    (28, 7127),
    (29, 12936),
    (30, 5999),
    (31, 13),
    (32, 984),
];

/// Keys per timed pass.
const KEYS: usize = 1 << 16;
/// Burst size of the burst lookups (the worker's rx burst).
const BURST: usize = 32;

/// SplitMix64: small, seeded, good enough for synthetic tables.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mask4(d: u8) -> u32 {
    if d == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(d))
    }
}

/// The synthetic IPv4 routes: distinct prefixes with first octet below 224
/// (1 076 701 routes: the anchor's distribution with /16 capped at 57 344).
fn routes4(rng: &mut Rng) -> Vec<(u32, u8, u32)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for &(d, n) in &DIST4 {
        // The anchor has more /16s (69 319) than exist below 224.0.0.0 (57 344): take them all.
        let n = n.min(224 << (d - 8));
        let mut made = 0;
        while made < n {
            let p = (rng.next() as u32 % (224 << 24)) & mask4(d);
            if seen.insert((p, d)) {
                out.push((p, d, rng.below(1 << 16) as u32));
                made += 1;
            }
        }
    }
    out
}

/// Keys: 7/8 inside a random route, 1/8 in 224.0.0.0/3 (no route there).
fn keys4(rng: &mut Rng, routes: &[(u32, u8, u32)]) -> Vec<u32> {
    (0..KEYS)
        .map(|_| {
            if rng.below(8) == 0 {
                (224 << 24) | (rng.next() as u32 & 0x1fff_ffff)
            } else {
                let (p, d, _) = routes[rng.below(routes.len() as u64) as usize];
                p | (rng.next() as u32 & !mask4(d))
            }
        })
        .collect()
}

/// Fewest TSC cycles per key over 50 passes of `f` over the `KEYS` keys.
fn best_cycles(mut f: impl FnMut() -> usize) -> f64 {
    let mut best = u64::MAX;
    for _ in 0..50 {
        let t0 = dataplane::arch::cycles();
        black_box(f());
        best = best.min(dataplane::arch::cycles().wrapping_sub(t0));
    }
    best as f64 / KEYS as f64
}

fn build4(routes: &[(u32, u8, u32)]) -> (Lpm4, Duration) {
    let cfg = Lpm4Config { max_rules: 1 << 21, tbl8_groups: 1 << 16 };
    let t0 = Instant::now();
    let mut t = Lpm4::new(cfg).expect("config");
    for &(p, d, h) in routes {
        t.add(p, d, h).expect("add");
    }
    (t, t0.elapsed())
}

fn bench_lpm4(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_1e55);
    let routes = routes4(&mut rng);
    let keys = keys4(&mut rng, &routes);
    let (mut t, took) = build4(&routes);
    let misses = keys.iter().filter(|&&k| t.lookup(k).is_none()).count();
    eprintln!(
        "lpm4: {} routes built in {:.2?} ({:.0} ns/add), {} tbl8 groups in use, memory {:.1} MiB, \
         {:.1}% misses, bulk impl {:?}, TSC {:.3} GHz",
        t.len(),
        took,
        took.as_nanos() as f64 / routes.len() as f64,
        t.tbl8_groups_in_use(),
        t.memory_bytes() as f64 / (1 << 20) as f64,
        100.0 * misses as f64 / keys.len() as f64,
        t.bulk_impl(),
        dataplane::arch::cycles_per_sec() as f64 / 1e9,
    );

    // Best of 50 passes in TSC cycles per lookup: on a shared machine the fastest pass is
    // the one least disturbed by other processes (criterion's figures are medians).
    let mut out = vec![0u32; BURST];
    let single = best_cycles(|| keys.iter().map(|&k| t.lookup(k).unwrap_or(MISS) as usize).sum());
    let mut burst = |t: &Lpm4| best_cycles(|| keys.chunks_exact(BURST).map(|ch| t.lookup_bulk(ch, &mut out)).sum());
    let b_simd = burst(&t);
    t.set_bulk_impl(BulkImpl::Scalar);
    let b_scalar = burst(&t);
    t.set_bulk_impl(BulkImpl::detect());
    eprintln!(
        "lpm4 best-of-50 TSC cycles/lookup: single {single:.1}, burst{BURST} {:?} {b_simd:.1}, \
         burst{BURST} scalar {b_scalar:.1}",
        t.bulk_impl()
    );

    let mut g = c.benchmark_group("lpm4_lookup");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.bench_function("rust_single", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &k in black_box(&keys) {
                acc = acc.wrapping_add(t.lookup(k).unwrap_or(MISS));
            }
            acc
        })
    });
    let mut out = vec![0u32; BURST];
    let detected = BulkImpl::detect();
    for imp in [detected, BulkImpl::Scalar] {
        if imp == BulkImpl::Scalar && detected == BulkImpl::Scalar {
            continue;
        }
        t.set_bulk_impl(imp);
        let name = format!("rust_burst{BURST}_{imp:?}").to_lowercase();
        g.bench_function(&name, |b| {
            b.iter(|| {
                let mut hits = 0;
                for chunk in black_box(&keys).chunks_exact(BURST) {
                    hits += t.lookup_bulk(chunk, &mut out);
                }
                hits
            })
        });
    }
    t.set_bulk_impl(detected);
    g.finish();

    // Update cost on the full table: delete a route and add it back (two operations).
    let mut g = c.benchmark_group("lpm4_update");
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (label, lo, hi) in [("le24", 0u8, 24u8), ("gt24", 25, 32)] {
        let sel: Vec<_> = routes.iter().filter(|r| r.1 >= lo && r.1 <= hi).copied().collect();
        // Spread over the lengths as the table is (mostly /24s), not the first (shortest).
        let pick: Vec<_> = sel.iter().step_by((sel.len() / 4096).max(1)).copied().collect();
        g.throughput(Throughput::Elements(2 * pick.len() as u64));
        g.bench_function(BenchmarkId::new("rust_delete_add", label), |b| {
            b.iter(|| {
                for &(p, d, h) in &pick {
                    t.delete(p, d).expect("present");
                    t.add(p, d, h).expect("fits");
                }
            })
        });
    }
    g.finish();
}

/// IPv6: 50 000 routes, lengths /20–/64 and some /128, under 4000 /32s of 2000::/4.
fn bench_lpm6(c: &mut Criterion) {
    let mut rng = Rng(0x6666_1e55);
    let dist: [(u8, u32); 8] =
        [(20, 100), (28, 500), (32, 2000), (40, 4000), (48, 25000), (56, 5000), (64, 13000), (128, 400)];
    let mut seen = std::collections::HashSet::new();
    let mut routes = Vec::new();
    // Draw from a pool of /32s so that longer prefixes share trie groups, as real tables do.
    let pool: Vec<u128> =
        (0..4000).map(|_| (0x2u128 << 124) | (u128::from(rng.next() as u32 & 0x0fff_ffff) << 96)).collect();
    for &(d, n) in &dist {
        let mut made = 0;
        while made < n {
            let base = pool[rng.below(pool.len() as u64) as usize];
            let a = base | (u128::from(rng.next()) << 32) | u128::from(rng.next() as u32);
            let p = a & (u128::MAX << (128 - u32::from(d)));
            if seen.insert((p, d)) {
                routes.push((p, d, rng.below(1 << 16) as u32));
                made += 1;
            }
        }
    }
    let t0 = Instant::now();
    let mut t = Lpm6::new(Lpm6Config { max_rules: 1 << 18, tbl8_groups: 1 << 18 }).expect("config");
    for &(p, d, h) in &routes {
        t.add(p.to_be_bytes(), d, h).expect("add");
    }
    let took = t0.elapsed();
    let keys: Vec<[u8; 16]> = (0..KEYS)
        .map(|_| {
            if rng.below(8) == 0 {
                ((0xfu128 << 124) | u128::from(rng.next())).to_be_bytes()
            } else {
                let (p, d, _) = routes[rng.below(routes.len() as u64) as usize];
                let host = if d == 128 {
                    0
                } else {
                    (u128::from(rng.next()) << 64 | u128::from(rng.next())) & !(u128::MAX << (128 - u32::from(d)))
                };
                (p | host).to_be_bytes()
            }
        })
        .collect();
    let misses = keys.iter().filter(|k| t.lookup(k).is_none()).count();
    eprintln!(
        "lpm6: {} routes built in {:.2?} ({:.0} ns/add), {} tbl8 groups in use, memory {:.1} MiB, {:.1}% misses",
        t.len(),
        took,
        took.as_nanos() as f64 / routes.len() as f64,
        t.tbl8_groups_in_use(),
        t.memory_bytes() as f64 / (1 << 20) as f64,
        100.0 * misses as f64 / keys.len() as f64,
    );
    let mut out = vec![0u32; BURST];
    let single = best_cycles(|| keys.iter().map(|k| t.lookup(k).unwrap_or(MISS) as usize).sum());
    let burst = best_cycles(|| keys.chunks_exact(BURST).map(|ch| t.lookup_bulk(ch, &mut out)).sum());
    eprintln!("lpm6 best-of-50 TSC cycles/lookup: single {single:.1}, burst{BURST} {burst:.1}");
    let mut g = c.benchmark_group("lpm6_lookup");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.bench_function("rust_single", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for k in black_box(&keys) {
                acc = acc.wrapping_add(t.lookup(k).unwrap_or(MISS));
            }
            acc
        })
    });
    let mut out = vec![0u32; BURST];
    g.bench_function(format!("rust_burst{BURST}"), |b| {
        b.iter(|| {
            let mut hits = 0;
            for chunk in black_box(&keys).chunks_exact(BURST) {
                hits += t.lookup_bulk(chunk, &mut out);
            }
            hits
        })
    });
    g.finish();
    let mut g = c.benchmark_group("lpm6_update");
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let pick: Vec<_> = routes.iter().step_by(routes.len() / 2048).copied().collect();
    g.throughput(Throughput::Elements(2 * pick.len() as u64));
    g.bench_function("rust_delete_add", |b| {
        b.iter(|| {
            for &(p, d, h) in &pick {
                t.delete(p.to_be_bytes(), d).expect("present");
                t.add(p.to_be_bytes(), d, h).expect("fits");
            }
        })
    });
    g.finish();
}

/// Exact match: 1M flows, burst lookups with precomputed hashes (7/8 hits).
fn bench_em(c: &mut Criterion) {
    let mut rng = Rng(0xe4e4);
    let n = 1 << 20;
    let mut t = EmTable::new(EmConfig { capacity: n }).expect("config");
    let flows: Vec<Ipv4FiveTuple> = (0..n)
        .map(|_| Ipv4FiveTuple {
            src_ip: rng.next() as u32,
            dst_ip: rng.next() as u32,
            src_port: rng.next() as u16,
            dst_port: rng.next() as u16,
            proto: 17,
        })
        .collect();
    let t0 = Instant::now();
    for (i, f) in flows.iter().enumerate() {
        t.insert(*f, i as u32).expect("insert");
    }
    let took = t0.elapsed();
    let keys: Vec<Ipv4FiveTuple> = (0..KEYS)
        .map(|_| {
            let f = flows[rng.below(n as u64) as usize];
            if rng.below(8) == 0 {
                Ipv4FiveTuple { proto: 6, ..f }
            } else {
                f
            }
        })
        .collect();
    let hashes: Vec<u32> = keys.iter().map(|k| k.flow_hash()).collect();
    eprintln!(
        "em: {} flows inserted in {:.2?} ({:.0} ns/insert), memory {:.1} MiB",
        t.len(),
        took,
        took.as_nanos() as f64 / n as f64,
        t.memory_bytes() as f64 / (1 << 20) as f64
    );
    let mut out = vec![0u32; BURST];
    let burst = best_cycles(|| {
        hashes.chunks_exact(BURST).zip(keys.chunks_exact(BURST)).map(|(h, k)| t.lookup_bulk(h, k, &mut out)).sum()
    });
    eprintln!("em best-of-50 TSC cycles/lookup: burst{BURST} prehashed {burst:.1}");
    let mut g = c.benchmark_group("em4_lookup");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let mut out = vec![0u32; BURST];
    g.bench_function(format!("rust_burst{BURST}_prehashed"), |b| {
        b.iter(|| {
            let mut hits = 0;
            for (h, k) in black_box(&hashes).chunks_exact(BURST).zip(keys.chunks_exact(BURST)) {
                hits += t.lookup_bulk(h, k, &mut out);
            }
            hits
        })
    });
    g.finish();
}

criterion_group!(benches, bench_lpm4, bench_lpm6, bench_em);
criterion_main!(benches);
