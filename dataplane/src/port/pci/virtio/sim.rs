//! A simulated modern virtio-net device (virtio 1.x over PCI) for the unit tests.
//!
//! Layout, like QEMU's `virtio-net-pci,disable-legacy=on`: config space with a vendor
//! capability per structure; BAR 4 (16 KiB) holds the common configuration at 0x0, ISR at
//! 0x1000, the device configuration at 0x2000 and the doorbells at 0x3000 (multiplier 4,
//! queue `i`'s doorbell at `0x3000 + 4 i`). A first notify capability points at BAR 2,
//! which cannot be mapped (as an I/O-port BAR under VFIO), so a driver must skip it.
//!
//! The device side of the split virtqueues: a doorbell on a transmit queue consumes every
//! available chain at once (unless `hold_tx`), recording the frame behind the 12-byte
//! header; [`VirtioNetModel::inject_rx`] writes a frame into posted receive buffers (several
//! with `MRG_RXBUF`, or dropped when it does not fit, as QEMU does); the control queue
//! answers `MQ_VQ_PAIRS_SET` and `RX_PROMISC`.
//!
//! The model checks what the driver does and records every violation in `faults`: a
//! register of the wrong width, queue setup after `DRIVER_OK`, features it did not offer,
//! a doorbell before `DRIVER_OK` or with the wrong value, an available index running more
//! than a ring ahead, a descriptor head posted twice, a receive buffer not device-writable,
//! a transmit header that is not zero, `NO_INTERRUPT` missing. DMA goes through
//! [`SimMemory`], which records its own faults.
use super::super::sim::{RingModel, SimMemory, SimModel};
use super::regs::{self, common, feature, feature::bit, ring, status};
use std::collections::HashSet;
use vfio::pci as cfg;

/// The BAR of the virtio structures.
pub const BAR: u8 = 4;
const ISR_OFF: u32 = 0x1000;
const DEVICE_OFF: u32 = 0x2000;
const NOTIFY_OFF: u32 = 0x3000;
const NOTIFY_MULT: u32 = 4;

/// One virtqueue, device side.
#[derive(Debug, Default, Clone)]
pub struct SimQueue {
    pub max: u16,
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub enabled: bool,
    pub last_avail: u16,
    pub used_idx: u16,
    pub in_flight: HashSet<u16>,
}

/// One descriptor.
#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
}

/// The simulated virtio-net device.
#[derive(Debug)]
pub struct VirtioNetModel {
    config: [u8; 256],
    pub offered: u64,
    pub driver_features: u64,
    dfsel: u32,
    gfsel: u32,
    pub status: u8,
    /// Every value written to the status register.
    pub status_log: Vec<u8>,
    pub generation: u8,
    queue_sel: u16,
    pub queues: Vec<SimQueue>,
    pub mac: [u8; 6],
    pub link_up: bool,
    pub speed: u32,
    pub max_pairs: u16,
    pub active_pairs: u16,
    pub promisc: bool,
    /// Frames sent by the driver: (queue pair, frame without the header).
    pub tx_frames: Vec<(u16, Vec<u8>)>,
    /// Do not consume transmit buffers on a doorbell.
    pub hold_tx: bool,
    /// Set `VRING_USED_F_NO_NOTIFY` in every used ring.
    pub no_notify: bool,
    /// Clear `FEATURES_OK` when the driver sets it.
    pub refuse_features: bool,
    /// Never answer the control queue.
    pub mute_ctrl: bool,
    /// Frames lost for want of a receive buffer.
    pub rx_no_buffer: u64,
    /// Frames dropped as larger than one buffer (no `MRG_RXBUF`).
    pub rx_oversize: u64,
    /// Doorbells per queue.
    pub notifies: Vec<u64>,
    /// Control commands: (class, command, data, ack).
    pub ctrl_log: Vec<(u8, u8, Vec<u8>, u8)>,
    /// Protocol violations by the driver.
    pub faults: Vec<String>,
}

