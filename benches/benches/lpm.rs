//! Route lookup benchmarks: `Lpm4` on a synthetic 1.06M-route IPv4 table with the
//! prefix-length distribution of the anchor measurement (see `routes4`), `Lpm6` on a smaller
//! table, and the exact-match table. Keys are seeded random: 7/8 drawn from inside a random
//! route, 1/8 from 224.0.0.0/3 where no route lives (misses).
//!
//! Each lookup group (`lpm4_lookup`, `lpm6_lookup`) times one pass over the same key array
//! and reports lookups/s. With the `dpdk` feature the same groups also time DPDK's
//! `rte_lpm` / `rte_lpm6` holding the same routes (added with `rte_lpm_add`, same
//! `max_rules` and tbl8 group count) over the same keys: `dpdk_single` (`rte_lpm_lookup`
//! per key, through the dpdk-sys shim: one non-inlined call per lookup), `dpdk_bulk32`
//! (`rte_lpm_lookup_bulk`, one call per 32 keys, raw entries out), `dpdk_bulk32_checked`
//! (the same plus the caller's per-key hit test, giving our output: next hop or `MISS`, and
//! the hit count) and `dpdk_x4` (`rte_lpm_lookupx4`). Burst fairness: both sides make one
//! non-inlined call per burst of 32 (ours through `our_bulk`), black-box each burst's
//! output, and read the same key array in the same order. Before timing, every key is
//! checked to get the same answer from both tables in every form.
//! `lpm4_lookup_1m` and the second interleaved table time the IPv4 burst loops over one
//! million distinct keys (DRAM-bound: their tbl24 lines do not fit in any cache).
//! Table construction happens once, outside the timed loops; build times, per-route
//! delete and add times on a sample of routes (ours beside DPDK's) and memory figures are
//! printed to stderr.
//!
//! Run: `cargo bench -p dataplane-benches --bench lpm` (about 2 min), or with DPDK
//! `cargo bench -p dataplane-benches --features dpdk --bench lpm` (as root; about 5 min, of
//! which ~3.5 min is `rte_lpm_add` building the 1M-route table: it scans the rules of the
//! same depth linearly, ~190 µs per /24 add at this size).
mod common;
use common::DIST4;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::lpm::{BulkImpl, EmConfig, EmKey, EmTable, Ipv4FiveTuple, Lpm4, Lpm4Config, Lpm6, Lpm6Config, MISS};
use std::time::{Duration, Instant};

/// Keys per timed pass.
const KEYS: usize = 1 << 16;
/// Keys of the memory-bound IPv4 case: one million distinct addresses, whose tbl24 lines
/// (~1 M of them, 64 MiB) do not fit in any cache, so nearly every lookup goes to DRAM.
const KEYS_1M: usize = 1 << 20;
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
    (0..KEYS).map(|_| key4(rng, routes)).collect()
}

/// `KEYS_1M` distinct keys drawn as in `keys4`, in random order.
fn keys4_distinct(rng: &mut Rng, routes: &[(u32, u8, u32)]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::with_capacity(KEYS_1M);
    let mut v = Vec::with_capacity(KEYS_1M);
    while v.len() < KEYS_1M {
        let k = key4(rng, routes);
        if seen.insert(k) {
            v.push(k);
        }
    }
    v
}

