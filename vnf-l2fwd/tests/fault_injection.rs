//! Faults while the VNF forwards a steady load in a pod-like namespace setup (root needed;
//! skipped without it, failing under CI=true). See `common` for the bed.
//!
//! In order, with traffic flowing: a SIGHUP with a broken route file (rejected, the old
//! routes keep forwarding), a SIGHUP with a good one (the new route forwards), a flood of the
//! metrics endpoint, the deletion of the server's link (net2 goes with it) and its
//! re-creation, then SIGTERM. Every datagram sent while the link is up must arrive exactly
//! once; the VNF must never panic, must exit cleanly and promptly, and must return every mbuf.

mod common;

use common::{send, Counter, PodBed, ROUTES_PLUS};
use std::io::Write;
use std::time::{Duration, Instant};

/// Datagrams per phase, at 2000 per second.
const N: u32 = 2000;
const PPS: u32 = 2000;

#[test]
fn faults_under_load_lose_nothing_while_the_link_is_up() {
    if !netns::require_or_skip("faults_under_load_lose_nothing_while_the_link_is_up") {
        return;
    }
    let mut bed = PodBed::new();
    let vnf = bed.start_l3fwd(&[]);
    let server = Counter::start(&bed.server);
    bed.warm_up(&server);
    let rejected = "vnf_route_reloads_total{result=\"rejected\"}";
    let ok = "vnf_route_reloads_total{result=\"ok\"}";
    let generation = "vnf_route_table_generation";
    let v4 = "vnf_route_table_routes{family=\"ipv4\"}";
    assert_eq!(vnf.metric(generation), Some(0.0));

    // 1. A broken route file, mid-phase: rejected, and the running table keeps forwarding.
    let sender = send(&bed.client, "198.18.2.2:9000", 1, N, PPS);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&bed.routes, "R198.18.1.0/24 0\nR198.18.2.0/33 1\nthis is not a route\n").unwrap();
    vnf.signal(libc::SIGHUP);
    assert!(vnf.wait_metric(rejected, 1.0, 30), "the broken file was not rejected");
    assert_eq!((vnf.metric(generation), vnf.metric(v4)), (Some(0.0), Some(2.0)), "the old table stays");
    sender.join().unwrap();
    server.assert_exact(1, N, "phase 1 (broken reload)");

    // 2. A good file, mid-phase: the new route carries phase 2.
    let sender = send(&bed.client, "198.18.2.2:9000", 2, N, PPS);
    std::fs::write(&bed.routes, ROUTES_PLUS).unwrap();
    vnf.signal(libc::SIGHUP);
    assert!(vnf.wait_metric(ok, 1.0, 30), "the good file was not loaded");
    assert_eq!((vnf.metric(generation), vnf.metric(v4)), (Some(1.0), Some(3.0)));
    sender.join().unwrap();
    send(&bed.client, "198.18.3.2:9000", 3, N, PPS).join().unwrap();
    server.assert_exact(2, N, "phase 2 (good reload)");
    server.assert_exact(3, N, "phase 3 (the new route)");

    // 3. A metrics flood while traffic flows: 300 idle connections held open and 300 scrapes,
    // from the pod's namespace; forwarding loses nothing and the endpoint still answers.
    let sender = send(&bed.client, "198.18.2.2:9000", 4, N, PPS);
    let addr = vnf.maddr.clone();
    let flood = netns::spawn_in(bed.pod.name(), move || {
        let idle: Vec<_> = (0..300).filter_map(|_| std::net::TcpStream::connect(&addr).ok()).collect();
        let mut answered = 0;
        for _ in 0..300 {
            if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                if c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").is_ok() {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut c, &mut s);
                    answered += usize::from(s.contains("vnf_uptime_seconds"));
                }
            }
        }
        drop(idle);
        answered
    })
    .unwrap();
    sender.join().unwrap();
    let answered = flood.join().unwrap();
    assert!(answered > 0, "no scrape answered during the flood");
    server.assert_exact(4, N, "phase 4 (metrics flood)");
    assert!(vnf.get("/metrics").is_some_and(|m| m.contains("vnf_uptime_seconds")), "no answer after the flood");

    // 4. The server's link is deleted (net2 with it) and created again. The VNF's port stays
    // bound to the deleted interface (as DPDK's and VPP's af_packet ports do): it reports the
    // link down and forwards no more to the server, but keeps running and serving.
    let up = "vnf_port_link_up{port=\"1\"";
    assert_eq!(vnf.metric(up), Some(1.0));
    bed.delete_server_link();
    let lost = send(&bed.client, "198.18.2.2:9000", 5, 200, PPS);
    lost.join().unwrap();
    bed.recreate_server_link();
    let t0 = Instant::now();
    while vnf.metric(up) != Some(0.0) && t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(vnf.metric(up), Some(0.0), "port 1 must report its deleted link down");
    let mut vnf = vnf;
    assert!(vnf.alive(), "the VNF died with its link");
    // The worker still polls the client's side: what the client sends is received.
    let rx0 = "vnf_port_rx_packets_total{port=\"0\"";
    let before = vnf.metric(rx0).unwrap();
    send(&bed.client, "198.18.2.2:9000", 6, 200, PPS).join().unwrap();
    assert!(vnf.wait_metric(rx0, before + 200.0, 5), "port 0 stopped receiving: {:?} after {before}", vnf.metric(rx0));

    // 5. SIGTERM: a prompt, clean exit with every mbuf back.
    let (status, out, err, took) = vnf.terminate();
    assert!(status.success(), "exit {status}\n{out}\n{err}");
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
    assert!(!err.contains("panicked") && !out.contains("panicked"), "{out}\n{err}");
    assert!(out.contains("no leak"), "mbufs leaked:\n{out}\n{err}");
    assert!(!bed.pidfile.exists(), "pidfile left behind");
}
