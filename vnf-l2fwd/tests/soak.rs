//! Soak: the VNF forwards a fixed rate far below saturation in the pod-like namespace setup
//! (see `common`) for `SOAK_SECONDS` (default 600), reloading its routes every 10 s, while
//! the metrics endpoint is scraped every 5 s. Nothing may be lost or duplicated, the resident
//! memory must stay flat after the warm-up and no file descriptor may leak; the exit must be
//! clean with every mbuf back. Root needed; skipped without it, failing under CI=true.
//!
//! Run on demand with `ci/soak [SECONDS]`; `ci/test` runs a 60-second version.

mod common;

use common::{send, Counter, PodBed, ROUTES, ROUTES_PLUS};
use std::time::{Duration, Instant};

/// Datagrams per second: far below what either kernel backend forwards.
const PPS: u32 = 2000;
/// A round: one phase of traffic with one reload in its middle.
const ROUND_S: u32 = 10;
/// Resident memory may grow this much from the first quarter of the run to its end.
const RSS_SLACK_KIB: u64 = 2048;

#[test]
#[ignore = "long: run by ci/soak and ci/test (SOAK_SECONDS)"]
fn soak_fixed_rate_with_reloads() {
    if !netns::require_or_skip("soak_fixed_rate_with_reloads") {
        return;
    }
    let secs: u32 = std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let rounds = (secs / ROUND_S).clamp(1, 250);
    let bed = PodBed::new();
    let vnf = bed.start_l3fwd(&[]);
    let server = Counter::start(&bed.server);
    bed.warm_up(&server);

    let t0 = Instant::now();
    let mut samples: Vec<(u64, u64, usize)> = vec![];
    let mut sample = |vnf: &common::Vnf| {
        let scraped = vnf.get("/metrics").is_some_and(|m| m.contains("vnf_uptime_seconds"));
        assert!(scraped, "the metrics endpoint did not answer at {:?}", t0.elapsed());
        let (rss, fds) = vnf.rss_kib_and_fds();
        samples.push((t0.elapsed().as_secs(), rss, fds));
    };
    for r in 0..rounds {
        let phase = (r + 1) as u8;
        let n = PPS * ROUND_S;
        let sender = send(&bed.client, "198.18.2.2:9000", phase, n, PPS);
        std::thread::sleep(Duration::from_secs(u64::from(ROUND_S) / 2));
        // Alternate between two tables that both route the traffic.
        std::fs::write(&bed.routes, if r % 2 == 0 { ROUTES_PLUS } else { ROUTES }).unwrap();
        vnf.signal(libc::SIGHUP);
        sample(&vnf);
        sender.join().unwrap();
        sample(&vnf);
        server.assert_exact(phase, n, &format!("round {r} of {rounds} at {:?}", t0.elapsed()));
        assert!(
            vnf.wait_metric("vnf_route_reloads_total{result=\"ok\"}", f64::from(r + 1), 10),
            "reload {} did not succeed",
            r + 1
        );
    }
    assert_eq!(vnf.metric("vnf_route_reloads_total{result=\"rejected\"}"), Some(0.0));

    eprintln!("soak: {rounds} rounds of {ROUND_S} s at {PPS} pps; samples (s, RSS KiB, fds):");
    for s in &samples {
        eprintln!("  {:>5} {:>8} {:>4}", s.0, s.1, s.2);
    }
    let quarter = samples[samples.len() / 4].1;
    let last = samples.last().unwrap().1;
    assert!(last <= quarter + RSS_SLACK_KIB, "RSS grew from {quarter} KiB to {last} KiB: {samples:?}");
    // Descriptors: a scrape's connection or the reload's open file may be caught in a sample;
    // what a leak shows is a floor that rises.
    let fds: Vec<usize> = samples.iter().map(|s| s.2).collect();
    let third = fds.len().div_ceil(3);
    let (early, late) = (fds[..third].iter().min().unwrap(), fds[fds.len() - third..].iter().min().unwrap());
    assert!(late <= early, "file descriptors grew from {early} to {late}: {fds:?}");
    assert!(fds.iter().max().unwrap() - early <= 4, "file descriptors: {fds:?}");

    let (status, out, err, took) = vnf.terminate();
    assert!(status.success(), "exit {status}\n{out}\n{err}");
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
    assert!(out.contains("no leak"), "mbufs leaked:\n{out}\n{err}");
}