/// One key: inside a random route (7/8) or in 224.0.0.0/3 (1/8).
fn key4(rng: &mut Rng, routes: &[(u32, u8, u32)]) -> u32 {
    if rng.below(8) == 0 {
        (224 << 24) | (rng.next() as u32 & 0x1fff_ffff)
    } else {
        let (p, d, _) = routes[rng.below(routes.len() as u64) as usize];
        p | (rng.next() as u32 & !mask4(d))
    }
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

/// The DPDK twins: `rte_lpm` / `rte_lpm6` through `dpdk-sys`, on EAL memory.
#[cfg(feature = "dpdk")]
mod rte {
    use dpdk_sys as sys;
    use std::ffi::{c_int, c_void, CString};

    /// `rte_malloc_get_socket_stats` (exported by librte_eal, not in the bindgen allowlist's
    /// headers): the heap's allocated bytes before and after a create give the footprint.
    #[repr(C)]
    #[derive(Default)]
    struct MallocSocketStats {
        heap_totalsz_bytes: usize,
        heap_freesz_bytes: usize,
        greatest_free_size: usize,
        free_count: u32,
        alloc_count: u32,
        heap_allocsz_bytes: usize,
    }
    extern "C" {
        fn rte_malloc_get_socket_stats(socket: c_int, stats: *mut MallocSocketStats) -> c_int;
    }

    /// Bytes allocated from EAL's heap on the calling thread's socket.
    pub fn heap_alloc_bytes() -> usize {
        let mut s = MallocSocketStats::default();
        // SAFETY: EAL is up (callers run after `eal()`); `s` is a valid out-pointer of the C
        // struct's layout (DPDK 22.11 `struct rte_malloc_socket_stats`).
        let rc = unsafe { rte_malloc_get_socket_stats(sys::rte_socket_id() as c_int, &mut s) };
        assert_eq!(rc, 0, "rte_malloc_get_socket_stats");
        s.heap_allocsz_bytes
    }

    /// Brings EAL up once. This machine has no hugetlbfs, so EAL runs with `--no-huge`, and
    /// DPDK 22.11 then backs its heap with a shared memfd, which gets 4 KiB pages only
    /// (shmem THP is off), while our tables get transparent huge pages: a TLB handicap for
    /// rte_lpm on a 64 MiB tbl24. To compare like with like, every 2 MiB-aligned chunk of
    /// the heap that EAL has not touched yet (all-zero, nothing resident) is replaced by
    /// private anonymous memory advised for THP. Safe here because this process is EAL's
    /// only user (no secondary processes, `--no-pci`: nothing needs the shared mapping or
    /// physical addresses). The AnonHugePages figures printed after each build check it.
    pub fn eal() {
        if dataplane::dpdk::Eal::get().is_some() {
            return;
        }
        let prefix = format!("lpmb-{}", std::process::id());
        let args: Vec<String> = [
            "-l",
            "1",
            "--no-huge",
            "--no-pci",
            "-m",
            "1024",
            "--no-telemetry",
            "--log-level=warning",
            "--file-prefix",
            &prefix,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        dataplane::dpdk::Eal::init(&args).expect("EAL init (run as root)");
        unsafe extern "C" fn collect(msl: *const sys::rte_memseg_list, arg: *mut c_void) -> c_int {
            // SAFETY: EAL passes a valid memseg list for the duration of the callback; `arg`
            // is the `Vec` passed to rte_memseg_list_walk below.
            unsafe {
                let m = &*msl;
                let base = m.__bindgen_anon_1.base_va;
                if m.external == 0 && !base.is_null() && m.len > 0 {
                    (*arg.cast::<Vec<(usize, usize)>>()).push((base as usize, m.len));
                }
            }
            0
        }
        let mut lists: Vec<(usize, usize)> = Vec::new();
        // SAFETY: EAL is up; the callback follows rte_memseg_list_walk_t and gets `lists`.
        unsafe { sys::rte_memseg_list_walk(Some(collect), (&raw mut lists).cast()) };
        const HUGE: usize = 2 << 20;
        let mut remapped = 0;
        for (base, len) in lists {
            let pages = len.div_ceil(4096);
            let mut resident = vec![0u8; pages];
            // SAFETY: [base, base + len) is EAL's mapping; `resident` has one byte per page.
            if unsafe { libc::mincore(base as *mut c_void, len, resident.as_mut_ptr()) } != 0 {
                continue;
            }
            let mut chunk = base.next_multiple_of(HUGE);
            while chunk + HUGE <= base + len {
                let first = (chunk - base) / 4096;
                if resident[first..first + HUGE / 4096].iter().all(|&r| r & 1 == 0) {
                    // SAFETY: the chunk lies inside EAL's mapping, is untouched (all zero) and
                    // owned by the free heap; the fresh private mapping reads as zeros too, at
                    // the same addresses.
                    let p = unsafe {
                        libc::mmap(
                            chunk as *mut c_void,
                            HUGE,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                            -1,
                            0,
                        )
                    };
                    assert_eq!(p as usize, chunk, "mmap");
                    // SAFETY: the range was just mapped; this only sets its paging policy.
                    unsafe { libc::madvise(p, HUGE, libc::MADV_HUGEPAGE) };
                    remapped += HUGE;
                }
                chunk += HUGE;
            }
        }
        eprintln!("dpdk: {} MiB of EAL's heap remapped for transparent huge pages", remapped >> 20);
    }

    /// AnonHugePages of this process in KiB (from /proc/self/smaps_rollup).
    pub fn anon_huge_kib() -> u64 {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("AnonHugePages:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// An `rte_lpm` table.
    pub struct Lpm4(*mut sys::rte_lpm);

    impl Lpm4 {
        pub fn new(name: &str, max_rules: u32, tbl8s: u32) -> Self {
            let name = CString::new(name).unwrap();
            let cfg = sys::rte_lpm_config { max_rules, number_tbl8s: tbl8s, flags: 0 };
            // SAFETY: EAL is up; name and cfg outlive the call.
            let p = unsafe { sys::rte_lpm_create(name.as_ptr(), sys::SOCKET_ID_ANY, &cfg) };
            assert!(!p.is_null(), "rte_lpm_create: {}", sys::strerror(sys::rte_errno()));
            Lpm4(p)
        }
        pub fn add(&mut self, ip: u32, depth: u8, hop: u32) {
            // SAFETY: self.0 is a live table, used from this thread only.
            let rc = unsafe { sys::rte_lpm_add(self.0, ip, depth, hop) };
            assert_eq!(rc, 0, "rte_lpm_add {ip:#x}/{depth}");
        }
        pub fn delete(&mut self, ip: u32, depth: u8) {
            // SAFETY: as in `add`.
            let rc = unsafe { sys::rte_lpm_delete(self.0, ip, depth) };
            assert_eq!(rc, 0, "rte_lpm_delete {ip:#x}/{depth}");
        }
        #[inline(always)]
        pub fn lookup(&self, ip: u32) -> Option<u32> {
            let mut hop = 0;
            // SAFETY: live table; `hop` is a valid out-pointer.
            let rc = unsafe { sys::dpdk_shim_lpm_lookup(self.0, ip, &mut hop) };
            (rc == 0).then_some(hop)
        }
        /// Raw entries: bit 24 (`RTE_LPM_LOOKUP_SUCCESS`) set on a hit.
        #[inline(always)]
        pub fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
            let n = ips.len().min(out.len());
            // SAFETY: live table; both arrays hold at least n entries.
            unsafe { sys::dpdk_shim_lpm_lookup_bulk(self.0, ips.as_ptr(), out.as_mut_ptr(), n as u32) };
        }
        #[inline(always)]
        pub fn lookupx4(&self, ips: &[u32], out: &mut [u32; 4], miss: u32) {
            assert!(ips.len() >= 4);
            // SAFETY: live table; ips has at least 4 entries and out exactly 4.
            unsafe { sys::dpdk_shim_lpm_lookupx4(self.0, ips.as_ptr(), out.as_mut_ptr(), miss) };
        }
    }

    impl Drop for Lpm4 {
        fn drop(&mut self) {
            // SAFETY: the table was created by rte_lpm_create and is not used after this.
            unsafe { sys::rte_lpm_free(self.0) };
        }
    }

    /// An `rte_lpm6` table.
    pub struct Lpm6(*mut sys::rte_lpm6);

    impl Lpm6 {
        pub fn new(name: &str, max_rules: u32, tbl8s: u32) -> Self {
            let name = CString::new(name).unwrap();
            let cfg = sys::rte_lpm6_config { max_rules, number_tbl8s: tbl8s, flags: 0 };
            // SAFETY: EAL is up; name and cfg outlive the call.
            let p = unsafe { sys::rte_lpm6_create(name.as_ptr(), sys::SOCKET_ID_ANY, &cfg) };
            assert!(!p.is_null(), "rte_lpm6_create: {}", sys::strerror(sys::rte_errno()));
            Lpm6(p)
        }
        pub fn add(&mut self, ip: &[u8; 16], depth: u8, hop: u32) {
            // SAFETY: live table, this thread only; ip is 16 bytes.
            let rc = unsafe { sys::rte_lpm6_add(self.0, ip.as_ptr(), depth, hop) };
            assert_eq!(rc, 0, "rte_lpm6_add /{depth}");
        }
        pub fn delete(&mut self, ip: &[u8; 16], depth: u8) {
            // SAFETY: as in `add`.
            let rc = unsafe { sys::rte_lpm6_delete(self.0, ip.as_ptr(), depth) };
            assert_eq!(rc, 0, "rte_lpm6_delete /{depth}");
        }
        #[inline(always)]
        pub fn lookup(&self, ip: &[u8; 16]) -> Option<u32> {
            let mut hop = 0;
            // SAFETY: live table; ip is 16 bytes; `hop` is a valid out-pointer.
            let rc = unsafe { sys::rte_lpm6_lookup(self.0, ip.as_ptr(), &mut hop) };
            (rc == 0).then_some(hop)
        }
        /// Next hops, -1 on a miss.
        #[inline(always)]
        pub fn lookup_bulk(&self, ips: &[[u8; 16]], out: &mut [i32]) {
            let n = ips.len().min(out.len());
            // SAFETY: live table; both arrays hold at least n entries. The C prototype takes
            // `uint8_t ips[][16]` without const but only reads it.
            unsafe { sys::rte_lpm6_lookup_bulk_func(self.0, ips.as_ptr().cast_mut(), out.as_mut_ptr(), n as u32) };
        }
    }

    impl Drop for Lpm6 {
        fn drop(&mut self) {
            // SAFETY: created by rte_lpm6_create and not used after this.
            unsafe { sys::rte_lpm6_free(self.0) };
        }
    }
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

/// One burst through `Lpm4::lookup_bulk`, kept out of line so that our side pays one call
/// per burst, as `rte_lpm_lookup_bulk` does through the dpdk-sys shim (in C it would be
/// inlined; here neither side is). The hit count is dropped, as l3fwd drops it and as
/// `rte_lpm_lookup_bulk` has none, so it is compiled out; `our_bulk_hits` keeps it.
#[inline(never)]
fn our_bulk(t: &Lpm4, ips: &[u32], out: &mut [u32]) {
    t.lookup_bulk(ips, out);
}

/// [`our_bulk`] returning the hit count (which the caller uses).
#[cfg(feature = "dpdk")]
#[inline(never)]
fn our_bulk_hits(t: &Lpm4, ips: &[u32], out: &mut [u32]) -> usize {
    t.lookup_bulk(ips, out)
}

fn bench_lpm4(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_1e55);
    let routes = routes4(&mut rng);
    let keys = keys4(&mut rng, &routes);
    let keys_1m = keys4_distinct(&mut rng, &routes);
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
    let mut burst = |t: &Lpm4| {
        best_cycles(|| {
            keys.chunks_exact(BURST)
                .map(|ch| {
                    our_bulk(t, ch, &mut out);
                    black_box(&out);
                    out[0] as usize
                })
                .sum()
        })
    };
    let b_scalar = burst(&t);
    let b_avx2 = if t.set_bulk_impl(BulkImpl::Avx2) { burst(&t) } else { f64::NAN };
    t.set_bulk_impl(BulkImpl::detect());
    eprintln!(
        "lpm4 best-of-50 TSC cycles/lookup: single {single:.1}, burst{BURST} scalar {b_scalar:.1}, \
         burst{BURST} avx2 {b_avx2:.1} (default {:?})",
        t.bulk_impl()
    );
    #[cfg(feature = "dpdk")]
    let d = build_rte4(&t, &routes, &keys, &keys_1m);
    #[cfg(feature = "dpdk")]
    {
        interleaved4(&mut t, &d, &keys, "65536 keys", ROUNDS);
        interleaved4(&mut t, &d, &keys_1m, "1M distinct keys", ROUNDS_1M);
    }
    if interleaved_only() {
        return;
    }

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
    // Ours: black_box on each burst's output, as on the DPDK side below; the hit count is
    // not used (see `our_bulk`).
    for imp in [BulkImpl::Avx2, BulkImpl::Scalar, BulkImpl::Neon] {
        if !t.set_bulk_impl(imp) {
            continue;
        }
        let name = format!("rust_burst{BURST}_{imp:?}").to_lowercase();
        g.bench_function(&name, |b| {
            b.iter(|| {
                for chunk in black_box(&keys).chunks_exact(BURST) {
                    our_bulk(&t, chunk, &mut out);
                    black_box(&out);
                }
            })
        });
    }
    t.set_bulk_impl(detected);
    #[cfg(feature = "dpdk")]
    {
        g.bench_function("dpdk_single", |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &k in black_box(&keys) {
                    acc = acc.wrapping_add(d.lookup(k).unwrap_or(MISS));
                }
                acc
            })
        });
        // rte_lpm_lookup_bulk leaves the hit bit in each entry; the loop only keeps the
        // raw entries (ours writes the next hop or MISS). This is the anchor of the
        // acceptance line.
        g.bench_function(format!("dpdk_bulk{BURST}"), |b| {
            b.iter(|| {
                for chunk in black_box(&keys).chunks_exact(BURST) {
                    d.lookup_bulk(chunk, &mut out);
                    black_box(&out);
                }
            })
        });
        // The same, plus what a caller has to do with the raw entries to get our output:
        // next hop or MISS per address and the hit count (for information: same semantics
        // as ours).
        g.bench_function(format!("dpdk_bulk{BURST}_checked"), |b| {
            b.iter(|| {
                let mut hits = 0;
                for chunk in black_box(&keys).chunks_exact(BURST) {
                    d.lookup_bulk(chunk, &mut out);
                    for o in out.iter_mut() {
                        let hit = *o & sys_success() != 0;
                        hits += hit as usize;
                        *o = if hit { *o & 0x00ff_ffff } else { MISS };
                    }
                    black_box(&out);
                }
                hits
            })
        });
        let mut out4 = [0u32; 4];
        g.bench_function("dpdk_x4", |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for chunk in black_box(&keys).chunks_exact(4) {
                    d.lookupx4(chunk, &mut out4, MISS);
                    acc = acc.wrapping_add(out4[0] ^ out4[1] ^ out4[2] ^ out4[3]);
                }
                acc
            })
        });
    }
    g.finish();

    // Memory-bound: the same burst loops over one million distinct keys (DRAM latency).
    let mut g = c.benchmark_group("lpm4_lookup_1m");
    g.throughput(Throughput::Elements(KEYS_1M as u64));
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.bench_function(format!("rust_burst{BURST}_{detected:?}").to_lowercase(), |b| {
        b.iter(|| {
            for chunk in black_box(&keys_1m).chunks_exact(BURST) {
                our_bulk(&t, chunk, &mut out);
                black_box(&out);
            }
        })
    });
    #[cfg(feature = "dpdk")]
    g.bench_function(format!("dpdk_bulk{BURST}"), |b| {
        b.iter(|| {
            for chunk in black_box(&keys_1m).chunks_exact(BURST) {
                d.lookup_bulk(chunk, &mut out);
                black_box(&out);
            }
        })
    });
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
    #[cfg(feature = "dpdk")]
    {
        let mut d = d;
        for (label, lo, hi) in [("le24", 0u8, 24u8), ("gt24", 25, 32)] {
            let sel: Vec<_> = routes.iter().filter(|r| r.1 >= lo && r.1 <= hi).copied().collect();
            let pick: Vec<_> = sel.iter().step_by((sel.len() / UPDATE_SAMPLE).max(1)).copied().collect();
            let ours = time_updates(&pick, |add, p, l, h| {
                if add {
                    t.add(p, l, h).expect("fits");
                } else {
                    t.delete(p, l).expect("present");
                }
            });
            let theirs = time_updates(&pick, |add, p, l, h| if add { d.add(p, l, h) } else { d.delete(p, l) });
            report_updates("lpm4", label, pick.len(), ours, theirs);
        }
    }
}

