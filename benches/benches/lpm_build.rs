//! Route-table construction: how long l3fwd takes to build its LPM tables from a route list
//! (at start and at every reload), and how much memory they take.
//!
//! Each case is a seeded, deterministic list of routes in random order, built with
//! `L3FwdTables::from_lpm_routes` (what `vnf-l2fwd l3fwd` runs on its parsed route files,
//! sizing the tables to the routes):
//! - `v4_uniform8_32`: 2 000 000 IPv4 routes, random prefixes with lengths uniform in
//!   8..=32 (about 1.35 M distinct; the short prefixes come back many times with new next
//!   hops, as in a route file of random prefixes; ~627 000 /24s hold a route longer than /24).
//! - `v4_24`: 2 000 000 random /24s.
//! - `v4_anchor_shuffled`: the anchor's length distribution of `lpm.rs` (1.08 M distinct
//!   routes, mostly /24 and /16–/23) in random order.
//! - `v6_uniform8_64`: 200 000 IPv6 routes, random prefixes with lengths uniform in 8..=64
//!   (plus one IPv4 route).
//!
//! Before timing, each case is built once and its build time, the growth of the resident
//! set and the table's own figures (`Lpm4::memory_bytes`, tbl8 groups) go to stderr.
//!
//! Run: `cargo bench -p dataplane-benches --bench lpm_build` (about 2 min; needs ~1.2 GiB).
mod common;
use common::DIST4;
use criterion::{criterion_group, criterion_main, Criterion};
use dataplane::l3fwd::L3FwdTables;
use dataplane::lpm::{Lpm4, Lpm4Config, Route4, Route6};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

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

fn route4(p: u32, depth: u8, next_hop: u32) -> Route4 {
    let mask = if depth == 0 { 0 } else { u32::MAX << (32 - u32::from(depth)) };
    Route4 { prefix: Ipv4Addr::from(p & mask), depth, next_hop }
}

/// `n` routes of random prefixes, lengths drawn by `depth`, next hops below 16.
fn random4(rng: &mut Rng, n: usize, mut depth: impl FnMut(&mut Rng) -> u8) -> Vec<Route4> {
    (0..n)
        .map(|_| {
            let d = depth(rng);
            route4(rng.next() as u32, d, rng.below(16) as u32)
        })
        .collect()
}

/// Distinct routes of the anchor's distribution (at most as many per length as exist
/// below 224.0.0.0), shuffled.
fn anchor_shuffled(rng: &mut Rng) -> Vec<Route4> {
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    for &(d, n) in &DIST4 {
        let n = n.min(224 << (d - 8));
        let mut made = 0;
        while made < n {
            let r = route4(rng.next() as u32 % (224 << 24), d, rng.below(16) as u32);
            if seen.insert((r.prefix, d)) {
                v.push(r);
                made += 1;
            }
        }
    }
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    v
}

/// `n` IPv6 routes of random prefixes with lengths uniform in `lo..=hi`.
fn random6(rng: &mut Rng, n: usize, lo: u8, hi: u8) -> Vec<Route6> {
    (0..n)
        .map(|_| {
            let d = lo + rng.below(u64::from(hi - lo) + 1) as u8;
            let p = u128::from(rng.next()) << 64 | u128::from(rng.next());
            let mask = if d == 0 { 0 } else { u128::MAX << (128 - u32::from(d)) };
            Route6 { prefix: Ipv6Addr::from(p & mask), depth: d, next_hop: rng.below(16) as u32 }
        })
        .collect()
}

/// The process's resident set in bytes (0 where /proc is not available).
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    kb.unwrap_or(0usize) * 1024
}

fn build(r4: &[Route4], r6: &[Route6]) -> L3FwdTables {
    L3FwdTables::from_lpm_routes(r4, r6).expect("routes")
}

fn bench_build(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_b11d);
    let one4 = [route4(0x0a00_0000, 8, 1)];
    let cases: Vec<(&str, Vec<Route4>, Vec<Route6>)> = vec![
        ("v4_uniform8_32", random4(&mut rng, 2_000_000, |r| 8 + r.below(25) as u8), vec![]),
        ("v4_24", random4(&mut rng, 2_000_000, |_| 24), vec![]),
        ("v4_anchor_shuffled", anchor_shuffled(&mut rng), vec![]),
        ("v6_uniform8_64", one4.to_vec(), random6(&mut rng, 200_000, 8, 64)),
    ];
    const MIB: f64 = (1 << 20) as f64;
    for (name, r4, r6) in &cases {
        let before = rss();
        let t0 = Instant::now();
        let t = build(r4, r6);
        let took = t0.elapsed();
        let grown = rss().saturating_sub(before);
        drop(t);
        let mut line = format!(
            "lpm_build {name}: {} IPv4 + {} IPv6 routes built in {took:.2?}, resident set +{:.0} MiB",
            r4.len(),
            r6.len(),
            grown as f64 / MIB
        );
        if r6.is_empty() {
            // The table l3fwd builds, on its own: the sizing of `from_lpm_routes`.
            let deep = r4.iter().filter(|r| r.depth > 24).count() as u32;
            let cfg = Lpm4Config { max_rules: r4.len() as u32 + 1, tbl8_groups: deep + 64 };
            let t = Lpm4::from_routes(cfg, r4).expect("routes");
            line += &format!(
                "; Lpm4: {} distinct routes, {} tbl8 groups in use, {:.0} MiB allocated",
                t.len(),
                t.tbl8_groups_in_use(),
                t.memory_bytes() as f64 / MIB
            );
        }
        eprintln!("{line}");
    }

    let mut g = c.benchmark_group("lpm_build");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(20));
    for (name, r4, r6) in &cases {
        // The table is dropped (its mappings unmapped) outside the timed part.
        g.bench_function(*name, |b| b.iter_with_large_drop(|| build(r4, r6)));
    }
    g.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
