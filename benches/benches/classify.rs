//! Burst classification: ns per packet for each available `dataplane::classify` implementation,
//! side by side with `etherparse` (`SlicedPacket::from_ethernet`, then the same flow tuple and
//! the same hash computed from its output), on a realistic 32-packet mix. For CRC32C there are
//! two baselines: `etherparse` hashes with the portable slicing-by-8 CRC (as `Impl::Scalar`),
//! `etherparse-hwcrc` with the SSE4.2 `crc32` instruction (as our SSE4.2/AVX2 paths) — the
//! honest anchor for the hardware-CRC paths.
//!
//! Run: `cargo bench -p dataplane-benches --bench classify`. First an interleaved same-run
//! comparison (see [`interleaved`]: every contender timed in turn, round after round, on the
//! same burst; the figures to quote on a loaded machine) is printed, then criterion reports
//! the time per burst of 32 packets and the packet rate (`thrpt`); ns/packet = time / 32.
//! `CLASSIFY_INTERLEAVED_ONLY=1` skips the criterion groups; with `CLASSIFY_ONLY=<k>` the
//! interleaved timing and the counting mode run on a burst of 32 copies of frame `k` of the
//! mix (per-type figures).
//!
//! The time measured is the benchmarking thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall-clock time: the development machines are shared by several engineers compiling at
//! once, and wall-clock medians there swing by 2-3x with the load, while CPU time does not
//! count the intervals the thread was preempted. Set `CLASSIFY_BENCH_WALL=1` for wall-clock.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use dataplane::classify::{
    classify_burst_with, classify_slices_with, crc32c, Classified, ClassifyConfig, HashKind, Impl, RssKey,
};
use dataplane::{PacketBuf, PacketMeta};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

const BURST: usize = 32;

fn eth(tag: Option<u16>, ethertype: u16, i: u8) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 1, i, 0x02, 0, 0, 0, 2, i];
    if let Some(t) = tag {
        v.extend_from_slice(&0x8100u16.to_be_bytes());
        v.extend_from_slice(&t.to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v
}

fn ipv4(proto: u8, l4_and_payload: usize, i: u8) -> Vec<u8> {
    let tot = (20 + l4_and_payload) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&tot.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, i, 1, 10, 1, i, 2]);
    v
}

fn ipv6(nh: u8, payload: usize, i: u8) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i, 1]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, i, 2]);
    v
}

fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

/// The mix: 12 × 64 B IPv4/UDP, 8 × IPv6/TCP, 6 × VLAN IPv4/TCP, 3 × ARP, 3 malformed
/// (IPv4 header cut short, IHL < 5, a 10-byte runt), in a fixed shuffled order.
fn mix() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..12u8 {
        let mut f = eth(None, 0x0800, i);
        f.extend(ipv4(17, 8 + 22, i));
        f.extend(udp(1024 + i as u16, 53, 22));
        f.resize(64, 0);
        v.push(f);
    }
    for i in 0..8u8 {
        let mut f = eth(None, 0x86dd, i);
        f.extend(ipv6(6, 20 + 12, i));
        f.extend(tcp(40000 + i as u16, 443));
        f.resize(f.len() + 12, 0xab);
        v.push(f);
    }
    for i in 0..6u8 {
        let mut f = eth(Some(100 + i as u16), 0x0800, i);
        f.extend(ipv4(6, 20 + 6, i));
        f.extend(tcp(50000 + i as u16, 80));
        f.resize(64, 0);
        v.push(f);
    }
    for i in 0..3u8 {
        let mut f = eth(None, 0x0806, i);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 2, i, 10, 0, 0, 1]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f.resize(60, 0);
        v.push(f);
    }
    let mut f = eth(None, 0x0800, 1);
    f.extend(&ipv4(6, 20, 1)[..12]);
    v.push(f);
    let mut f = eth(None, 0x0800, 2);
    let mut ip = ipv4(17, 8, 2);
    ip[0] = 0x44;
    f.extend(ip);
    f.extend(udp(1, 2, 0));
    f.resize(64, 0);
    v.push(f);
    v.push(vec![0xff; 10]);
    assert_eq!(v.len(), BURST);
    // Fixed shuffle (LCG), so the branch pattern is not trivially periodic.
    let mut s = 0x2545_f491u32;
    for i in (1..v.len()).rev() {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        v.swap(i, (s >> 8) as usize % (i + 1));
    }
    v
}

