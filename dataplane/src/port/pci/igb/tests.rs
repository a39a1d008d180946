//! The igb and igbvf drivers against the simulated 82576 ([`super::sim`]).
use super::super::sim::{
    self as shared, frame_to, id_of, no_faults, op, ring_ops, shared_driver_tests, test_pool, test_pool_with,
    SimDriver, SimHandle, SimModel, SimPci,
};
use super::sim::IgbModel;
use super::*;
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{MemBacking, MempoolConfig};
use proptest::prelude::*;

type Sim = SimPci<IgbModel>;
type H = SimHandle<IgbModel>;

fn pool_with(n: u32, chunk: u32) -> Mempool {
    test_pool_with("igb-sim", n, chunk)
}

fn pool(n: u32) -> Mempool {
    test_pool("igb-sim", n)
}

fn cfg(queues: u16, rx: u16, tx: u16) -> PciPortConfig {
    PciPortConfig { queues, rx_ring: rx, tx_ring: tx }
}

fn open_with(model: IgbModel, c: &PciPortConfig, pool: &Mempool) -> (Result<IgbPort<Sim>, PortError>, H) {
    let (dev, h) = SimPci::new("0000:01:00.0", model);
    (IgbPort::open_device(2, dev, c, pool), h)
}

fn open(model: IgbModel, c: &PciPortConfig, pool: &Mempool) -> (IgbPort<Sim>, H) {
    let (p, h) = open_with(model, c, pool);
    (p.unwrap(), h)
}

const VF_MAC: [u8; 6] = [0x02, 0x76, 0x0a, 0xf0, 0x00, 0x00];
const PF_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn frame(i: u32, len: usize) -> Vec<u8> {
    frame_to(PF_MAC, i, len)
}

fn inject(h: &H, f: &[u8]) -> bool {
    h.with(|m, mem| m.inject(mem, f))
}

fn mbuf(pool: &Mempool, f: &[u8]) -> Mbuf {
    Mbuf::from_slice(pool, f).unwrap()
}

/// After the last holder dropped: every mbuf back, the device reset, no DMA, nothing
/// mapped, no fault.
fn torn_down(h: &H, p: &Mempool, resets: u32) {
    assert_eq!(p.in_use(), 0, "every mbuf back");
    h.with(|m, mem| {
        assert_eq!(m.resets, resets, "reset at open and at the end");
        assert!(!mem.bus_master, "no more DMA");
        assert_eq!(mem.live_maps(), 0, "every ring and the pool unmapped");
        if m.kind == Kind::Vf {
            let off = |d: u32| d & regs::DCTL_ENABLE == 0;
            assert!(m.rxq.iter().all(|q| off(q.dctl)) && m.txq.iter().all(|q| off(q.dctl)), "VF queues off");
            // A VF reset keeps the head write-back address (as QEMU's igb does): the next
            // driver, which reads DD bits, needs it off.
            assert!(m.txq.iter().all(|q| q.wbal == 0 && q.wbah == 0), "head write-back off");
        }
    });
    no_faults(h);
}