/// The features a QEMU virtio-net with `iommu_platform=on,mq=on` offers, minus offloads.
pub fn default_features() -> u64 {
    bit(feature::VERSION_1)
        | bit(feature::ACCESS_PLATFORM)
        | bit(feature::NET_MAC)
        | bit(feature::NET_STATUS)
        | bit(feature::NET_MRG_RXBUF)
        | bit(feature::NET_CTRL_VQ)
        | bit(feature::NET_CTRL_RX)
        | bit(feature::NET_MQ)
        | bit(feature::NET_SPEED_DUPLEX)
        // Offered but not wanted by the driver: must not be accepted.
        | bit(29) // RING_EVENT_IDX
        | bit(28) // INDIRECT_DESC
        | bit(0) // NET_CSUM
}

impl VirtioNetModel {
    /// A device offering `offered`, with `max_pairs` queue pairs of at most `queue_max`
    /// entries.
    pub fn new(offered: u64, max_pairs: u16, queue_max: u16) -> Self {
        let mut c = [0u8; 256];
        let put16 = |c: &mut [u8; 256], o: usize, v: u16| c[o..o + 2].copy_from_slice(&v.to_le_bytes());
        let put32 = |c: &mut [u8; 256], o: usize, v: u32| c[o..o + 4].copy_from_slice(&v.to_le_bytes());
        put16(&mut c, 0, regs::VENDOR);
        put16(&mut c, 2, regs::DEVICE_NET_MODERN);
        put16(&mut c, cfg::STATUS as usize, cfg::STATUS_CAP_LIST);
        c[8] = 1; // revision 1: modern
        put16(&mut c, cfg::SUBSYSTEM_VENDOR_ID as usize, regs::VENDOR);
        put16(&mut c, cfg::SUBSYSTEM_ID as usize, 0x1100);
        c[cfg::CAPABILITIES_POINTER as usize] = 0x40;
        // (at, cfg_type, bar, offset, length, next)
        let caps: [(usize, u8, u8, u32, u32, u8); 5] = [
            (0x40, regs::CAP_NOTIFY_CFG, 2, 0, 0x100, 0x54),
            (0x54, regs::CAP_COMMON_CFG, BAR, 0, 0x1000, 0x64),
            (0x64, regs::CAP_ISR_CFG, BAR, ISR_OFF, 0x1000, 0x74),
            (0x74, regs::CAP_DEVICE_CFG, BAR, DEVICE_OFF, 0x1000, 0x84),
            (0x84, regs::CAP_NOTIFY_CFG, BAR, NOTIFY_OFF, 0x1000, 0x98),
        ];
        for (at, ty, bar, off, len, next) in caps {
            c[at] = cfg::CAP_ID_VENDOR;
            c[at + 1] = next;
            c[at + 2] = if ty == regs::CAP_NOTIFY_CFG { 20 } else { 16 };
            c[at + 3] = ty;
            c[at + 4] = bar;
            put32(&mut c, at + 8, off);
            put32(&mut c, at + 12, len);
            if ty == regs::CAP_NOTIFY_CFG {
                put32(&mut c, at + 16, if bar == 2 { 2 } else { NOTIFY_MULT });
            }
        }
        c[0x98] = cfg::CAP_ID_MSIX;
        c[0x99] = 0;
        let nq = 2 * max_pairs as usize + 1;
        VirtioNetModel {
            config: c,
            offered,
            driver_features: 0,
            dfsel: 0,
            gfsel: 0,
            status: 0,
            status_log: vec![],
            generation: 0,
            queue_sel: 0,
            queues: (0..nq).map(|_| SimQueue { max: queue_max, size: queue_max, ..Default::default() }).collect(),
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            link_up: true,
            speed: 10_000,
            max_pairs,
            active_pairs: 1,
            promisc: true,
            tx_frames: vec![],
            hold_tx: false,
            no_notify: false,
            refuse_features: false,
            mute_ctrl: false,
            rx_no_buffer: 0,
            rx_oversize: 0,
            notifies: vec![0; nq],
            ctrl_log: vec![],
            faults: vec![],
        }
    }

