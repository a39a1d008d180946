//! The virtio-net driver against the simulated device ([`super::sim`]).
use super::super::sim::{
    self as shared, frame_to, no_faults, op, ring_ops, shared_driver_tests, test_pool, SimDriver, SimHandle, SimPci,
};
use super::sim::{default_features, VirtioNetModel};
use super::*;
use crate::mbuf::{MemBacking, MempoolConfig};
use proptest::prelude::*;

type Sim = SimPci<VirtioNetModel>;
type H = SimHandle<VirtioNetModel>;

fn pool(n: u32) -> Mempool {
    test_pool("virtio-sim", n)
}

fn cfg(queues: u16, rx: u16, tx: u16) -> PciPortConfig {
    PciPortConfig { queues, rx_ring: rx, tx_ring: tx }
}

fn open_with(model: VirtioNetModel, c: &PciPortConfig, pool: &Mempool) -> (Result<VirtioNetPort<Sim>, PortError>, H) {
    let (dev, h) = SimPci::new("0000:00:04.0", model);
    (VirtioNetPort::open_device(3, dev, c, pool), h)
}

fn open(c: &PciPortConfig, pool: &Mempool) -> (VirtioNetPort<Sim>, H) {
    let (p, h) = open_with(VirtioNetModel::new(default_features(), 4, 256), c, pool);
    (p.unwrap(), h)
}

/// The simulated device's MAC.
const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

/// A frame to the device's MAC whose bytes say which one it is.
fn frame(i: u32, len: usize) -> Vec<u8> {
    frame_to(MAC, i, len)
}

fn inject(h: &H, pair: u16, f: &[u8]) -> bool {
    h.with(|m, mem| m.inject_rx(mem, pair, f))
}

fn mbuf(pool: &Mempool, f: &[u8]) -> Mbuf {
    Mbuf::from_slice(pool, f).unwrap()
}