/// The burst to measure: the mix, or with `CLASSIFY_ONLY=<k>` 32 copies of frame `k` of the
/// mix (per-type figures).
fn bench_frames() -> Vec<Vec<u8>> {
    let frames = mix();
    match std::env::var("CLASSIFY_ONLY").ok().and_then(|s| s.parse::<usize>().ok()) {
        Some(k) => {
            let f = frames[k % BURST].clone();
            eprintln!(
                "classify: a burst of frame {k} of the mix only: {} bytes, {:02x?}",
                f.len(),
                &f[..f.len().min(18)]
            );
            vec![f; BURST]
        }
        None => frames,
    }
}

/// A minimal heap-backed buffer, to measure the `PacketBuf` path (metadata writes included).
#[derive(Debug)]
struct BenchBuf {
    data: Vec<u8>,
    meta: PacketMeta,
}

impl PacketBuf for BenchBuf {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    fn headroom(&self) -> usize {
        0
    }
    fn tailroom(&self) -> usize {
        0
    }
    fn prepend(&mut self, _: usize) -> Option<&mut [u8]> {
        None
    }
    fn adj(&mut self, _: usize) -> bool {
        false
    }
    fn append(&mut self, _: usize) -> Option<&mut [u8]> {
        None
    }
    fn trim(&mut self, _: usize) -> bool {
        false
    }
    fn meta(&self) -> PacketMeta {
        self.meta
    }
    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
    fn port(&self) -> u16 {
        self.meta.port
    }
    fn set_port(&mut self, port: u16) {
        self.meta.port = port;
    }
    fn hash(&self) -> u32 {
        self.meta.hash
    }
    fn set_hash(&mut self, hash: u32) {
        self.meta.hash = hash;
    }
}

/// etherparse baseline, first half: slice the packet and build the same hash input as the
/// classifier (RSS order: addresses then ports, the MAC pair when there is no IP header) into
/// `buf`; returns its length.
#[inline(always)]
fn etherparse_input(f: &[u8], buf: &mut [u8; 36]) -> usize {
    let mut n;
    let mac_pair = |buf: &mut [u8; 36]| {
        if f.len() >= 14 {
            buf[..6].copy_from_slice(&f[6..12]);
            buf[6..12].copy_from_slice(&f[..6]);
            12
        } else {
            0
        }
    };
    match SlicedPacket::from_ethernet(f) {
        Ok(p) => {
            match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    buf[..4].copy_from_slice(&ip.header().source());
                    buf[4..8].copy_from_slice(&ip.header().destination());
                    n = 8;
                }
                Some(NetSlice::Ipv6(ip)) => {
                    buf[..16].copy_from_slice(&ip.header().source());
                    buf[16..32].copy_from_slice(&ip.header().destination());
                    n = 32;
                }
                _ => n = mac_pair(buf),
            }
            let ports = match &p.transport {
                Some(TransportSlice::Tcp(t)) if n != 12 => Some((t.source_port(), t.destination_port())),
                Some(TransportSlice::Udp(u)) if n != 12 => Some((u.source_port(), u.destination_port())),
                _ => None,
            };
            if let Some((s, d)) = ports {
                buf[n..n + 2].copy_from_slice(&s.to_be_bytes());
                buf[n + 2..n + 4].copy_from_slice(&d.to_be_bytes());
                n += 4;
            }
        }
        Err(_) => n = mac_pair(buf),
    }
    n
}

/// Which hash the etherparse baseline computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Table-driven Toeplitz, as `Impl::Scalar` (our vector paths batch it instead).
    Toeplitz,
    /// Slicing-by-8 CRC32C, as `Impl::Scalar`.
    Crc,
    /// CRC32C with the SSE4.2 `crc32` instruction, as our SSE4.2/AVX2 paths.
    CrcHw,
}