#[test]
fn pf_bring_up_programs_the_device() {
    let p = pool(1024);
    let (port, h) = open(IgbModel::pf(), &cfg(1, 256, 128), &p);
    h.with(|m, mem| {
        assert_eq!(m.resets, 1, "one global reset");
        assert!(m.link_up, "auto-negotiation restarted and done");
        let r = m.regs[&regs::RCTL];
        let want = regs::rctl::EN | regs::rctl::SECRC | regs::rctl::BAM | regs::rctl::LPE;
        assert_eq!(r, want, "receiver: CRC stripped, broadcast, long frames; not promiscuous");
        assert_eq!(m.regs[&regs::RXCSUM], regs::RXCSUM_PCSD);
        assert_eq!(m.regs[&regs::MRQC], 0, "one queue: no RSS");
        assert_ne!(m.regs[&regs::TCTL] & regs::tctl::EN, 0);
        assert_ne!(m.regs[&regs::CTRL] & regs::ctrl::SLU, 0);
        assert_ne!(m.regs[&regs::CTRL_EXT] & regs::CTRL_EXT_DRV_LOAD, 0);
        let rq = &m.rxq[0];
        assert_eq!(rq.len, 256 * 16);
        assert_eq!(rq.srrctl & 0x7f, 1, "1 KiB buffers: the 1728-byte data room rounded down");
        assert_eq!(rq.srrctl & regs::srrctl::DESCTYPE_ADV_ONEBUF, regs::srrctl::DESCTYPE_ADV_ONEBUF);
        assert_eq!(rq.available(), 255, "the ring is full but for one descriptor");
        assert_eq!(m.txq[0].len, 128 * 16);
        assert_eq!(m.txq[0].wbal & 1, 1, "head write-back on");
        assert!(m.rxq[1..].iter().all(|q| q.dctl & regs::DCTL_ENABLE == 0), "no other queue enabled");
        assert!(mem.bus_master);
        let cmd = u16::from_le_bytes([m.config()[4], m.config()[5]]);
        assert_ne!(cmd & vfio::pci::COMMAND_INTX_DISABLE, 0, "we poll: no INTx");
        assert_eq!(mem.pool_maps, 1);
    });
    assert_eq!(port.mac(), MacAddr(PF_MAC));
    assert_eq!(port.link(), LinkStatus { up: true, speed_mbps: 1000, full_duplex: true });
    assert_eq!(port.info().driver, "pci:igb");
    assert_eq!(port.kind(), Kind::Pf);
    assert_eq!(p.in_use(), 255);
    no_faults(&h);
    drop(port);
    torn_down(&h, &p, 2);
}

#[test]
fn rx_burst_delivers_frames_in_place() {
    for model in [IgbModel::pf(), IgbModel::vf()] {
        let p = pool(1024);
        let dst = if model.kind == Kind::Pf { PF_MAC } else { VF_MAC };
        let (mut port, h) = open(model, &cfg(1, 128, 128), &p);
        let mut rx = port.rx_queue(0).unwrap();
        for i in 0..10 {
            assert!(inject(&h, &frame_to(dst, i, 60 + i as usize)));
        }
        let mut out: Burst<Mbuf> = Burst::new();
        assert_eq!(rx.rx_burst(&mut out, 32), 10);
        for (i, m) in out.iter().enumerate() {
            assert_eq!(m.data(), &frame_to(dst, i as u32, 60 + i)[..]);
            assert_eq!(m.headroom(), p.config().headroom as usize, "frame at the mbuf's data offset");
            assert_eq!((m.port(), m.meta().queue), (2, 0));
        }
        let st = port.stats();
        assert_eq!(st.ipackets, 10);
        assert_eq!(st.ibytes, (0..10).map(|i| 60 + i).sum::<u64>());
        out.clear();
        assert_eq!(rx.rx_burst(&mut out, 32), 0);
        no_faults(&h);
        drop((rx, port));
        assert_eq!(p.in_use(), 0);
    }
}