#[test]
fn init_handshake_follows_the_spec() {
    let p = pool(1024);
    let (port, h) = open(&cfg(1, 256, 256), &p);
    h.with(|m, mem| {
        use status::*;
        // Reset, ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK: each a superset of the last.
        assert_eq!(
            m.status_log,
            [
                0,
                ACKNOWLEDGE,
                ACKNOWLEDGE | DRIVER,
                ACKNOWLEDGE | DRIVER | FEATURES_OK,
                ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
            ]
        );
        let want = bit(feature::VERSION_1)
            | bit(feature::ACCESS_PLATFORM)
            | bit(feature::NET_MAC)
            | bit(feature::NET_STATUS)
            | bit(feature::NET_MRG_RXBUF)
            | bit(feature::NET_CTRL_VQ)
            | bit(feature::NET_CTRL_RX)
            | bit(feature::NET_SPEED_DUPLEX);
        assert_eq!(m.driver_features, want, "no MQ for one pair; no offloads, no event idx, no indirect");
        assert!(mem.bus_master);
        let cmd = u16::from_le_bytes([m.config()[4], m.config()[5]]);
        assert_eq!(cmd & cfg::COMMAND_INTX_DISABLE, cfg::COMMAND_INTX_DISABLE, "we poll: no INTx");
        // rx0, tx0 and the control queue (after the device's 4 pairs) are enabled.
        let enabled: Vec<usize> = (0..m.queues.len()).filter(|&i| m.queues[i].enabled).collect();
        // Without MQ the control queue is queue 2, whatever the device's pair count.
        assert_eq!(enabled, [0, 1, 2]);
        assert_eq!(m.queues[0].size, 256);
        assert_eq!(m.queues[2].size, CTRL_RING);
        // The receive ring is full of buffers: 256 in flight.
        assert_eq!(mem.r16(m.queues[0].avail + 2), 256);
        assert_eq!(m.notifies[0], 4, "one doorbell per refill burst of 64");
        assert_eq!(mem.pool_maps, 1);
    });
    assert_eq!(port.mac(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
    assert_eq!(port.link(), LinkStatus { up: true, speed_mbps: 10_000, full_duplex: true });
    assert_eq!(port.info().driver, "pci:virtio-net");
    assert_eq!(port.info().name, "0000:00:04.0");
    assert_eq!((port.info().rx_queues, port.info().tx_queues), (1, 1));
    assert_eq!(p.in_use(), 256);
    no_faults(&h);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn capability_walk_skips_the_unmappable_notify_structure() {
    let p = pool(512);
    let (port, h) = open(&cfg(1, 64, 64), &p);
    // Doorbells reached BAR 4 (the model faults on any BAR 2 access).
    h.with(|m, _| assert!(m.notifies[0] > 0));
    no_faults(&h);
    drop(port);
}

#[test]
fn link_follows_the_device() {
    let p = pool(512);
    let (port, h) = open(&cfg(1, 64, 64), &p);
    h.with(|m, _| m.link_up = false);
    assert!(!port.link().up);
    h.with(|m, _| m.link_up = true);
    assert!(port.link().up);
    // A device that needs a reset, or was reset under us, reports the link down.
    h.with(|m, _| m.status |= status::DEVICE_NEEDS_RESET);
    assert_eq!(port.link(), LinkStatus::default());
    h.with(|m, _| m.status = 0);
    assert!(!port.link().up);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn rx_burst_delivers_frames_in_place() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 128, 128), &p);
    let mut rx = port.rx_queue(0).unwrap();
    for i in 0..10 {
        assert!(inject(&h, 0, &frame(i, 60 + i as usize)));
    }
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 10);
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m.data(), &frame(i as u32, 60 + i)[..]);
        assert_eq!(m.headroom(), p.config().headroom as usize, "frame at the mbuf's data offset");
        assert_eq!((m.port(), m.meta().queue), (3, 0));
    }
    let st = port.stats();
    assert_eq!(st.ipackets, 10);
    assert_eq!(st.ibytes, (0..10).map(|i| 60 + i).sum::<u64>());
    out.clear();
    assert_eq!(rx.rx_burst(&mut out, 32), 0);
    no_faults(&h);
    drop(rx);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn rx_burst_respects_max_and_spare_room() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    for i in 0..20 {
        assert!(inject(&h, 0, &frame(i, 64)));
    }
    let mut got = vec![];
    let mut small: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut small, 3), 3);
    got.extend(small.iter().map(|m| m.data().to_vec()));
    small.clear();
    // Only 3 spare slots in the burst: 3 packets, whatever `max` says.
    let fill = small.capacity() - 3;
    for _ in 0..fill {
        let _ = small.push(p.alloc().unwrap());
    }
    assert_eq!(rx.rx_burst(&mut small, 32), 3, "only 3 spare slots");
    got.extend(small.iter().skip(fill).map(|m| m.data().to_vec()));
    small.clear();
    assert_eq!(rx.rx_burst(&mut small, 32), 14);
    got.extend(small.iter().map(|m| m.data().to_vec()));
    assert_eq!(got, (0..20).map(|i| frame(i, 64)).collect::<Vec<_>>(), "in order, none lost or doubled");
    no_faults(&h);
    drop((small, rx, port));
    assert_eq!(p.in_use(), 0);
}

// ---- the tests both drivers share (pci::sim) -----------------------------------------------

/// The virtio-net driver on a fresh simulated device (4 queue pairs, rings of up to 256), for
/// the shared tests.
struct Virtio;

impl SimDriver for Virtio {
    type Model = VirtioNetModel;
    type Port = VirtioNetPort<Sim>;
    fn open_port(&self, id: u16, queues: u16, rx: u16, tx: u16, pool: &Mempool) -> (VirtioNetPort<Sim>, H) {
        let (dev, h) = SimPci::new("0000:00:04.0", VirtioNetModel::new(default_features(), 4, 256));
        (VirtioNetPort::open_device(id, dev, &cfg(queues, rx, tx), pool).unwrap(), h)
    }
    fn mac(&self) -> [u8; 6] {
        MAC
    }
    fn tx_capacity(&self, n: u16) -> usize {
        n as usize
    }
    fn tx_missed(port: &VirtioNetPort<Sim>, q: u16) -> u64 {
        port.counters().tx(q as usize).missed.get()
    }
    fn reset_under(&self, h: &H) {
        h.with(|m, _| m.reset());
    }
    fn is_dead(port: &VirtioNetPort<Sim>) -> bool {
        port.shared.is_dead()
    }
    fn stuck_check(&self) -> u32 {
        STUCK_CHECK
    }
    fn torn_down_after_reset(&self, h: &H, pool: &Mempool) {
        assert_eq!(pool.in_use(), 0, "every mbuf back");
        h.with(|m, mem| {
            assert_eq!(m.status, 0, "reset at the end");
            assert!(!mem.bus_master, "no more DMA");
            assert_eq!(mem.live_maps(), 0, "every ring and the pool unmapped");
        });
        no_faults(h);
    }
}