    /// Sets the PCI device id (to model other devices).
    pub fn set_device_id(&mut self, vendor: u16, device: u16) {
        self.config[0..2].copy_from_slice(&vendor.to_le_bytes());
        self.config[2..4].copy_from_slice(&device.to_le_bytes());
    }

    fn negotiated(&self, f: u32) -> bool {
        self.driver_features & bit(f) != 0
    }

    fn fault(&mut self, s: String) {
        self.faults.push(s);
    }

    /// A device reset: the driver's (status 0), or one under it (a sysfs or function-level
    /// reset of the device while the driver runs).
    pub fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.active_pairs = 1;
        self.promisc = true;
        for q in &mut self.queues {
            *q = SimQueue { max: q.max, size: q.max, ..Default::default() };
        }
    }

    fn ctrl_index(&self) -> usize {
        if self.negotiated(feature::NET_MQ) {
            2 * self.max_pairs as usize
        } else {
            2
        }
    }

    // ---- device side of the split ring ----

    fn desc(table: u64, mem: &mut SimMemory, id: u16) -> Desc {
        let a = table + ring::DESC_SIZE as u64 * id as u64;
        Desc { addr: mem.r64(a), len: mem.r32(a + 8), flags: mem.r16(a + 12) }
    }

    /// The available chain `ahead` entries past the next one of queue `qi`, without
    /// consuming it: (head, descriptors).
    fn peek_chain(&mut self, mem: &mut SimMemory, qi: usize, ahead: u16) -> Option<(u16, Vec<Desc>)> {
        let (table, avail, size, last_avail) = {
            let q = &self.queues[qi];
            (q.desc, q.avail, q.size, q.last_avail)
        };
        let avail_idx = mem.r16(avail + 2);
        let outstanding = avail_idx.wrapping_sub(last_avail);
        if outstanding > size {
            self.fault(format!(
                "queue {qi}: avail.idx {avail_idx} is {outstanding} entries ahead of a {size}-entry ring"
            ));
            return None;
        }
        if ahead >= outstanding {
            return None;
        }
        if mem.r16(avail) & ring::AVAIL_F_NO_INTERRUPT == 0 {
            self.fault(format!("queue {qi}: VRING_AVAIL_F_NO_INTERRUPT not set"));
        }
        let slot = last_avail.wrapping_add(ahead) % size;
        let head = mem.r16(avail + 4 + 2 * slot as u64);
        if head >= size {
            self.fault(format!("queue {qi}: head {head} out of range"));
            return None;
        }
        if ahead == 0 && self.queues[qi].in_flight.contains(&head) {
            self.fault(format!("queue {qi}: descriptor {head} posted while already in flight"));
            return None;
        }
        let mut v = vec![];
        let mut id = head;
        for _ in 0..size {
            let d = Self::desc(table, mem, id);
            v.push(d);
            if d.flags & ring::DESC_F_NEXT == 0 {
                return Some((head, v));
            }
            id = mem.r16(table + ring::DESC_SIZE as u64 * id as u64 + 14);
        }
        self.fault(format!("queue {qi}: descriptor chain from {head} loops"));
        None
    }

    fn take_chain(&mut self, mem: &mut SimMemory, qi: usize) -> Option<(u16, Vec<Desc>)> {
        let c = self.peek_chain(mem, qi, 0)?;
        let q = &mut self.queues[qi];
        q.last_avail = q.last_avail.wrapping_add(1);
        q.in_flight.insert(c.0);
        Some(c)
    }

    /// Writes used entries (then the index, once, as QEMU's flush does).
    fn push_used(&mut self, mem: &mut SimMemory, qi: usize, done: &[(u16, u32)]) {
        let q = &mut self.queues[qi];
        for &(id, len) in done {
            q.in_flight.remove(&id);
            let e = q.used + 4 + 8 * (q.used_idx % q.size) as u64;
            mem.w32(e, id as u32);
            mem.w32(e + 4, len);
            q.used_idx = q.used_idx.wrapping_add(1);
        }
        mem.w16(q.used + 2, q.used_idx);
        mem.w16(q.used, if self.no_notify { ring::USED_F_NO_NOTIFY } else { 0 });
    }

    /// Consumes every available transmit chain of queue `qi`.
    pub fn process_tx(&mut self, mem: &mut SimMemory, qi: usize) {
        let mut done = vec![];
        while let Some((head, chain)) = self.take_chain(mem, qi) {
            let mut bytes = vec![];
            for d in &chain {
                if d.flags & ring::DESC_F_WRITE != 0 {
                    self.fault(format!("tx queue {qi}: descriptor of {head} is device-writable"));
                }
                let mut b = vec![0u8; d.len as usize];
                mem.read(d.addr, &mut b);
                bytes.extend_from_slice(&b);
            }
            if bytes.len() < regs::hdr::LEN || bytes[..regs::hdr::LEN].iter().any(|&b| b != 0) {
                self.fault(format!("tx queue {qi}: header of {head} is not 12 zero bytes: {bytes:02x?}"));
            } else {
                self.tx_frames.push(((qi / 2) as u16, bytes[regs::hdr::LEN..].to_vec()));
            }
            done.push((head, 0));
        }
        if !done.is_empty() {
            self.push_used(mem, qi, &done);
        }
    }

    /// Delivers `frame` on receive queue pair `pair`, as QEMU's virtio-net does: into one
    /// buffer, or several with `MRG_RXBUF`; without a buffer (or one big enough) it is
    /// dropped and counted. Returns whether it was delivered.
    pub fn inject_rx(&mut self, mem: &mut SimMemory, pair: u16, frame: &[u8]) -> bool {
        let qi = 2 * pair as usize;
        if self.status & status::DRIVER_OK == 0 || !self.queues[qi].enabled || pair >= self.active_pairs {
            self.rx_no_buffer += 1;
            return false;
        }
        let total = regs::hdr::LEN + frame.len();
        let mrg = self.negotiated(feature::NET_MRG_RXBUF);
        // Enough buffers? (QEMU's virtio_net_has_buffers.)
        let mut cap = 0usize;
        let mut need = 0u16;
        while cap < total {
            match self.peek_chain(mem, qi, need) {
                Some((_, chain)) => {
                    cap += chain.iter().map(|d| d.len as usize).sum::<usize>();
                    need += 1;
                }
                None => {
                    self.rx_no_buffer += 1;
                    return false;
                }
            }
            if !mrg {
                break;
            }
        }
        if cap < total {
            self.rx_oversize += 1;
            return false;
        }
        let mut data = vec![0u8; regs::hdr::LEN];
        data[regs::hdr::NUM_BUFFERS..].copy_from_slice(&need.to_le_bytes());
        data.extend_from_slice(frame);
        let mut off = 0;
        let mut done = vec![];
        for _ in 0..need {
            let Some((head, chain)) = self.take_chain(mem, qi) else { break };
            let mut written = 0u32;
            for d in chain {
                if d.flags & ring::DESC_F_WRITE == 0 {
                    self.fault(format!("rx queue {qi}: descriptor of {head} is not device-writable"));
                    continue;
                }
                let n = (d.len as usize).min(data.len() - off);
                mem.write(d.addr, &data[off..off + n]);
                off += n;
                written += n as u32;
            }
            done.push((head, written));
        }
        self.push_used(mem, qi, &done);
        true
    }

    /// Answers every pending control command.
    fn process_ctrl(&mut self, mem: &mut SimMemory, qi: usize) {
        if self.mute_ctrl {
            return;
        }
        let mut done = vec![];
        while let Some((head, chain)) = self.take_chain(mem, qi) {
            let mut cmd = vec![];
            let mut ack_at = None;
            for d in &chain {
                if d.flags & ring::DESC_F_WRITE != 0 {
                    ack_at = Some(d.addr);
                } else {
                    let mut b = vec![0u8; d.len as usize];
                    mem.read(d.addr, &mut b);
                    cmd.extend_from_slice(&b);
                }
            }
            let ack = match (cmd.first().copied(), cmd.get(1).copied(), cmd.get(2..).unwrap_or(&[])) {
                (Some(regs::ctrl::CLASS_MQ), Some(regs::ctrl::MQ_VQ_PAIRS_SET), [a, b])
                    if self.negotiated(feature::NET_MQ) =>
                {
                    let n = u16::from_le_bytes([*a, *b]);
                    if (1..=self.max_pairs).contains(&n) {
                        self.active_pairs = n;
                        regs::ctrl::OK
                    } else {
                        regs::ctrl::ERR
                    }
                }
                (Some(regs::ctrl::CLASS_RX), Some(regs::ctrl::RX_PROMISC), [on])
                    if self.negotiated(feature::NET_CTRL_RX) =>
                {
                    self.promisc = *on != 0;
                    regs::ctrl::OK
                }
                _ => regs::ctrl::ERR,
            };
            match ack_at {
                Some(a) => {
                    mem.write(a, &[ack]);
                }
                None => self.fault(format!("ctrl queue: command {cmd:?} has no writable ack")),
            }
            self.ctrl_log.push((
                cmd.first().copied().unwrap_or(0xff),
                cmd.get(1).copied().unwrap_or(0xff),
                cmd.get(2..).unwrap_or(&[]).to_vec(),
                ack,
            ));
            done.push((head, 1));
        }
        if !done.is_empty() {
            self.push_used(mem, qi, &done);
        }
    }

    /// Consumes pending transmit buffers of every queue (after `hold_tx`).
    pub fn drain_tx(&mut self, mem: &mut SimMemory) {
        for p in 0..self.max_pairs as usize {
            if self.queues[2 * p + 1].enabled {
                self.process_tx(mem, 2 * p + 1);
            }
        }
    }

    /// Sets or clears `VRING_USED_F_NO_NOTIFY` in every enabled queue.
    pub fn set_no_notify(&mut self, mem: &mut SimMemory, on: bool) {
        self.no_notify = on;
        for q in self.queues.iter().filter(|q| q.enabled) {
            mem.w16(q.used, if on { ring::USED_F_NO_NOTIFY } else { 0 });
        }
    }

    /// Writes a bogus used entry (id `id`) on queue `qi`, as a broken device would.
    pub fn inject_bogus_used(&mut self, mem: &mut SimMemory, qi: usize, id: u16) {
        self.push_used(mem, qi, &[(id, 60)]);
    }

    // ---- registers ----

    fn common_read(&mut self, off: u32, width: u8) -> u64 {
        let q = self.queues.get(self.queue_sel as usize);
        let (v, w): (u64, u8) = match off {
            common::DEVICE_FEATURE_SELECT => (self.dfsel as u64, 4),
            common::DEVICE_FEATURE => ((self.offered >> (32 * self.dfsel.min(2))) as u32 as u64, 4),
            common::DRIVER_FEATURE_SELECT => (self.gfsel as u64, 4),
            common::DRIVER_FEATURE => ((self.driver_features >> (32 * self.gfsel.min(2))) as u32 as u64, 4),
            common::MSIX_CONFIG => (0xffff, 2),
            common::NUM_QUEUES => (self.queues.len() as u64, 2),
            common::DEVICE_STATUS => (self.status as u64, 1),
            common::CONFIG_GENERATION => (self.generation as u64, 1),
            common::QUEUE_SELECT => (self.queue_sel as u64, 2),
            common::QUEUE_SIZE => (q.map_or(0, |q| q.size) as u64, 2),
            common::QUEUE_MSIX_VECTOR => (0xffff, 2),
            common::QUEUE_ENABLE => (q.map_or(0, |q| q.enabled as u64), 2),
            common::QUEUE_NOTIFY_OFF => (self.queue_sel as u64, 2),
            o if (common::QUEUE_DESC..common::QUEUE_DEVICE + 8).contains(&o) => {
                let q = q.cloned().unwrap_or_default();
                let full = match (o - common::QUEUE_DESC) / 8 {
                    0 => q.desc,
                    1 => q.avail,
                    _ => q.used,
                };
                (if o % 8 == 0 { full as u32 as u64 } else { full >> 32 }, 4)
            }
            _ => {
                self.fault(format!("read of unknown common register {off:#x}"));
                return 0;
            }
        };
        if w != width {
            self.fault(format!("common register {off:#x} read with width {width}, not {w}"));
        }
        v
    }

    fn common_write(&mut self, mem: &mut SimMemory, off: u32, width: u8, v: u64) {
        let w = match off {
            common::DEVICE_FEATURE_SELECT | common::DRIVER_FEATURE_SELECT | common::DRIVER_FEATURE => 4,
            common::DEVICE_STATUS => 1,
            o if (common::QUEUE_DESC..common::QUEUE_DEVICE + 8).contains(&o) => 4,
            _ => 2,
        };
        if w != width {
            self.fault(format!("common register {off:#x} written with width {width}, not {w}"));
        }
        let queue_reg = (common::QUEUE_SELECT..common::QUEUE_DEVICE + 8).contains(&off) && off != common::QUEUE_SELECT;
        if queue_reg && self.status & status::DRIVER_OK != 0 {
            self.fault(format!("queue register {off:#x} written after DRIVER_OK"));
        }
        let sel = self.queue_sel as usize;
        match off {
            common::DEVICE_FEATURE_SELECT => self.dfsel = v as u32,
            common::DRIVER_FEATURE_SELECT => self.gfsel = v as u32,
            common::DRIVER_FEATURE => {
                if self.status & status::FEATURES_OK != 0 {
                    self.fault("driver features written after FEATURES_OK".into());
                }
                let shift = 32 * self.gfsel.min(1);
                self.driver_features = (self.driver_features & !(0xffff_ffffu64 << shift)) | (v << shift);
            }
            common::DEVICE_STATUS => {
                let v = v as u8;
                self.status_log.push(v);
                if v == 0 {
                    self.reset();
                    return;
                }
                if v & self.status != self.status {
                    self.fault(format!("status bits cleared without a reset: {:#x} -> {v:#x}", self.status));
                }
                let mut v = v;
                if v & status::FEATURES_OK != 0 && self.status & status::FEATURES_OK == 0 {
                    let ok = self.driver_features & !self.offered == 0
                        && self.negotiated(feature::VERSION_1)
                        && !self.refuse_features;
                    if self.driver_features & !self.offered != 0 {
                        self.fault(format!(
                            "driver accepted unoffered features {:#x}",
                            self.driver_features & !self.offered
                        ));
                    }
                    if !ok {
                        v &= !status::FEATURES_OK;
                    }
                }
                if v & status::DRIVER_OK != 0 && self.status & status::DRIVER_OK == 0 {
                    if v & status::FEATURES_OK == 0 {
                        self.fault("DRIVER_OK without FEATURES_OK".into());
                    }
                    for q in self.queues.iter().filter(|q| q.enabled) {
                        mem.w16(q.used, if self.no_notify { ring::USED_F_NO_NOTIFY } else { 0 });
                    }
                }
                self.status = v;
            }
            common::QUEUE_SELECT => self.queue_sel = v as u16,
            common::QUEUE_SIZE => {
                if let Some(q) = self.queues.get_mut(sel) {
                    let s = v as u16;
                    if s == 0 || s > q.max || !s.is_power_of_two() {
                        self.faults.push(format!("queue {sel}: size {s} (max {})", q.max));
                    } else {
                        q.size = s;
                    }
                }
            }
            common::QUEUE_ENABLE => {
                if v != 1 {
                    self.fault(format!("queue {sel}: queue_enable written with {v}"));
                } else if let Some(q) = self.queues.get_mut(sel) {
                    q.enabled = true;
                }
            }
            common::QUEUE_MSIX_VECTOR | common::MSIX_CONFIG => {}
            o if (common::QUEUE_DESC..common::QUEUE_DEVICE + 8).contains(&o) => {
                if let Some(q) = self.queues.get_mut(sel) {
                    let f = match (o - common::QUEUE_DESC) / 8 {
                        0 => &mut q.desc,
                        1 => &mut q.avail,
                        _ => &mut q.used,
                    };
                    *f = if o % 8 == 0 { (*f & !0xffff_ffff) | v } else { (*f & 0xffff_ffff) | (v << 32) };
                }
            }
            _ => self.fault(format!("write of read-only or unknown common register {off:#x}")),
        }
    }

    fn device_read(&mut self, off: u32, width: u8) -> u64 {
        let b = |i: u32| -> u64 {
            match i {
                0..=5 => self.mac[i as usize] as u64,
                6 => self.link_up as u64,
                7 => 0,
                8 => self.max_pairs as u64 & 0xff,
                9 => (self.max_pairs >> 8) as u64,
                12..=15 => (self.speed >> (8 * (i - 12))) as u64 & 0xff,
                16 => 1,
                _ => 0,
            }
        };
        (0..width as u32).fold(0u64, |v, i| v | b(off + i) << (8 * i))
    }

    fn notify(&mut self, mem: &mut SimMemory, off: u32, width: u8, v: u64) {
        let qi = (off / NOTIFY_MULT) as usize;
        if width != 2 || off % NOTIFY_MULT != 0 || v as usize != qi || qi >= self.queues.len() {
            self.fault(format!("bad doorbell write: offset {off:#x} width {width} value {v}"));
            return;
        }
        if self.status & status::DRIVER_OK == 0 {
            self.fault(format!("doorbell of queue {qi} before DRIVER_OK"));
            return;
        }
        self.notifies[qi] += 1;
        if qi == self.ctrl_index() && self.negotiated(feature::NET_CTRL_VQ) {
            self.process_ctrl(mem, qi);
        } else if qi % 2 == 1 && !self.hold_tx {
            self.process_tx(mem, qi);
        }
    }
}