/// Routes per side-by-side update timing (rte_lpm's add and delete scan the rules of the
/// same depth linearly, so a /24 costs it ~0.1-1 ms: a criterion loop would take minutes).
#[cfg(feature = "dpdk")]
const UPDATE_SAMPLE: usize = 256;

/// Median over 3 rounds of (ns per delete, ns per add): delete every route of `pick`
/// (`op(false, ..)`), then add every one back (`op(true, ..)`).
#[cfg(feature = "dpdk")]
fn time_updates<P: Copy>(pick: &[(P, u8, u32)], mut op: impl FnMut(bool, P, u8, u32)) -> (f64, f64) {
    let mut rounds: Vec<(f64, f64)> = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            for &(p, l, h) in pick {
                op(false, p, l, h);
            }
            let t1 = Instant::now();
            for &(p, l, h) in pick {
                op(true, p, l, h);
            }
            let n = pick.len() as f64;
            ((t1 - t0).as_nanos() as f64 / n, t1.elapsed().as_nanos() as f64 / n)
        })
        .collect();
    rounds.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    rounds[1]
}

#[cfg(feature = "dpdk")]
fn report_updates(what: &str, label: &str, n: usize, ours: (f64, f64), theirs: (f64, f64)) {
    eprintln!(
        "{what} update {label} ({n} routes, median of 3): ours delete {:.0} ns add {:.0} ns; \
         dpdk delete {:.0} ns add {:.0} ns; ratio (dpdk time / ours) delete {:.1}x add {:.1}x",
        ours.0,
        ours.1,
        theirs.0,
        theirs.1,
        theirs.0 / ours.0,
        theirs.1 / ours.1
    );
}