shared_driver_tests! {
    tx_burst_sends_without_copy_and_reclaims_in_bursts: Virtio;
    full_tx_ring_refuses_counts_and_recovers: Virtio;
    foreign_pool_mbufs_are_copied_empty_ones_dropped: Virtio;
    a_device_reset_under_the_port_is_counted_to_the_last_packet: Virtio;
    a_stuck_transmit_ring_finds_the_reset_without_the_link_check: Virtio;
    frames_the_device_holds_at_close_are_sent_or_counted: Virtio;
}

#[test]
fn ring_indices_wrap_around() {
    // More than 65536 frames: the 16-bit avail and used indices wrap too.
    let h = shared::ring_indices_wrap_around(&Virtio);
    h.with(|m, _| assert_eq!(m.rx_no_buffer, 0, "no frame found the ring empty"));
}

#[test]
fn notifications_only_when_the_device_asks() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut tx = port.tx_queue(0).unwrap();
    h.with(|m, mem| {
        m.set_no_notify(mem, true);
        m.hold_tx = true;
    });
    let mut b: Burst<Mbuf> = Burst::new();
    let _ = b.push(mbuf(&p, &frame(0, 64)));
    assert_eq!(tx.tx_burst(&mut b), 1);
    h.with(|m, mem| {
        assert_eq!(m.notifies[1], 0, "NO_NOTIFY honoured");
        m.set_no_notify(mem, false);
    });
    let _ = b.push(mbuf(&p, &frame(1, 64)));
    assert_eq!(tx.tx_burst(&mut b), 1);
    h.with(|m, _| assert_eq!(m.notifies[1], 1));
    no_faults(&h);
    drop((tx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn empty_pool_counts_nombuf_and_refills_later() {
    // 64 mbufs, a 32-entry ring: 32 posted at open, 32 left.
    let p = pool(64);
    let (mut port, h) = open(&cfg(1, 32, 16), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let held: Vec<Mbuf> = std::iter::from_fn(|| p.alloc().ok()).collect();
    assert_eq!(held.len(), 32);
    for i in 0..32 {
        assert!(inject(&h, 0, &frame(i, 64)));
    }
    assert!(!inject(&h, 0, &frame(99, 64)), "the ring is empty now");
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 32, "frames still come in");
    assert!(port.stats().rx_nombuf >= 1, "the refill found no mbuf");
    // Everything back: the next poll refills the ring.
    drop(held);
    out.clear();
    assert_eq!(rx.rx_burst(&mut out, 32), 0);
    for i in 0..32 {
        assert!(inject(&h, 0, &frame(i, 64)), "buffer {i} posted again");
    }
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn oversize_frame_is_dropped_and_counted_with_mergeable_buffers() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let room = 2048 - 64 - 256;
    assert!(inject(&h, 0, &frame(1, 64)));
    assert!(inject(&h, 0, &frame(2, 4000)), "spread over 3 buffers by the device");
    assert!(inject(&h, 0, &frame(3, room)), "exactly the data room: fits");
    assert!(inject(&h, 0, &frame(4, room + 1)), "one byte more: 2 buffers");
    assert!(inject(&h, 0, &frame(5, 64)));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 3);
    let ids: Vec<u32> = out.iter().map(|m| u32::from_be_bytes(m.data()[14..18].try_into().unwrap())).collect();
    assert_eq!(ids, [1, 3, 5]);
    assert_eq!(out[1].len(), room);
    let st = port.stats();
    assert_eq!((st.ipackets, st.ierrors), (3, 2));
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn oversize_frame_split_across_polls_is_dropped_whole() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    assert!(inject(&h, 0, &frame(1, 5000)));
    assert!(inject(&h, 0, &frame(2, 64)));
    let mut out: Burst<Mbuf> = Burst::new();
    // Room for one packet: the loop stops after the first good one, so the 4-buffer frame
    // is skipped within the same call; with max 1 the first call sees only its head.
    assert_eq!(rx.rx_burst(&mut out, 1), 1);
    assert_eq!(u32::from_be_bytes(out[0].data()[14..18].try_into().unwrap()), 2);
    assert_eq!(port.stats().ierrors, 1);
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn without_mergeable_buffers_the_device_drops_oversize_frames() {
    let p = pool(1024);
    let offered = default_features() & !bit(feature::NET_MRG_RXBUF);
    let (port, h) = open_with(VirtioNetModel::new(offered, 1, 256), &cfg(1, 64, 64), &p);
    let mut port = port.unwrap();
    let mut rx = port.rx_queue(0).unwrap();
    assert!(!inject(&h, 0, &frame(1, 3000)));
    assert!(inject(&h, 0, &frame(2, 1514)));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    h.with(|m, _| assert_eq!(m.rx_oversize, 1));
    no_faults(&h);
    drop((out, rx, port));
    // And a data room below a full frame is refused up front.
    let mut c = MempoolConfig::new("small", 512);
    c.chunk_size = 1024;
    c.headroom = 128;
    c.backing = MemBacking::Normal;
    let small = Mempool::new(c).unwrap();
    let (r, _) = open_with(VirtioNetModel::new(offered, 1, 256), &cfg(1, 64, 64), &small);
    assert!(matches!(r, Err(PortError::Config { ref msg, .. }) if msg.contains("MRG_RXBUF")), "{r:?}");
    assert_eq!(p.in_use(), 0);
}

#[test]
fn small_chunks_work_with_mergeable_buffers() {
    let mut c = MempoolConfig::new("small", 512);
    c.chunk_size = 1024;
    c.headroom = 128;
    c.backing = MemBacking::Normal;
    let p = Mempool::new(c).unwrap();
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    assert!(inject(&h, 0, &frame(1, 832)));
    assert!(inject(&h, 0, &frame(2, 1514)));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    assert_eq!(out[0].len(), 832);
    assert_eq!(port.stats().ierrors, 1);
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn every_mbuf_returns_whatever_the_drop_order() {
    for order in 0..3 {
        let p = pool(1024);
        let (mut port, h) = open(&cfg(2, 64, 64), &p);
        let mut rx = port.rx_queue(1).unwrap();
        let mut tx = port.tx_queue(0).unwrap();
        h.with(|m, _| m.hold_tx = true);
        let mut b: Burst<Mbuf> = Burst::new();
        for i in 0..10 {
            let _ = b.push(mbuf(&p, &frame(i, 64)));
        }
        assert_eq!(tx.tx_burst(&mut b), 10);
        assert!(inject(&h, 1, &frame(0, 64)));
        let mut out: Burst<Mbuf> = Burst::new();
        assert_eq!(rx.rx_burst(&mut out, 32), 1);
        drop(out);
        // Receive buffers of two queues and ten unsent transmits are with the device.
        assert!(p.in_use() >= 2 * 64 + 10 - 1);
        match order {
            0 => drop((port, rx, tx)),
            1 => drop((rx, tx, port)),
            _ => {
                drop(rx);
                drop(port);
                // The device must not be reset while a queue is still in use.
                h.with(|m, _| assert_ne!(m.status, 0));
                drop(tx);
            }
        }
        assert_eq!(p.in_use(), 0, "order {order}");
        h.with(|m, mem| {
            assert_eq!(m.status, 0, "reset at the end");
            assert!(!mem.bus_master, "and no more DMA");
            assert_eq!(mem.live_maps(), 0, "every ring and the pool unmapped");
        });
        no_faults(&h);
    }
}

#[test]
fn multiqueue_sets_pairs_through_the_control_queue() {
    let p = pool(2048);
    let (mut port, h) = open(&cfg(3, 64, 64), &p);
    assert_eq!(port.queue_pairs(), 3);
    h.with(|m, _| {
        assert!(m.driver_features & bit(feature::NET_MQ) != 0);
        assert_eq!(m.active_pairs, 3);
        assert_eq!(m.ctrl_log, [(regs::ctrl::CLASS_MQ, regs::ctrl::MQ_VQ_PAIRS_SET, vec![3, 0], regs::ctrl::OK)]);
        let enabled: Vec<usize> = (0..m.queues.len()).filter(|&i| m.queues[i].enabled).collect();
        assert_eq!(enabled, [0, 1, 2, 3, 4, 5, 8]);
    });
    let mut rxs: Vec<_> = (0..3).map(|q| port.rx_queue(q).unwrap()).collect();
    let mut txs: Vec<_> = (0..3).map(|q| port.tx_queue(q).unwrap()).collect();
    for q in 0..3u16 {
        for i in 0..5 {
            assert!(inject(&h, q, &frame(100 * q as u32 + i, 64)));
        }
    }
    for (q, rx) in rxs.iter_mut().enumerate() {
        let mut out: Burst<Mbuf> = Burst::new();
        assert_eq!(rx.rx_burst(&mut out, 32), 5);
        assert!(out.iter().all(|m| m.meta().queue == q as u16));
        assert_eq!(txs[q].tx_burst(&mut out), 5);
    }
    h.with(|m, _| {
        for q in 0..3u16 {
            let f: Vec<_> = m.tx_frames.iter().filter(|(p, _)| *p == q).map(|(_, f)| f.clone()).collect();
            assert_eq!(f, (0..5).map(|i| frame(100 * q as u32 + i, 64)).collect::<Vec<_>>());
        }
    });
    for q in 0..3 {
        assert_eq!(port.counters().rx(q).packets.get(), 5);
        assert_eq!(port.counters().tx(q).packets.get(), 5);
    }
    assert!(matches!(port.rx_queue(3), Err(PortError::NoSuchQueue { count: 3, .. })));
    assert!(matches!(port.rx_queue(0), Err(PortError::QueueTaken { .. })));
    no_faults(&h);
    drop((rxs, txs, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn promiscuous_mode_through_ctrl_rx() {
    let p = pool(512);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    port.set_promiscuous(false).unwrap();
    h.with(|m, _| assert!(!m.promisc));
    port.set_promiscuous(true).unwrap();
    h.with(|m, _| assert!(m.promisc));
    drop(port);
    // Without CTRL_RX: on is accepted (nothing filters), off is an error.
    let offered = default_features() & !bit(feature::NET_CTRL_RX);
    let (port, h) = open_with(VirtioNetModel::new(offered, 1, 256), &cfg(1, 64, 64), &p);
    let mut port = port.unwrap();
    port.set_promiscuous(true).unwrap();
    let e = port.set_promiscuous(false).unwrap_err();
    assert!(e.to_string().contains("CTRL_RX"), "{e}");
    h.with(|m, _| assert!(m.ctrl_log.is_empty()));
    no_faults(&h);
}

#[test]
fn refused_or_missing_features_are_clear_errors() {
    let p = pool(512);
    let check = |model: VirtioNetModel, c: PciPortConfig, want: &str| {
        let (r, h) = open_with(model, &c, &p);
        let e = r.map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should mention {want:?}");
        h.with(|m, mem| {
            assert_eq!(m.status, 0, "reset after the failure ({e})");
            assert_eq!(mem.live_maps(), 0, "nothing left mapped ({e})");
        });
        no_faults(&h);
    };
    let f = default_features();
    check(VirtioNetModel::new(f & !bit(feature::VERSION_1), 1, 256), cfg(1, 64, 64), "VERSION_1");
    check(VirtioNetModel::new(f & !bit(feature::ACCESS_PLATFORM), 1, 256), cfg(1, 64, 64), "iommu_platform=on");
    check(VirtioNetModel::new(f & !bit(feature::NET_MQ), 1, 256), cfg(2, 64, 64), "VIRTIO_NET_F_MQ");
    check(VirtioNetModel::new(f, 2, 256), cfg(4, 64, 64), "the device has 2");
    let mut m = VirtioNetModel::new(f, 1, 256);
    m.refuse_features = true;
    check(m, cfg(1, 64, 64), "refused the features");
    let mut m = VirtioNetModel::new(f, 2, 256);
    m.mute_ctrl = true;
    check(m, cfg(2, 64, 64), "timed out waiting for a control virtqueue command");
    let mut m = VirtioNetModel::new(f, 1, 256);
    m.set_device_id(0x8086, 0x10ca);
    check(m, cfg(1, 64, 64), "8086:10ca");
    // Configuration errors need no device at all.
    let (r, _) = open_with(VirtioNetModel::new(f, 1, 256), &cfg(1, 100, 64), &p);
    assert!(matches!(r, Err(PortError::Config { .. })));
    let (r, _) = open_with(VirtioNetModel::new(f, 1, 256), &cfg(4, 256, 64), &p);
    assert!(matches!(r, Err(PortError::Config { ref msg, .. }) if msg.contains("lend")));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn ring_sizes_shrink_to_the_device_maximum() {
    let p = pool(1024);
    let (port, h) = open_with(VirtioNetModel::new(default_features(), 1, 100), &cfg(1, 256, 256), &p);
    let port = port.unwrap();
    h.with(|m, _| {
        assert_eq!(m.queues[0].size, 64, "100 rounds down to a power of two");
        assert_eq!(m.queues[1].size, 64);
    });
    assert_eq!(p.in_use(), 64);
    no_faults(&h);
    drop(port);
}

#[test]
fn a_misbehaving_device_is_counted_not_fatal() {
    let p = pool(1024);
    let (mut port, h) = open(&cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();
    // A used id out of range, then one never posted on tx.
    h.with(|m, mem| m.inject_bogus_used(mem, 0, 1000));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 0);
    assert_eq!(port.stats().ierrors, 1);
    h.with(|m, mem| m.inject_bogus_used(mem, 1, 3));
    tx.flush();
    assert_eq!(port.stats().oerrors, 1);
    // Traffic still flows.
    assert!(inject(&h, 0, &frame(7, 64)));
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    assert_eq!(tx.tx_burst(&mut out), 1);
    drop((out, rx, tx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn pci_open_device_dispatches_on_ids() {
    let p = pool(512);
    let (dev, h) = SimPci::new("0000:00:05.0", VirtioNetModel::new(default_features(), 1, 256));
    let port = super::super::open_device(0, dev, &cfg(1, 64, 64), &p).unwrap();
    assert_eq!(port.info().driver, DRIVER_NAME);
    drop(port);
    no_faults(&h);
    // Transitional id with subsystem 1: accepted; an Intel NIC without a native driver (the
    // 82574L): a clear error naming what is supported.
    let mut m = VirtioNetModel::new(default_features(), 1, 256);
    m.set_device_id(regs::VENDOR, regs::DEVICE_NET_TRANSITIONAL);
    m.config()[cfg::SUBSYSTEM_ID as usize..][..2].copy_from_slice(&1u16.to_le_bytes());
    let (dev, _) = SimPci::new("0000:00:06.0", m);
    assert!(super::super::open_device(1, dev, &cfg(1, 64, 64), &p).is_ok());
    let mut m = VirtioNetModel::new(default_features(), 1, 256);
    m.set_device_id(0x8086, 0x10d3);
    let (dev, _) = SimPci::new("0000:00:07.0", m);
    let e = super::super::open_device(2, dev, &cfg(1, 64, 64), &p).unwrap_err().to_string();
    assert!(e.contains("0000:00:07.0") && e.contains("8086:10d3") && e.contains("virtio-net 1af4:1041"), "{e}");
    assert!(e.contains("igbvf 8086:10ca"), "{e}");
    assert_eq!(p.in_use(), 0);
}

use super::super::sim::SimModel;

/// l2fwd on a pinned-style worker between two simulated virtio ports, the test thread
/// playing the wire on the far side: exact counts both ways, MACs rewritten, payloads
/// intact and in order, every mbuf back at the end.
#[test]
fn l2fwd_worker_forwards_between_two_virtio_ports() {
    shared::l2fwd_worker_forwards(&Virtio, &Virtio, |k| 64 + (k % 200) as usize);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, ..ProptestConfig::default() })]

    /// Any interleaving of device and driver steps: frames that fit arrive once, in order,
    /// intact; oversize ones are counted; everything sent leaves once, in order; counters
    /// add up; and at the end every mbuf is back, every mapping gone, nothing faulted.
    #[test]
    fn rings_keep_order_and_account_for_everything(
        ops in proptest::collection::vec(op(prop_oneof![60u16..200, 1600u16..5000]), 1..120),
        rx_ring in prop_oneof![Just(16u16), Just(32), Just(64)],
        tx_ring in prop_oneof![Just(8u16), Just(16), Just(64)],
    ) {
        let p = pool(512);
        let (port, h) = open(&cfg(1, rx_ring, tx_ring), &p);
        ring_ops(ops, port, |port| port.counters().tx(0).missed.get(), &h, &p, [0x52, 0x54, 0, 0x12, 0x34, 0x56], 2048 - 64 - 256)?;
        h.with(|m, _| assert_eq!(m.status, 0));
    }
}