impl RingModel for VirtioNetModel {
    /// Into pair 0.
    fn inject(&mut self, mem: &mut SimMemory, frame: &[u8]) -> bool {
        self.inject_rx(mem, 0, frame)
    }
    fn hold_tx(&mut self, mem: &mut SimMemory, on: bool) {
        self.hold_tx = on;
        if !on {
            self.drain_tx(mem)
        }
    }
    fn tx_frames(&self) -> &[(u16, Vec<u8>)] {
        &self.tx_frames
    }
    fn tx_doorbells(&self, q: u16) -> u64 {
        self.notifies[2 * q as usize + 1]
    }
    fn faults(&self) -> &[String] {
        &self.faults
    }
}

impl SimModel for VirtioNetModel {
    fn config(&mut self) -> &mut [u8; 256] {
        &mut self.config
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        (bar == BAR).then_some(0x4000)
    }

    fn mmio_read(&mut self, _mem: &mut SimMemory, bar: u8, off: u32, width: u8) -> u64 {
        if bar != BAR {
            self.fault(format!("read of BAR {bar}"));
            return !0;
        }
        match off {
            0..ISR_OFF => self.common_read(off, width),
            ISR_OFF..DEVICE_OFF => 0,
            DEVICE_OFF..NOTIFY_OFF => self.device_read(off - DEVICE_OFF, width),
            _ => {
                self.fault(format!("read of doorbell {off:#x}"));
                0
            }
        }
    }

    fn mmio_write(&mut self, mem: &mut SimMemory, bar: u8, off: u32, width: u8, v: u64) {
        if bar != BAR {
            self.fault(format!("write to BAR {bar}"));
            return;
        }
        match off {
            0..ISR_OFF => self.common_write(mem, off, width, v),
            NOTIFY_OFF.. => self.notify(mem, off - NOTIFY_OFF, width, v),
            _ => self.fault(format!("write to read-only register {off:#x}")),
        }
    }
}