/// Builds the `rte_lpm` twin of `t` (same routes, same `max_rules` / tbl8 groups), prints its
/// build time and footprint, and checks that it answers every key as `t` does in all three
/// lookup forms: a mismatch would make the timings meaningless.
#[cfg(feature = "dpdk")]
fn build_rte4(t: &Lpm4, routes: &[(u32, u8, u32)], keys: &[u32], keys_1m: &[u32]) -> rte::Lpm4 {
    rte::eal();
    let cfg = t.config();
    let (heap0, thp0) = (rte::heap_alloc_bytes(), rte::anon_huge_kib());
    let mut d = rte::Lpm4::new("bench_lpm4", cfg.max_rules, cfg.tbl8_groups);
    let heap = rte::heap_alloc_bytes() - heap0;
    let t0 = Instant::now();
    for &(p, l, h) in routes {
        d.add(p, l, h);
    }
    let took = t0.elapsed();
    // DPDK 22.11: tbl24 2^24 x 4 B, tbl8 groups x 256 x 4 B, rules max_rules x 8 B.
    let computed = (1usize << 24) * 4 + cfg.tbl8_groups as usize * 1024 + cfg.max_rules as usize * 8;
    eprintln!(
        "lpm4 dpdk: rte_lpm built in {took:.2?} ({:.0} ns/add); memory {:.1} MiB computed, {:.1} MiB \
         from the EAL heap; AnonHugePages +{} MiB; ours {:.1} MiB",
        took.as_nanos() as f64 / routes.len() as f64,
        computed as f64 / (1 << 20) as f64,
        heap as f64 / (1 << 20) as f64,
        rte::anon_huge_kib().saturating_sub(thp0) / 1024,
        t.memory_bytes() as f64 / (1 << 20) as f64,
    );
    let mut ours = vec![0u32; BURST];
    let mut raw = vec![0u32; BURST];
    let mut x4 = [0u32; 4];
    for chunk in keys.chunks_exact(BURST).chain(keys_1m.chunks_exact(BURST)) {
        t.lookup_bulk(chunk, &mut ours);
        d.lookup_bulk(chunk, &mut raw);
        for (i, &k) in chunk.iter().enumerate() {
            let want = t.lookup(k);
            assert_eq!(d.lookup(k), want, "rte_lpm_lookup {k:#x}");
            assert_eq!(ours[i], want.unwrap_or(MISS), "our lookup_bulk {k:#x}");
            let hit = raw[i] & sys_success() != 0;
            assert_eq!(hit.then_some(raw[i] & 0x00ff_ffff), want, "rte_lpm_lookup_bulk {k:#x}");
        }
        for (q, w) in chunk.chunks_exact(4).zip(ours.chunks_exact(4)) {
            d.lookupx4(q, &mut x4, MISS);
            assert_eq!(&x4[..], w, "rte_lpm_lookupx4 {q:x?}");
        }
    }
    eprintln!("lpm4 dpdk: rte_lpm agrees with Lpm4 on all {} + {} keys (single, bulk, x4)", keys.len(), keys_1m.len());
    // Best of 50 passes, as for ours above.
    let single = best_cycles(|| keys.iter().map(|&k| d.lookup(k).unwrap_or(MISS) as usize).sum());
    let bulk = best_cycles(|| {
        keys.chunks_exact(BURST)
            .map(|ch| {
                d.lookup_bulk(ch, &mut raw);
                black_box(&raw);
                raw[0] as usize
            })
            .sum()
    });
    eprintln!("lpm4 dpdk best-of-50 TSC cycles/lookup: single {single:.1}, bulk{BURST} {bulk:.1}");
    d
}

