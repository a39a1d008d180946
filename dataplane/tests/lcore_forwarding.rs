//! The worker runtime end to end on synthetic ports: counts are exact and every mbuf returns.

use dataplane::burst::Burst;
use dataplane::fwd::{Distributor, L2Fwd};
use dataplane::lcore::{pipeline_rings, Forward, Lcore, Runtime, IDLE_POLLS};
use dataplane::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
use dataplane::port::null::{NullConfig, NullPort};
use dataplane::port::ring::RingPort;
use dataplane::port::{MacAddr, Port};
use dataplane::PacketBuf;
use std::time::Duration;

fn pool(n: u32) -> Mempool {
    let mut c = MempoolConfig::new("lcore-test", n);
    c.backing = MemBacking::Normal;
    Mempool::new(c).unwrap()
}

/// Packets injected through ring ports are forwarded with DPDK l2fwd's rewrite, exactly once.
#[test]
fn l2fwd_over_ring_ports_is_exact() {
    l2fwd_over_ring_ports(0);
}

/// The same with an idle sleep: nothing is lost or late for good, and a quiet worker sleeps.
/// Each loop iteration past the first `IDLE_POLLS` empty ones in a row sleeps at least the
/// idle sleep, so the empty iterations are bounded by the run's length over the sleep (a
/// busy-polling worker makes millions in the quiet spell at the end).
#[test]
fn l2fwd_with_an_idle_sleep_is_exact_and_sleeps_when_quiet() {
    l2fwd_over_ring_ports(1000);
}