/// The etherparse baseline over a burst: [`etherparse_input`], then the chosen hash.
///
/// One function for every variant, so that `SlicedPacket::from_ethernet` has a single call
/// site and is inlined as in the original baseline; compiled with SSE4.2 on x86_64 for the
/// `crc32` instruction.
///
/// # Safety
/// On x86_64 the CPU must support SSE4.2 (checked in `main`).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse4.2"))]
#[inline(never)]
unsafe fn etherparse_burst(frames: &[&[u8]], kind: Baseline, key: &RssKey, hashes: &mut [u32; BURST]) {
    for (h, f) in hashes.iter_mut().zip(frames) {
        let mut buf = [0u8; 36];
        let n = etherparse_input(f, &mut buf);
        let input = &buf[..n];
        *h = match kind {
            Baseline::Toeplitz => key.hash(input),
            Baseline::Crc => crc32c(input),
            #[cfg(target_arch = "x86_64")]
            Baseline::CrcHw => {
                use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};
                let mut c = u64::from(!0u32);
                let mut words = input.chunks_exact(8);
                for w in &mut words {
                    c = _mm_crc32_u64(c, u64::from_le_bytes(w.try_into().unwrap_or_default()));
                }
                let mut c = c as u32;
                if let Some(w) = words.remainder().first_chunk::<4>() {
                    c = _mm_crc32_u32(c, u32::from_le_bytes(*w));
                }
                !c
            }
            #[cfg(not(target_arch = "x86_64"))]
            Baseline::CrcHw => crc32c(input),
        };
    }
}

/// Safe wrapper of [`etherparse_burst`].
fn etherparse(frames: &[&[u8]], kind: Baseline, key: &RssKey, hashes: &mut [u32; BURST]) {
    #[cfg(target_arch = "x86_64")]
    assert!(std::arch::is_x86_feature_detected!("sse4.2"), "the etherparse baseline needs SSE4.2");
    // SAFETY: SSE4.2 was checked just above (on x86_64; no requirement elsewhere).
    unsafe { etherparse_burst(frames, kind, key, hashes) }
}

/// The baselines to run for `hash`: name and variant.
fn baselines(hash: HashKind) -> Vec<(&'static str, Baseline)> {
    match hash {
        HashKind::Toeplitz => vec![("etherparse", Baseline::Toeplitz)],
        HashKind::Crc32c if cfg!(target_arch = "x86_64") => {
            vec![("etherparse", Baseline::Crc), ("etherparse-hwcrc", Baseline::CrcHw)]
        }
        HashKind::Crc32c => vec![("etherparse", Baseline::Crc)],
    }
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported
    // on Linux. On failure `ts` stays zero, which only spoils the measurement.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A criterion measurement of thread CPU time (see the module docs for why).
struct ThreadTime;

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (cpu)"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
        };
        values.iter_mut().for_each(|v| *v = n * 1e3 / *v);
        "M/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn bench_classify<M: Measurement>(c: &mut Criterion<M>) {
    let frames = mix();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let mut bufs: Vec<BenchBuf> =
        frames.iter().map(|f| BenchBuf { data: f.clone(), meta: PacketMeta::default() }).collect();
    let mut out = [Classified::default(); BURST];
    let impls: Vec<Impl> = Impl::ALL.into_iter().filter(|i| i.is_available()).collect();
    eprintln!("classify: selected implementation {:?}; available {:?}", dataplane::classify::implementation(), impls);

    for (hname, cfg) in [("toeplitz", ClassifyConfig::default()), ("crc32c", ClassifyConfig::crc32c())] {
        let mut g = c.benchmark_group(format!("classify_burst32/{hname}"));
        g.throughput(Throughput::Elements(BURST as u64));
        for &imp in &impls {
            g.bench_function(BenchmarkId::new("slices", imp.name()), |b| {
                b.iter(|| {
                    let n = classify_slices_with(imp, black_box(&refs), &cfg, &mut out).unwrap_or(0);
                    black_box(&out);
                    n
                })
            });
            g.bench_function(BenchmarkId::new("packetbuf", imp.name()), |b| {
                b.iter(|| {
                    let n = classify_burst_with(imp, black_box(&mut bufs[..]), &cfg, &mut out).unwrap_or(0);
                    black_box(&out);
                    n
                })
            });
        }
        let key = cfg.rss_key().clone();
        // Same work on both sides: the baseline must produce the very same hashes.
        classify_slices_with(Impl::Scalar, &refs, &cfg, &mut out).expect("scalar is always available");
        let mut hashes = [0u32; BURST];
        for (name, kind) in baselines(cfg.hash) {
            etherparse(&refs, kind, &key, &mut hashes);
            for ((f, o), h) in refs.iter().zip(&out).zip(&hashes) {
                assert_eq!(*h, o.hash, "{name} baseline disagrees on {f:02x?}");
            }
            g.bench_function(BenchmarkId::new("slices", name), |b| {
                b.iter(|| {
                    etherparse(black_box(&refs), kind, &key, &mut hashes);
                    black_box(&hashes);
                })
            });
        }
        g.finish();
    }
}