/// Rounds of the interleaved side-by-side burst timing.
#[cfg(feature = "dpdk")]
const ROUNDS: usize = 200;
/// Rounds of the same timing over the `KEYS_1M` keys (each pass is 16 times longer).
#[cfg(feature = "dpdk")]
const ROUNDS_1M: usize = 50;

/// Burst lookups side by side, interleaved: each round times one pass over the keys for
/// every contender in turn (after one untimed pass, the fastest of three timed passes, in
/// TSC cycles per key), and the figure is the median over the rounds of the per-round
/// ratio to `rte_lpm_lookup_bulk`. On a shared machine the load changes within seconds, so
/// criterion's groups, which time one function after the other for seconds each, can put
/// a 2x swing of the load between two functions; here both sides see the same load.
#[cfg(feature = "dpdk")]
fn interleaved4(t: &mut Lpm4, d: &rte::Lpm4, keys: &[u32], label: &str, rounds: usize) {
    let mut out = vec![0u32; BURST];
    let names = [
        "rte_lpm_lookup_bulk",
        "rte_lpm_lookup_bulk+check",
        "ours scalar",
        "ours scalar+hit count",
        "ours avx2",
        "ours scalar, next burst prefetched",
    ];
    let mut cyc: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut pass = |t: &mut Lpm4, which: usize| -> usize {
        match which {
            0 => keys
                .chunks_exact(BURST)
                .map(|ch| {
                    d.lookup_bulk(ch, &mut out);
                    black_box(&out);
                    out[0] as usize
                })
                .sum(),
            1 => keys
                .chunks_exact(BURST)
                .map(|ch| {
                    d.lookup_bulk(ch, &mut out);
                    let mut hits = 0;
                    for o in out.iter_mut() {
                        let hit = *o & sys_success() != 0;
                        hits += hit as usize;
                        *o = if hit { *o & 0x00ff_ffff } else { MISS };
                    }
                    black_box(&out);
                    hits
                })
                .sum(),
            3 => {
                t.set_bulk_impl(BulkImpl::Scalar);
                keys.chunks_exact(BURST)
                    .map(|ch| {
                        let h = our_bulk_hits(t, ch, &mut out);
                        black_box(&out);
                        h
                    })
                    .sum()
            }
            5 => {
                // Software pipelining across bursts: the next burst's tbl24 lines start
                // loading before this burst is looked up.
                t.set_bulk_impl(BulkImpl::Scalar);
                let n = keys.len() / BURST;
                let mut sum = 0;
                for i in 0..n {
                    if i + 1 < n {
                        t.prefetch_bulk(&keys[(i + 1) * BURST..(i + 2) * BURST]);
                    }
                    our_bulk(t, &keys[i * BURST..(i + 1) * BURST], &mut out);
                    black_box(&out);
                    sum += out[0] as usize;
                }
                sum
            }
            _ => {
                t.set_bulk_impl(if which == 2 { BulkImpl::Scalar } else { BulkImpl::Avx2 });
                keys.chunks_exact(BURST)
                    .map(|ch| {
                        our_bulk(t, ch, &mut out);
                        black_box(&out);
                        out[0] as usize
                    })
                    .sum()
            }
        }
    };
    let avx2 = t.set_bulk_impl(BulkImpl::Avx2);
    for _ in 0..rounds {
        for (which, c) in cyc.iter_mut().enumerate() {
            if which == 4 && !avx2 {
                continue;
            }
            black_box(pass(t, which));
            let mut best = u64::MAX;
            for _ in 0..3 {
                let t0 = dataplane::arch::cycles();
                black_box(pass(t, which));
                best = best.min(dataplane::arch::cycles().wrapping_sub(t0));
            }
            c.push(best as f64 / keys.len() as f64);
        }
    }
    t.set_bulk_impl(BulkImpl::detect());
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (i, name) in names.iter().enumerate() {
        if cyc[i].is_empty() {
            continue;
        }
        let ratio = median((0..rounds).map(|r| cyc[0][r] / cyc[i][r]).collect());
        let min = cyc[i].iter().copied().fold(f64::MAX, f64::min);
        eprintln!(
            "lpm4 interleaved burst{BURST}, {label} ({rounds} rounds): {name:27} median {:5.2} min {min:5.2} TSC cycles/lookup; \
             speed vs rte_lpm_lookup_bulk: median of per-round ratios {ratio:.3}",
            median(cyc[i].clone())
        );
    }
}