#[test]
fn rx_burst_respects_max_and_spare_room() {
    let p = pool(1024);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    for i in 0..20 {
        assert!(inject(&h, &frame(i, 64)));
    }
    let mut got = vec![];
    let mut small: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut small, 3), 3);
    got.extend(small.iter().map(|m| id_of(m.data())));
    small.clear();
    let fill = small.capacity() - 3;
    for _ in 0..fill {
        let _ = small.push(p.alloc().unwrap());
    }
    assert_eq!(rx.rx_burst(&mut small, 32), 3, "only 3 spare slots");
    got.extend(small.iter().skip(fill).map(|m| id_of(m.data())));
    small.clear();
    assert_eq!(rx.rx_burst(&mut small, 32), 14);
    got.extend(small.iter().map(|m| id_of(m.data())));
    assert_eq!(got, (0..20).collect::<Vec<_>>(), "in order, none lost or doubled");
    no_faults(&h);
    drop((small, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn frames_longer_than_a_buffer_are_reassembled_and_oversize_ones_counted() {
    let p = pool(1024);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let room = 2048 - 64 - 256;
    let sizes = [64usize, 1024, 1025, 1514, room, room + 1, 4000, 9000, 60];
    let mut descs = vec![];
    for (i, &n) in sizes.iter().enumerate() {
        assert!(inject(&h, &frame(i as u32, n)), "frame of {n} bytes taken by the device");
        descs.push(h.with(|m, _| m.last_rx_descs));
    }
    assert_eq!(descs, [1, 1, 2, 2, 2, 2, 4, 9, 1], "1 KiB buffers");
    let mut out: Burst<Mbuf> = Burst::new();
    while rx.rx_burst(&mut out, 32) > 0 {}
    let got: Vec<(u32, usize)> = out.iter().map(|m| (id_of(m.data()), m.len())).collect();
    assert_eq!(got, [(0, 64), (1, 1024), (2, 1025), (3, 1514), (4, room), (8, 60)]);
    for m in out.iter() {
        let i = id_of(m.data());
        assert_eq!(m.data(), &frame(i, sizes[i as usize])[..], "frame {i} intact");
    }
    let st = port.stats();
    assert_eq!((st.ipackets, st.ierrors), (6, 3), "one byte over the data room is dropped and counted");
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn bigger_chunks_take_full_frames_in_one_buffer() {
    let p = pool_with(512, 4096);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    h.with(|m, _| assert_eq!(m.rxq[0].srrctl & 0x7f, 3, "3 KiB buffers in a 3776-byte data room"));
    let mut rx = port.rx_queue(0).unwrap();
    assert!(inject(&h, &frame(7, 1514)));
    h.with(|m, _| assert_eq!(m.last_rx_descs, 1, "no reassembly, no copy"));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    assert_eq!(out[0].data(), &frame(7, 1514)[..]);
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn a_multi_buffer_frame_split_across_polls_arrives_whole() {
    let p = pool(1024);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    assert!(inject(&h, &frame(1, 1500)));
    // Only the first descriptor is written back so far: hide the second one's DD.
    h.with(|m, mem| {
        let q = &m.rxq[0];
        let base = (q.bah as u64) << 32 | q.bal as u64;
        mem.w32(base + 16 + 8, 0);
    });
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 0, "the first part waits for the rest");
    h.with(|m, mem| {
        let q = &m.rxq[0];
        let base = (q.bah as u64) << 32 | q.bal as u64;
        mem.w32(base + 16 + 8, regs::rxd::DD | regs::rxd::EOP);
    });
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    assert_eq!(out[0].data(), &frame(1, 1500)[..]);
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

// ---- the tests both drivers share (pci::sim) -----------------------------------------------

/// The igb driver on a fresh simulated 82576, PF or VF, for the shared tests.
struct Igb(fn() -> IgbModel, [u8; 6]);
const PF: Igb = Igb(IgbModel::pf, PF_MAC);
const VF: Igb = Igb(IgbModel::vf, VF_MAC);

impl SimDriver for Igb {
    type Model = IgbModel;
    type Port = IgbPort<Sim>;
    fn open_port(&self, id: u16, queues: u16, rx: u16, tx: u16, pool: &Mempool) -> (IgbPort<Sim>, H) {
        let (dev, h) = SimPci::new("0000:01:00.0", (self.0)());
        (IgbPort::open_device(id, dev, &cfg(queues, rx, tx), pool).unwrap(), h)
    }
    fn mac(&self) -> [u8; 6] {
        self.1
    }
    fn tx_capacity(&self, n: u16) -> usize {
        n as usize - 1
    }
    fn tx_missed(port: &IgbPort<Sim>, q: u16) -> u64 {
        port.counters().tx(q as usize).missed.get()
    }
    fn reset_under(&self, h: &H) {
        reset_under(h)
    }
    fn is_dead(port: &IgbPort<Sim>) -> bool {
        port.shared.is_dead()
    }
    fn stuck_check(&self) -> u32 {
        ring::STUCK_CHECK
    }
    fn torn_down_after_reset(&self, h: &H, pool: &Mempool) {
        // Opened (one reset), reset under the port, and reset at the teardown.
        torn_down(h, pool, 3)
    }
    fn after_reset(&self, port: &IgbPort<Sim>, h: &H) {
        h.with(|m, _| m.link_up = true);
        assert!(!port.link().up, "down for good, whatever the device says later");
    }
}

shared_driver_tests! {
    tx_burst_sends_without_copy_and_reclaims_in_bursts: PF, VF;
    full_tx_ring_refuses_counts_and_recovers: PF;
    foreign_pool_mbufs_are_copied_empty_ones_dropped: PF;
    a_device_reset_under_the_port_is_counted_to_the_last_packet: PF, VF;
    a_stuck_transmit_ring_finds_the_reset_without_the_link_check: PF, VF;
    frames_the_device_holds_at_close_are_sent_or_counted: PF, VF;
}

#[test]
fn ring_indices_wrap_around() {
    let h = shared::ring_indices_wrap_around(&VF);
    h.with(|m, _| assert_eq!(m.rx_no_buffer, 0, "no frame found the ring empty"));
}

#[test]
fn empty_pool_counts_nombuf_and_refills_later() {
    // 64 mbufs, a 32-entry ring: 31 posted at open.
    let p = pool(64);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 32, 16), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let held: Vec<Mbuf> = std::iter::from_fn(|| p.alloc().ok()).collect();
    assert_eq!(held.len(), 33);
    for i in 0..31 {
        assert!(inject(&h, &frame(i, 64)));
    }
    assert!(!inject(&h, &frame(99, 64)), "no descriptor left");
    h.with(|m, _| assert_eq!(m.rx_no_buffer, 1));
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 31, "frames still come in");
    assert!(port.stats().rx_nombuf >= 1, "the refill found no mbuf");
    assert_eq!(port.stats().imissed, 1, "the device's drop (RQDPC) is counted as missed");
    drop(held);
    out.clear();
    assert_eq!(rx.rx_burst(&mut out, 32), 0);
    for i in 0..31 {
        assert!(inject(&h, &frame(i, 64)), "buffer {i} posted again");
    }
    no_faults(&h);
    drop((out, rx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn pf_promiscuous_mode_and_filters() {
    let p = pool(512);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    let other = [0x02, 0, 0, 0, 0, 0x99];
    assert!(!inject(&h, &frame_to(other, 1, 64)), "another station's frame is filtered");
    assert!(inject(&h, &frame_to([0xff; 6], 2, 64)), "broadcast accepted");
    let group = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    assert!(!inject(&h, &frame_to(group.0, 3, 64)));
    port.set_multicast(&[group]).unwrap();
    assert!(inject(&h, &frame_to(group.0, 3, 64)), "a joined group is accepted");
    port.set_promiscuous(true).unwrap();
    assert!(inject(&h, &frame_to(other, 4, 64)));
    h.with(|m, _| assert_ne!(m.regs[&regs::RCTL] & regs::rctl::EN, 0, "receiver still on"));
    port.set_promiscuous(false).unwrap();
    assert!(!inject(&h, &frame_to(other, 5, 64)));
    let new = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    port.set_mac(new).unwrap();
    assert_eq!(port.mac(), new);
    assert!(inject(&h, &frame_to(new.0, 6, 64)));
    assert!(port.set_mac(group).is_err(), "multicast refused");
    no_faults(&h);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn pf_rss_spreads_frames_over_queues() {
    let p = pool(4096);
    let (mut port, h) = open(IgbModel::pf(), &cfg(4, 64, 64), &p);
    h.with(|m, _| {
        let mrqc = m.regs[&regs::MRQC];
        assert_eq!(mrqc & 3, regs::mrqc::ENABLE_RSS);
        assert_ne!(mrqc & regs::mrqc::FIELD_IPV4_UDP, 0);
        for e in 0..128 {
            assert_eq!(m.rss_queue(e), e as usize % 4, "redirection entry {e}");
        }
        assert_eq!(m.regs[&regs::RSSRK], u32::from_le_bytes([0x6d, 0x5a, 0x56, 0xda]));
        assert!((0..4).all(|q| m.rxq[q].dctl & regs::DCTL_ENABLE != 0));
    });
    let mut rxs: Vec<_> = (0..4).map(|q| port.rx_queue(q).unwrap()).collect();
    for i in 0..40u32 {
        assert!(h.with(|m, mem| m.inject_hashed(mem, 0x1000 + i, &frame(i, 64))));
    }
    for (q, rx) in rxs.iter_mut().enumerate() {
        let mut out: Burst<Mbuf> = Burst::new();
        assert_eq!(rx.rx_burst(&mut out, 32), 10);
        for m in out.iter() {
            let i = id_of(m.data());
            assert_eq!(i as usize % 4, q, "frame {i} on queue {q}");
            assert_eq!(m.meta().hash, 0x1000 + i, "the device's RSS hash in the metadata");
            assert_eq!(m.meta().queue, q as u16);
        }
        assert_eq!(port.counters().rx(q).packets.get(), 10);
    }
    no_faults(&h);
    drop((rxs, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn every_mbuf_returns_whatever_the_drop_order() {
    for vf in [false, true] {
        for order in 0..3 {
            let p = pool(1024);
            let model = if vf { IgbModel::vf() } else { IgbModel::pf() };
            let dst = if vf { VF_MAC } else { PF_MAC };
            let (mut port, h) = open(model, &cfg(2, 64, 64), &p);
            let mut rx = port.rx_queue(0).unwrap();
            let mut tx = port.tx_queue(1).unwrap();
            h.with(|m, _| m.hold_tx = true);
            let mut b: Burst<Mbuf> = Burst::new();
            for i in 0..10 {
                let _ = b.push(mbuf(&p, &frame(i, 64)));
            }
            assert_eq!(tx.tx_burst(&mut b), 10);
            // Half a frame in the reassembly state, too.
            assert!(h.with(|m, mem| m.inject_queue(mem, 0, 0, &frame_to(dst, 1, 1500))));
            h.with(|m, mem| {
                let q = &m.rxq[0];
                mem.w32(((q.bah as u64) << 32 | q.bal as u64) + 16 + 8, 0);
            });
            let mut out: Burst<Mbuf> = Burst::new();
            assert_eq!(rx.rx_burst(&mut out, 32), 0);
            assert!(p.in_use() >= 2 * 63 + 10);
            match order {
                0 => drop((port, rx, tx)),
                1 => drop((rx, tx, port)),
                _ => {
                    drop(rx);
                    drop(port);
                    h.with(|m, _| assert_eq!(m.resets, 1, "no reset while a queue is in use"));
                    drop(tx);
                }
            }
            torn_down(&h, &p, 2);
        }
    }
}

#[test]
fn configuration_errors_touch_no_device() {
    let p = pool(512);
    let bad = |model: IgbModel, c: PciPortConfig, pool: &Mempool, want: &str| {
        let (r, h) = open_with(model, &c, pool);
        let e = r.map(|_| ()).unwrap_err();
        assert!(matches!(e, PortError::Config { .. }), "{e}");
        assert!(e.to_string().contains(want), "{e} should mention {want:?}");
        h.with(|m, _| assert_eq!(m.resets, 0));
    };
    bad(IgbModel::pf(), cfg(0, 64, 64), &p, "1 to 8");
    bad(IgbModel::pf(), cfg(9, 64, 64), &p, "1 to 8");
    bad(IgbModel::vf(), cfg(3, 64, 64), &p, "1 to 2");
    bad(IgbModel::pf(), cfg(1, 100, 64), &p, "power of two");
    bad(IgbModel::pf(), cfg(1, 64, 4), &p, "power of two from 8");
    bad(IgbModel::pf(), cfg(2, 256, 64), &p, "lend");
    let mut c = MempoolConfig::new("small", 512);
    c.chunk_size = 1024;
    c.headroom = 128;
    c.backing = MemBacking::Normal;
    let small = Mempool::new(c).unwrap();
    bad(IgbModel::pf(), cfg(1, 64, 64), &small, "data room");
}

#[test]
fn device_errors_are_clear_and_leave_the_device_reset() {
    let p = pool(512);
    let check = |model: IgbModel, want: &str| {
        let (r, h) = open_with(model, &cfg(1, 64, 64), &p);
        let e = r.map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should mention {want:?}");
        assert!(e.contains("0000:01:00.0"), "{e}");
        h.with(|_, mem| assert_eq!(mem.live_maps(), 0, "nothing left mapped ({e})"));
    };
    let mut m = IgbModel::pf();
    m.iov_mode = true;
    check(m, "sriov_numvfs = 0");
    let mut m = IgbModel::vf();
    m.agent.mute = true;
    check(m, "timed out waiting for the PF to acknowledge");
    let mut m = IgbModel::vf();
    m.agent.in_reset = true;
    check(m, "RSTI");
    let mut m = IgbModel::vf();
    m.agent.vf_mac = None;
    m.agent.admin_mac = true;
    check(m, "assigned no MAC address");
    let mut m = IgbModel::pf();
    m.set_device_id(0x10d3);
    check(m, "8086:10d3");
    assert_eq!(p.in_use(), 0);
}

#[test]
fn vf_resets_through_the_mailbox_and_gets_its_mac() {
    let p = pool(1024);
    let (port, h) = open(IgbModel::vf(), &cfg(2, 64, 64), &p);
    h.with(|m, _| {
        assert_eq!(m.resets, 1, "a VF reset");
        let msgs: Vec<Vec<u32>> = m.agent.log.iter().map(|(w, _)| w.clone()).collect();
        assert_eq!(msgs, [vec![regs::msg::RESET], vec![regs::msg::SET_LPE, 9728]]);
        assert_ne!(m.agent.log[0].1 & regs::msg::ACK, 0);
        assert!(m.agent.enabled);
        assert_eq!(m.agent.lpe, Some(9728));
        for q in 0..2 {
            assert_ne!(m.rxq[q].dctl & regs::DCTL_ENABLE, 0);
            assert_ne!(m.txq[q].dctl & regs::DCTL_ENABLE, 0);
            assert_eq!(m.rxq[q].available(), 63);
        }
        assert_eq!(m.agent.v2p & (regs::v2p::VFU | regs::v2p::PFU), 0, "mailbox released");
    });
    assert_eq!(port.mac(), MacAddr(VF_MAC));
    assert!(port.mac_from_pf());
    assert_eq!(port.info().driver, "pci:igbvf");
    assert_eq!((port.info().rx_queues, port.info().tx_queues), (2, 2));
    assert!(port.link().up);
    no_faults(&h);
    drop(port);
    torn_down(&h, &p, 2);
}

#[test]
fn vf_without_an_assigned_mac_proposes_one() {
    let p = pool(512);
    let mut m = IgbModel::vf();
    m.agent.vf_mac = None;
    m.agent.admin_mac = false;
    let (mut port, h) = open(m, &cfg(1, 64, 64), &p);
    assert!(!port.mac_from_pf());
    let mac = port.mac();
    assert_eq!(mac.0[0] & 3, 2, "locally administered unicast");
    h.with(|m, _| {
        assert_eq!(m.agent.vf_mac, Some(mac.0));
        assert_eq!(m.agent.log[0].1 & regs::msg::NACK, regs::msg::NACK, "RESET answered without a MAC");
        assert_eq!(m.agent.log[1].0[0], regs::msg::SET_MAC_ADDR);
    });
    let new = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    port.set_mac(new).unwrap();
    assert!(inject(&h, &frame_to(new.0, 1, 64)));
    no_faults(&h);
    drop(port);
    // An administrator's MAC cannot be changed by the VF.
    let (mut port, _h) = open(IgbModel::vf(), &cfg(1, 64, 64), &p);
    let e = port.set_mac(new).unwrap_err().to_string();
    assert!(e.contains("refused"), "{e}");
    assert_eq!(port.mac(), MacAddr(VF_MAC));
}

#[test]
fn vf_promiscuous_mode_is_what_the_pf_grants() {
    let p = pool(512);
    let (mut port, h) = open(IgbModel::vf(), &cfg(1, 64, 64), &p);
    let other = [0x02, 0, 0, 0, 0, 0x99];
    let group = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
    assert!(!inject(&h, &frame_to(group, 1, 64)));
    port.set_promiscuous(true).unwrap();
    h.with(|m, _| {
        let n = m.agent.log.len();
        let set = regs::msg::SET_PROMISC;
        assert_eq!(m.agent.log[n - 2].0, [set | regs::msg::PROMISC_UNICAST | regs::msg::PROMISC_MULTICAST]);
        assert_ne!(m.agent.log[n - 2].1 & regs::msg::NACK, 0, "Linux's igb refuses unicast");
        assert_eq!(m.agent.log[n - 1].0, [set | regs::msg::PROMISC_MULTICAST]);
    });
    assert!(inject(&h, &frame_to(group, 1, 64)), "multicast promiscuous");
    assert!(!inject(&h, &frame_to(other, 2, 64)), "still no unicast for others");
    port.set_promiscuous(false).unwrap();
    h.with(|m, _| assert_eq!(m.agent.promisc, 0));
    // A PF that grants unicast too.
    h.with(|m, _| m.agent.refuse_unicast_promisc = false);
    port.set_promiscuous(true).unwrap();
    assert!(inject(&h, &frame_to(other, 3, 64)));
    // Multicast groups through the mailbox.
    port.set_promiscuous(false).unwrap();
    let groups: Vec<MacAddr> = (0..3u8).map(|i| MacAddr([0x01, 0x00, 0x5e, 0, i, 0x10 * i])).collect();
    port.set_multicast(&groups).unwrap();
    h.with(|m, _| {
        let want: Vec<u16> = groups.iter().map(|g| regs::mc_hash(&g.0)).collect();
        assert_eq!(m.agent.mc_hashes, want);
    });
    assert!(inject(&h, &frame_to(groups[2].0, 4, 64)));
    let many: Vec<MacAddr> = (0..31u8).map(|i| MacAddr([0x01, 0, 0x5e, 0, 0, i])).collect();
    assert!(matches!(port.set_multicast(&many), Err(PortError::Config { .. })));
    no_faults(&h);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn link_reports_resets_under_the_port() {
    let p = pool(512);
    let (port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    assert!(port.link().up);
    h.with(|m, _| m.link_up = false);
    assert!(!port.link().up);
    h.with(|m, _| m.link_up = true);
    // Somebody resets the device: the receiver is off, whatever the PHY says.
    h.with(|m, _| {
        m.reset();
        m.link_up = true;
    });
    assert!(!port.link().up);
    drop(port);
    let (port, h) = open(IgbModel::vf(), &cfg(1, 64, 64), &p);
    assert!(port.link().up);
    h.with(|m, _| m.pf_reset_done());
    assert!(!port.link().up, "the PF was reset: the VF must be reset too");
    assert!(!port.link().up, "and stays down (the indication is kept)");
    drop(port);
    let (port, h) = open(IgbModel::vf(), &cfg(1, 64, 64), &p);
    h.with(|m, _| m.vf_reset());
    assert!(!port.link().up, "VF reset under us: queues off");
    drop(port);
    assert_eq!(p.in_use(), 0);
}

/// Somebody resets the device under the running port (a sysfs reset): PF, or VF.
fn reset_under(h: &H) {
    h.with(|m, _| match m.kind {
        Kind::Pf => {
            m.reset();
            // The PHY keeps its link: the receiver being off is what tells.
            m.link_up = true;
        }
        Kind::Vf => m.vf_reset(),
    });
}

#[test]
fn vf_second_queue_pair_works() {
    let p = pool(1024);
    let (mut port, h) = open(IgbModel::vf(), &cfg(2, 64, 64), &p);
    let mut rx1 = port.rx_queue(1).unwrap();
    let mut tx1 = port.tx_queue(1).unwrap();
    for i in 0..5 {
        assert!(h.with(|m, mem| m.inject_queue(mem, 1, 0, &frame_to(VF_MAC, i, 64))));
    }
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx1.rx_burst(&mut out, 32), 5);
    assert!(out.iter().all(|m| m.meta().queue == 1));
    assert_eq!(tx1.tx_burst(&mut out), 5);
    h.with(|m, _| assert!(m.tx_frames.iter().all(|(q, _)| *q == 1) && m.tx_frames.len() == 5));
    no_faults(&h);
    drop((rx1, tx1, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn a_misbehaving_device_is_counted_not_fatal() {
    let p = pool(1024);
    let (mut port, h) = open(IgbModel::pf(), &cfg(1, 64, 64), &p);
    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();
    let mut b: Burst<Mbuf> = Burst::new();
    let _ = b.push(mbuf(&p, &frame(1, 64)));
    h.with(|m, _| m.hold_tx = true);
    assert_eq!(tx.tx_burst(&mut b), 1);
    // A head past the ring, then one past our tail.
    h.with(|m, mem| m.bogus_tx_head(mem, 0, 1000));
    tx.flush();
    h.with(|m, mem| m.bogus_tx_head(mem, 0, 5));
    tx.flush();
    assert_eq!(port.stats().oerrors, 2);
    // A receive descriptor claiming more bytes than its buffer.
    assert!(inject(&h, &frame(2, 64)));
    h.with(|m, mem| {
        let q = &m.rxq[0];
        mem.write(((q.bah as u64) << 32 | q.bal as u64) + 12, &5000u16.to_le_bytes());
    });
    let mut out: Burst<Mbuf> = Burst::new();
    assert_eq!(rx.rx_burst(&mut out, 32), 0);
    assert_eq!(port.stats().ierrors, 1);
    // Traffic still flows.
    h.with(|m, mem| {
        m.hold_tx = false;
        m.bogus_tx_head(mem, 0, 0);
        m.drain_tx(mem);
    });
    assert!(inject(&h, &frame(3, 64)));
    assert_eq!(rx.rx_burst(&mut out, 32), 1);
    assert_eq!(tx.tx_burst(&mut out), 1);
    h.with(|m, _| assert_eq!(m.tx_frames.len(), 2));
    drop((out, b, rx, tx, port));
    assert_eq!(p.in_use(), 0);
}

#[test]
fn pci_open_device_dispatches_on_ids() {
    let p = pool(1024);
    for (dev, kind, driver) in [
        (regs::DEV_82576, Kind::Pf, DRIVER_PF),
        (regs::DEV_I350, Kind::Pf, DRIVER_PF),
        (regs::DEV_82576_VF, Kind::Vf, DRIVER_VF),
        (regs::DEV_I350_VF, Kind::Vf, DRIVER_VF),
    ] {
        let mut m = if kind == Kind::Pf { IgbModel::pf() } else { IgbModel::vf() };
        m.set_device_id(dev);
        let (d, h) = SimPci::new("0000:02:00.0", m);
        let port = super::super::open_device(0, d, &cfg(1, 64, 64), &p).unwrap();
        assert_eq!(port.info().driver, driver, "{dev:04x}");
        drop(port);
        no_faults(&h);
    }
    assert_eq!(p.in_use(), 0);
}

/// l2fwd on a worker between a simulated PF port and a simulated VF port, the test thread
/// playing both wires: exact counts both ways, MACs rewritten, payloads intact and in order
/// (frames of every size up to a full one, so reassembly is on the path), every mbuf back.
#[test]
fn l2fwd_worker_forwards_between_a_pf_and_a_vf() {
    // Frames of up to 1514 bytes into the PF: several 1 KiB receive buffers each.
    shared::l2fwd_worker_forwards(&PF, &VF, |k| 64 + (k * 7 % 1451) as usize);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 48 }, ..ProptestConfig::default() })]

    /// Any interleaving of device and driver steps, PF or VF: frames that fit arrive once,
    /// in order, intact; the ones over the data room are counted; everything sent leaves
    /// once, in order; counters add up; at the end every mbuf is back, every mapping gone,
    /// the device reset, nothing faulted.
    #[test]
    fn rings_keep_order_and_account_for_everything(
        ops in proptest::collection::vec(op(prop_oneof![60u16..200, 900u16..2000, 1700u16..5000]), 1..120),
        rx_ring in prop_oneof![Just(8u16), Just(16), Just(64)],
        tx_ring in prop_oneof![Just(8u16), Just(16), Just(64)],
        vf in any::<bool>(),
    ) {
        let p = pool(512);
        let (model, dst) = if vf { (IgbModel::vf(), VF_MAC) } else { (IgbModel::pf(), PF_MAC) };
        let (port, h) = open(model, &cfg(1, rx_ring, tx_ring), &p);
        ring_ops(ops, port, |port| port.counters().tx(0).missed.get(), &h, &p, dst, 2048 - 64 - 256)?;
        h.with(|m, _| assert_eq!(m.resets, 2));
    }
}