fn l2fwd_over_ring_ports(idle_sleep_us: u64) {
    let pool = pool(4096);
    // Outside world <-> VNF port 0 and VNF port 1 <-> outside world.
    let (mut outer0, mut vnf0) = RingPort::<Mbuf>::pair(10, 0, 1, 1024).unwrap();
    let (mut vnf1, mut outer1) = RingPort::<Mbuf>::pair(1, 11, 1, 1024).unwrap();
    vnf0.set_mac(MacAddr([2, 0xaa, 0, 0, 0, 0]));
    vnf1.set_mac(MacAddr([2, 0xaa, 0, 0, 0, 1]));
    let mut fwd = L2Fwd::new();
    fwd.pair(0, 1).set_port_mac(0, vnf0.mac()).set_port_mac(1, vnf1.mac());
    let mut l = Lcore::new("w0", None, fwd);
    l.set_idle_sleep_us(idle_sleep_us).unwrap();
    l.add_rx(0, vnf0.rx_queue(0).unwrap()).add_rx(1, vnf1.rx_queue(0).unwrap());
    l.add_tx(0, vnf0.tx_queue(0).unwrap()).unwrap();
    l.add_tx(1, vnf1.tx_queue(0).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let mut rt = Runtime::launch(vec![l]).unwrap();

    let mut inj = outer0.tx_queue(0).unwrap();
    let mut out = outer1.rx_queue(0).unwrap();
    const N: u32 = 3000;
    let mut sent = 0u32;
    let mut seen = vec![0u8; N as usize];
    let mut got = Burst::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.contains(&0) && std::time::Instant::now() < deadline {
        // Fewer packets in flight than the output ring holds (see l3fwd_pcap.rs).
        let received = seen.iter().filter(|&&c| c > 0).count() as u32;
        if sent < N && sent - received < 512 {
            let mut b = Burst::new();
            for _ in 0..32.min(N - sent) {
                let mut frame = [0u8; 64];
                frame[12] = 0x08;
                frame[14..18].copy_from_slice(&sent.to_be_bytes());
                b.push(Mbuf::from_slice(&pool, &frame).unwrap()).unwrap();
                sent += 1;
            }
            let k = inj.tx_burst(&mut b);
            sent -= b.len() as u32;
            let _ = k;
        }
        out.rx_burst(&mut got, 64);
        for m in got.iter() {
            let d = m.data();
            assert_eq!(&d[..6], &[2, 0, 0, 0, 0, 1], "dst = 02:00:00:00:00:<tx port>");
            assert_eq!(&d[6..12], &[2, 0xaa, 0, 0, 0, 1], "src = tx port MAC");
            let seq = u32::from_be_bytes(d[14..18].try_into().unwrap());
            seen[seq as usize] += 1;
        }
        got.clear();
    }
    // A quiet spell before the stop.
    std::thread::sleep(Duration::from_millis(300));
    rt.stop();
    assert!(rt.join().is_empty());
    let elapsed_us = started.elapsed().as_micros() as u64;
    assert!(seen.iter().all(|&c| c == 1), "every packet exactly once");
    if let Some(sleeps) = elapsed_us.checked_div(idle_sleep_us) {
        let t = rt.busy_totals();
        let empty = t.loops - t.busy_loops;
        let bound = u64::from(IDLE_POLLS) * (t.busy_loops + 1) + sleeps + 1;
        assert!(
            empty <= bound,
            "{empty} empty loop iterations in {elapsed_us} us: more than {bound}, the worker did not sleep"
        );
    }
    let ps = rt.port_stats(2);
    assert_eq!(ps[0].0, N as u64, "rx on port 0");
    // The classifier ran on every received burst, over every packet (issue 16).
    let s = &rt.lcore_stats()[0];
    assert!(s.classified_bursts.get() > 0);
    assert_eq!(s.classified_pkts.get(), ps[0].0 + ps[1].0, "every received packet classified");
    assert_eq!(ps[1].1, N as u64, "tx on port 1");
    drop((inj, out, outer0, outer1, vnf0, vnf1, rt));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

/// Pipeline: an rx lcore spreads null-port traffic over two workers through rings; after stop
/// every received packet was either sent or counted, and the pool is full again.
#[test]
fn pipeline_drains_on_stop() {
    let pool = pool(8192);
    let mut null0 = NullPort::new(0, NullConfig::new(0), pool.clone()).unwrap();
    let mut cfg1 = NullConfig::new(1);
    cfg1.tx_queues = 2;
    cfg1.rx_queues = 0;
    let mut null1 = NullPort::new(1, cfg1, pool.clone()).unwrap();
    let rings = pipeline_rings::<Mbuf>(2, 256, 8).unwrap();
    let mut rx_l: Lcore<Mbuf, Box<dyn Forward<Mbuf>>> = Lcore::new("rx", None, Box::new(Distributor::new(8, 2)));
    rx_l.add_rx(0, null0.rx_queue(0).unwrap()).set_feeds_pipeline(true);
    let mut lcores = vec![];
    let mut workers = vec![];
    for (k, (id, txq, rxq)) in rings.into_iter().enumerate() {
        rx_l.add_tx(id, txq).unwrap();
        let mut fwd = L2Fwd::new();
        fwd.route(0, 1);
        let mut w: Lcore<Mbuf, Box<dyn Forward<Mbuf>>> = Lcore::new(&format!("w{k}"), None, Box::new(fwd));
        w.add_pipeline_rx(id, rxq);
        w.add_tx(1, null1.tx_queue(k as u16).unwrap()).unwrap();
        workers.push(w);
    }
    lcores.push(rx_l);
    lcores.extend(workers);
    let mut rt = Runtime::launch(lcores).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rt.stop();
    assert!(rt.join().is_empty());
    let ps = rt.port_stats(10);
    let received = ps[0].0;
    let into_rings = ps[8].1 + ps[9].1;
    let ring_drops = ps[8].2 + ps[9].2;
    assert!(received > 0);
    // The rx lcore classified every packet it received (with the flow hash the distributor
    // spreads by); the workers take the metadata from the rings and do not classify again.
    let st = rt.lcore_stats();
    assert!(st[0].classified_bursts.get() > 0);
    assert_eq!(st[0].classified_pkts.get(), received, "every received packet classified");
    assert!(st[1..].iter().all(|s| s.classified_bursts.get() == 0), "ring bursts are not classified again");
    assert_eq!(received, into_rings + ring_drops, "every received packet went into a ring or was counted");
    assert_eq!(ps[8].0 + ps[9].0, into_rings, "workers took everything from the rings");
    assert_eq!(ps[1].1 + ps[1].2, into_rings, "and sent or counted all of it");
    assert_eq!(null1.stats().opackets, ps[1].1);
    drop((null0, null1, rt));
    assert_eq!(pool.in_use(), 0);
}

/// A stage that leaves packets in its burst is a bug, asserted in debug builds (release
/// builds free and count them).
#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "left 32 packets unhandled")]
fn a_stage_leaving_packets_is_asserted() {
    use dataplane::classify::Level;
    use dataplane::lcore::Tx;
    struct Lazy;
    impl Forward<Mbuf> for Lazy {
        fn forward(&mut self, _rx_port: u16, _pkts: &mut Burst<Mbuf>, _tx: &mut Tx<Mbuf>) {}
        fn classify_level(&self) -> Level {
            Level::None
        }
    }
    let pool = pool(256);
    let mut null0 = NullPort::new(0, NullConfig::new(0), pool.clone()).unwrap();
    let mut l = Lcore::new("lazy", None, Lazy);
    l.add_rx(0, null0.rx_queue(0).unwrap());
    l.poll_once(&mut Burst::new(), false);
}

/// A queue whose hardware fills the packet type is not classified again; the stage still
/// gets every packet.
#[test]
fn queues_that_fill_the_packet_type_skip_the_classifier() {
    use dataplane::port::{BoxRx, RxQueue};
    struct HwPtype(BoxRx<Mbuf>);
    impl RxQueue for HwPtype {
        type Buf = Mbuf;
        fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
            self.0.rx_burst(out, max)
        }
        fn fills_ptype(&self) -> bool {
            true
        }
    }
    let pool = pool(256);
    let mut null0 = NullPort::new(0, NullConfig::new(0), pool.clone()).unwrap();
    let mut null1 = NullPort::new(1, NullConfig::new(1), pool.clone()).unwrap();
    let mut fwd = L2Fwd::new();
    fwd.route(0, 1).route(1, 0);
    let mut l = Lcore::new("hw", None, fwd);
    l.add_rx(0, Box::new(HwPtype(null0.rx_queue(0).unwrap()))).add_rx(1, null1.rx_queue(0).unwrap());
    l.add_tx(0, null0.tx_queue(0).unwrap()).unwrap();
    l.add_tx(1, null1.tx_queue(0).unwrap()).unwrap();
    let stats = l.stats();
    let mut burst = Burst::new();
    assert_eq!(l.poll_once(&mut burst, true), 64);
    assert_eq!(stats.classified_bursts.get(), 1, "only port 1's burst");
    assert_eq!(stats.classified_pkts.get(), 32);
    drop((l, burst, null0, null1));
    assert_eq!(pool.in_use(), 0);
}

/// With an rx chunk, the stage gets each received burst in chunks of at most that many
/// packets, in order, each classified just before (the classifier counted once per received
/// burst); a stage that asks for no classification gets the whole burst; 0 is whole bursts.
#[test]
fn an_rx_chunk_hands_the_stage_classified_chunks_in_order() {
    use dataplane::classify::Level;
    use dataplane::lcore::Tx;
    use std::sync::{Arc, Mutex};
    /// Records the size of each call and the first byte of every packet, and whether each was
    /// classified (Ethernet in its packet type), then sends all to port 1.
    #[derive(Default)]
    struct Seen {
        calls: Vec<usize>,
        firsts: Vec<u8>,
        all_classified: bool,
    }
    #[derive(Clone)]
    struct Record(Level, Arc<Mutex<Seen>>);
    impl Forward<Mbuf> for Record {
        fn forward(&mut self, _rx_port: u16, pkts: &mut Burst<Mbuf>, tx: &mut Tx<Mbuf>) {
            let mut r = self.1.lock().unwrap();
            r.calls.push(pkts.len());
            for m in pkts.iter() {
                r.firsts.push(m.data()[0]);
                r.all_classified &= self.0 == Level::None || m.ptype() & dataplane::classify::ptype::L2_MASK != 0;
            }
            let n = pkts.len();
            tx.send_front(1, pkts, n);
        }
        fn classify_level(&self) -> Level {
            self.0
        }
    }
    for (level, chunk, want) in [
        (Level::L3, 8, vec![8, 8, 8, 8, 8, 2]),
        (Level::L2, 16, vec![16, 16, 10]),
        (Level::L3, 0, vec![42]),
        (Level::None, 8, vec![42]),
    ] {
        let pool = pool(256);
        let (mut outer, mut p0) = RingPort::<Mbuf>::pair(10, 0, 1, 64).unwrap();
        let (mut p1, _outer1) = RingPort::<Mbuf>::pair(1, 11, 1, 64).unwrap();
        let rec = Arc::new(Mutex::new(Seen { all_classified: true, ..Seen::default() }));
        let mut l = Lcore::new("chunk", None, Record(level, rec.clone()));
        l.set_rx_chunk(chunk).unwrap().set_rx_burst(64).unwrap();
        l.add_rx(0, p0.rx_queue(0).unwrap());
        l.add_tx(1, p1.tx_queue(0).unwrap()).unwrap();
        let frame = dataplane::txgen::build_frame(&dataplane::txgen::TxGenConfig::default()).unwrap();
        let mut b = Burst::new();
        for i in 0..42u8 {
            let mut f = frame.clone();
            f[0] = i;
            b.push(Mbuf::from_slice(&pool, &f).unwrap()).unwrap();
        }
        assert_eq!(outer.tx_queue(0).unwrap().tx_burst(&mut b), 42);
        let stats = l.stats();
        assert_eq!(l.poll_once(&mut Burst::new(), true), 42);
        let r = rec.lock().unwrap();
        assert_eq!(r.calls, want, "{level:?}, chunk {chunk}");
        assert_eq!(r.firsts, (0..42).collect::<Vec<u8>>(), "in order");
        assert!(r.all_classified, "every packet classified before its stage call");
        let classified = level != Level::None;
        assert_eq!(stats.classified_bursts.get(), u64::from(classified));
        assert_eq!(stats.classified_pkts.get(), if classified { 42 } else { 0 });
        drop(r);
        drop((l, outer, p0, p1, _outer1));
        assert_eq!(pool.in_use(), 0);
    }
    let mut l: Lcore<Mbuf, L2Fwd> = Lcore::new("chunk", None, L2Fwd::new());
    assert!(l.set_rx_chunk(513).is_err());
}