/// Bursts per timed pass of the interleaved timing (a pass of ours is ~10 µs: long enough for
/// the TSC reads not to matter, short enough to fit between two preemptions).
const PASS_BURSTS: usize = 64;
/// Rounds of the interleaved timing.
const ROUNDS: usize = 1000;

/// One contender of the interleaved timing.
#[derive(Debug, Clone, Copy)]
enum Contender {
    Ours(Impl),
    Etherparse(Baseline),
}

/// Same-run comparison robust to the load of a shared machine, as `benches/lpm.rs` does for
/// LPM: criterion times one function for seconds, then the next, and the load changes in
/// between; here each round times every contender in turn on the same burst
/// (after one untimed pass, the fastest of three timed passes of `PASS_BURSTS` bursts, in TSC
/// cycles per packet), and each figure is the median over the rounds of the per-round ratio,
/// so both sides of a ratio see the same load. Contention itself (the other hyperthread or
/// core busy) moves the ratio, though: etherparse, with three times the instructions and
/// more memory traffic, suffers more from it, and under load the medians of the ratios grow
/// (figures in `benches/CLASSIFY_RESULTS.md`, "Why interleaved"). Hence also the ratio of the fastest passes of the whole
/// run ("minima"): the least disturbed figure of each side, the quiet-machine ratio.
fn interleaved(hname: &str, cfg: &ClassifyConfig, refs: &[&[u8]]) {
    let key = cfg.rss_key().clone();
    let mut list: Vec<(String, Contender)> = Impl::ALL
        .into_iter()
        .filter(|i| i.is_available())
        .map(|i| (format!("ours {}", i.name()), Contender::Ours(i)))
        .collect();
    list.extend(baselines(cfg.hash).into_iter().map(|(n, k)| (n.to_string(), Contender::Etherparse(k))));
    // The anchor: etherparse with the same hash speed as our best path.
    let anchor_name =
        if cfg.hash == HashKind::Crc32c && cfg!(target_arch = "x86_64") { "etherparse-hwcrc" } else { "etherparse" };
    let anchor = list.iter().position(|(n, _)| n == anchor_name).expect("anchor present");
    let scalar = list.iter().position(|(n, _)| n == "ours scalar").expect("scalar present");
    let mut out = [Classified::default(); BURST];
    let mut hashes = [0u32; BURST];
    // Same work on every side: each baseline yields the very same hashes as the classifier.
    classify_slices_with(Impl::Scalar, refs, cfg, &mut out).expect("scalar is always available");
    for (name, who) in &list {
        if let Contender::Etherparse(kind) = *who {
            etherparse(refs, kind, &key, &mut hashes);
            assert!(hashes.iter().zip(&out).all(|(h, o)| *h == o.hash), "{name} baseline disagrees");
        }
    }
    let mut pass = |c: Contender| {
        for _ in 0..PASS_BURSTS {
            match c {
                Contender::Ours(imp) => {
                    let _ = classify_slices_with(imp, black_box(refs), cfg, &mut out);
                    black_box(&out);
                }
                Contender::Etherparse(kind) => {
                    etherparse(black_box(refs), kind, &key, &mut hashes);
                    black_box(&hashes);
                }
            }
        }
    };
    let mut cyc: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); list.len()];
    for _ in 0..ROUNDS {
        for (c, (_, who)) in cyc.iter_mut().zip(&list) {
            pass(*who);
            let mut best = u64::MAX;
            for _ in 0..3 {
                let t0 = dataplane::arch::cycles();
                pass(*who);
                best = best.min(dataplane::arch::cycles().wrapping_sub(t0));
            }
            c.push(best as f64 / (PASS_BURSTS * BURST) as f64);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ns_per_cycle = 1e9 / dataplane::arch::cycles_per_sec() as f64;
    eprintln!(
        "classify interleaved/{hname}: burst {BURST}, {ROUNDS} rounds x {PASS_BURSTS} bursts per pass; \
         speed ratios are medians of per-round ratios (>1 = faster); TSC {:.3} GHz",
        dataplane::arch::cycles_per_sec() as f64 / 1e9
    );
    for (i, (name, _)) in list.iter().enumerate() {
        let med = median(cyc[i].clone());
        let min = cyc[i].iter().copied().fold(f64::MAX, f64::min);
        let vs_anchor = median((0..ROUNDS).map(|r| cyc[anchor][r] / cyc[i][r]).collect());
        let vs_scalar = median((0..ROUNDS).map(|r| cyc[scalar][r] / cyc[i][r]).collect());
        let min_anchor = cyc[anchor].iter().copied().fold(f64::MAX, f64::min);
        let min_scalar = cyc[scalar].iter().copied().fold(f64::MAX, f64::min);
        eprintln!(
            "classify interleaved/{hname}: {name:18} median {med:6.2} min {min:6.2} TSC cycles/packet \
             ({:5.2} ns); vs {anchor_name}: {vs_anchor:5.2}x (minima {:5.2}x); vs ours scalar: \
             {vs_scalar:5.2}x (minima {:5.2}x)",
            med * ns_per_cycle,
            min_anchor / min,
            min_scalar / min,
        );
    }
}

/// Runs `iters` bursts of one variant; callgrind counts this function alone
/// (`--toggle-collect=*count_loop*`), so instructions per packet = Ir / (iters × 32).
#[inline(never)]
fn count_loop(iters: usize, body: &mut dyn FnMut()) {
    for _ in 0..iters {
        body();
    }
}

/// `CLASSIFY_COUNT=<toeplitz|crc32c>/<impl name|etherparse>`: no criterion, just
/// `CLASSIFY_COUNT_ITERS` (default 1000) bursts of that variant, for instruction counting:
/// `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*count_loop*' <bench binary>`.
fn count_mode(spec: &str) {
    let iters = std::env::var("CLASSIFY_COUNT_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (hname, which) = spec.split_once('/').expect("CLASSIFY_COUNT=<hash>/<impl>");
    let cfg = if hname == "crc32c" { ClassifyConfig::crc32c() } else { ClassifyConfig::default() };
    let frames = bench_frames();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    let mut out = [Classified::default(); BURST];
    if let Some(&(_, kind)) = baselines(cfg.hash).iter().find(|(name, _)| *name == which) {
        let key = cfg.rss_key().clone();
        let mut hashes = [0u32; BURST];
        count_loop(iters, &mut || {
            etherparse(black_box(&refs), kind, &key, &mut hashes);
            black_box(&hashes);
        });
    } else {
        let imp = Impl::ALL.into_iter().find(|i| i.name() == which).expect("unknown implementation");
        count_loop(iters, &mut || {
            classify_slices_with(imp, black_box(&refs), &cfg, &mut out).expect("implementation available");
            black_box(&out);
        });
    }
}

fn main() {
    if let Some(spec) = std::env::var_os("CLASSIFY_COUNT") {
        count_mode(&spec.to_string_lossy());
        return;
    }
    // The interleaved same-run comparison first (the figures to quote), then criterion's
    // groups; `CLASSIFY_INTERLEAVED_ONLY=1` stops after the former.
    let frames = bench_frames();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    for (hname, cfg) in [("crc32c", ClassifyConfig::crc32c()), ("toeplitz", ClassifyConfig::default())] {
        interleaved(hname, &cfg, &refs);
    }
    if std::env::var_os("CLASSIFY_INTERLEAVED_ONLY").is_some() {
        return;
    }
    if std::env::var_os("CLASSIFY_BENCH_WALL").is_some() {
        let mut c = Criterion::<WallTime>::default().configure_from_args();
        bench_classify(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().with_measurement(ThreadTime).configure_from_args();
        bench_classify(&mut c);
        c.final_summary();
    }
}