#[cfg(feature = "dpdk")]
fn sys_success() -> u32 {
    dpdk_sys::RTE_LPM_LOOKUP_SUCCESS
}

/// IPv6: 50 000 routes, lengths /20–/64 and some /128, under 4000 /32s of 2000::/4.
/// `LPM_INTERLEAVED_ONLY=1`: the IPv4 interleaved comparison alone (what `ci/bench lpm`
/// quotes), no criterion group and no IPv6 or exact-match benches.
fn interleaved_only() -> bool {
    std::env::var_os("LPM_INTERLEAVED_ONLY").is_some()
}

fn bench_lpm6(c: &mut Criterion) {
    if interleaved_only() {
        return;
    }
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
    #[cfg(feature = "dpdk")]
    let d = build_rte6(&t, &routes, &keys);
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
    #[cfg(feature = "dpdk")]
    {
        g.bench_function("dpdk_single", |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for k in black_box(&keys) {
                    acc = acc.wrapping_add(d.lookup(k).unwrap_or(MISS));
                }
                acc
            })
        });
        let mut out = vec![0i32; BURST];
        g.bench_function(format!("dpdk_bulk{BURST}"), |b| {
            b.iter(|| {
                for chunk in black_box(&keys).chunks_exact(BURST) {
                    d.lookup_bulk(chunk, &mut out);
                    black_box(&out);
                }
            })
        });
    }
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
    #[cfg(feature = "dpdk")]
    {
        let mut d = d;
        let pick: Vec<_> = routes
            .iter()
            .step_by((routes.len() / UPDATE_SAMPLE).max(1))
            .map(|&(p, l, h)| (p.to_be_bytes(), l, h))
            .collect();
        let ours = time_updates(&pick, |add, p, l, h| {
            if add {
                t.add(p, l, h).expect("fits");
            } else {
                t.delete(p, l).expect("present");
            }
        });
        let theirs = time_updates(&pick, |add, p, l, h| if add { d.add(&p, l, h) } else { d.delete(&p, l) });
        report_updates("lpm6", "all", pick.len(), ours, theirs);
    }
}

/// The `rte_lpm6` twin of `t`, built and checked as [`build_rte4`] does.
#[cfg(feature = "dpdk")]
fn build_rte6(t: &Lpm6, routes: &[(u128, u8, u32)], keys: &[[u8; 16]]) -> rte::Lpm6 {
    rte::eal();
    let cfg = t.config();
    let (heap0, thp0) = (rte::heap_alloc_bytes(), rte::anon_huge_kib());
    let mut d = rte::Lpm6::new("bench_lpm6", cfg.max_rules, cfg.tbl8_groups);
    let heap = rte::heap_alloc_bytes() - heap0;
    let t0 = Instant::now();
    for &(p, l, h) in routes {
        d.add(&p.to_be_bytes(), l, h);
    }
    let took = t0.elapsed();
    // DPDK 22.11: tbl24 2^24 x 4 B, tbl8 groups x 256 x 4 B, a 4 B free-list slot and a
    // 12 B header per group; the rules live in an rte_hash (in the heap figure only).
    let computed = (1usize << 24) * 4 + cfg.tbl8_groups as usize * (1024 + 4 + 12);
    eprintln!(
        "lpm6 dpdk: rte_lpm6 built in {took:.2?} ({:.0} ns/add); memory {:.1} MiB computed (without \
         the rules hash), {:.1} MiB from the EAL heap; AnonHugePages +{} MiB; ours {:.1} MiB",
        took.as_nanos() as f64 / routes.len() as f64,
        computed as f64 / (1 << 20) as f64,
        heap as f64 / (1 << 20) as f64,
        rte::anon_huge_kib().saturating_sub(thp0) / 1024,
        t.memory_bytes() as f64 / (1 << 20) as f64,
    );
    let mut ours = vec![0u32; BURST];
    let mut theirs = vec![0i32; BURST];
    for chunk in keys.chunks_exact(BURST) {
        t.lookup_bulk(chunk, &mut ours);
        d.lookup_bulk(chunk, &mut theirs);
        for (i, k) in chunk.iter().enumerate() {
            let want = t.lookup(k);
            assert_eq!(d.lookup(k), want, "rte_lpm6_lookup {k:x?}");
            assert_eq!(ours[i], want.unwrap_or(MISS), "our lookup_bulk {k:x?}");
            assert_eq!(theirs[i], want.map_or(-1, |h| h as i32), "rte_lpm6_lookup_bulk_func {k:x?}");
        }
    }
    eprintln!("lpm6 dpdk: rte_lpm6 agrees with Lpm6 on all {} keys (single, bulk)", keys.len());
    let single = best_cycles(|| keys.iter().map(|k| d.lookup(k).unwrap_or(MISS) as usize).sum());
    let bulk = best_cycles(|| {
        keys.chunks_exact(BURST)
            .map(|ch| {
                d.lookup_bulk(ch, &mut theirs);
                theirs[0] as usize
            })
            .sum()
    });
    eprintln!("lpm6 dpdk best-of-50 TSC cycles/lookup: single {single:.1}, bulk{BURST} {bulk:.1}");
    d
}

/// Exact match: 1M flows, burst lookups with precomputed hashes (7/8 hits).
fn bench_em(c: &mut Criterion) {
    if interleaved_only() {
        return;
    }
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
