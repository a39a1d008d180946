//! A simulated 82576 for the unit tests: a PF, or one of its VFs together with the PF's
//! side of the mailbox, behind [`SimPci`](super::super::sim::SimPci).
//!
//! What it models, after QEMU's `hw/net/igb_core.c` (the device the VM test bed runs) and
//! the datasheet:
//! - **Registers**: 32-bit accesses only (anything else is a fault, as a VF's BAR accepts
//!   nothing else); an unknown register is a fault, so a typo in the driver shows. PF: the
//!   global registers the driver uses, `CTRL.RST` (everything back to its reset value, link
//!   down, queue 0 enabled as QEMU has it), the PHY behind `MDIC` (restarting
//!   auto-negotiation brings the link up after a few `STATUS` reads), RSS (`MRQC`, `RETA`),
//!   address filters, promiscuous bits, the clear-on-read drop counters. VF: its queue
//!   registers at the 82575-compatible addresses, `CTRL.RST` (the VF's queues off; the PF
//!   must see a `RESET` message before it enables the VF again), and the mailbox.
//! - **Receive** ([`IgbModel::inject`]): filtering by destination address, the frame-size
//!   limit (`RCTL.LPE`/`RLPML` on a PF, the VF's `SET_LPE` on a VF), RSS queue choice through
//!   the redirection table, then the frame written over as many descriptors as the buffer
//!   size (`SRRCTL.BSIZEPKT`) needs, each written back with the status word (`DD`, `EOP` on
//!   the last) last; a frame with too few descriptors posted is dropped and counted
//!   (`rx_no_buffer`, and `RQDPC` on a PF).
//! - **Transmit**: a tail write processes every descriptor up to the tail at once (unless
//!   `hold_tx`), checks each (advanced data descriptor, `IFCS`, `PAYLEN` equal to the
//!   frame's length), records the frame, and for a descriptor with `RS` writes the head back
//!   (`TDWBAL` bit 0) or sets `DD`.
//! - **Mailbox** (VF): the PF side runs at once when the VF writes `REQ`: `PFACK`, then the
//!   reply in the mailbox memory and `PFSTS`, as Linux's `igb` answers `RESET`,
//!   `SET_MAC_ADDR`, `SET_MULTICAST`, `SET_LPE` and `SET_PROMISC` (unicast refused). Message
//!   memory touched without holding `VFU`, a request without it, are faults.
//!
//! Violations of the programming model are recorded in `faults`: queue setup while a queue is
//! enabled, a ring length not a multiple of 128 bytes, a tail past the ring or moved past the
//! device's head, malformed descriptors. DMA goes through [`SimMemory`], which records its
//! own faults (an IOVA not mapped, DMA with bus mastering off).
use super::super::sim::{RingModel, SimMemory, SimModel};
use super::regs::{self, ctrl, msg, q, rctl, rxd, txd, v2p, vf, QueueLayout};
use super::Kind;
use std::collections::HashMap;

/// One receive queue, device side.
#[derive(Debug, Default, Clone)]
pub struct SimRxQ {
    pub bal: u32,
    pub bah: u32,
    pub len: u32,
    pub srrctl: u32,
    pub head: u32,
    pub tail: u32,
    pub dctl: u32,
    /// Frames dropped for want of descriptors since `RQDPC` was last read.
    pub dropped: u32,
}

/// One transmit queue, device side.
#[derive(Debug, Default, Clone)]
pub struct SimTxQ {
    pub bal: u32,
    pub bah: u32,
    pub len: u32,
    pub head: u32,
    pub tail: u32,
    pub dctl: u32,
    pub wbal: u32,
    pub wbah: u32,
    /// Bytes of a frame whose descriptors did not reach EOP yet.
    pub partial: Vec<u8>,
}

impl SimRxQ {
    fn size(&self) -> u32 {
        self.len / rxd::SIZE as u32
    }
    fn base(&self) -> u64 {
        (self.bah as u64) << 32 | self.bal as u64
    }
    fn enabled(&self) -> bool {
        self.dctl & regs::DCTL_ENABLE != 0
    }
    /// Descriptors posted and not used yet.
    pub fn available(&self) -> u32 {
        let n = self.size();
        if n == 0 {
            0
        } else {
            (self.tail + n - self.head) % n
        }
    }
}

impl SimTxQ {
    fn size(&self) -> u32 {
        self.len / txd::SIZE as u32
    }
    fn base(&self) -> u64 {
        (self.bah as u64) << 32 | self.bal as u64
    }
    fn enabled(&self) -> bool {
        self.dctl & regs::DCTL_ENABLE != 0
    }
    fn pending(&self) -> u32 {
        let n = self.size();
        if n == 0 {
            0
        } else {
            (self.tail + n - self.head) % n
        }
    }
}

/// The PF's side of a VF's mailbox, played by the model (what Linux's `igb` does).
#[derive(Debug, Default)]
pub struct SimPfAgent {
    /// The MAC address the PF assigned to the VF (`None`: none).
    pub vf_mac: Option<[u8; 6]>,
    /// The administrator set `vf_mac`: the VF may not change it.
    pub admin_mac: bool,
    /// Refuse unicast promiscuous mode (Linux's igb does).
    pub refuse_unicast_promisc: bool,
    /// Never acknowledge or answer.
    pub mute: bool,
    /// The PF is in reset (`RSTI`).
    pub in_reset: bool,
    /// The VF may send requests (it sent `RESET` since its last reset).
    pub cts: bool,
    /// The VF's receive and transmit are enabled by the PF (`VFRE`/`VFTE`).
    pub enabled: bool,
    /// Every message the VF sent, with the first word of the reply.
    pub log: Vec<(Vec<u32>, u32)>,
    pub promisc: u32,
    pub mc_hashes: Vec<u16>,
    pub lpe: Option<u32>,
    /// `V2PMAILBOX` as the VF sees it.
    pub v2p: u32,
    pub mem: [u32; vf::MBX_WORDS],
    /// A reply the VF has not acknowledged yet.
    pub unread_reply: bool,
}

/// The simulated 82576 PF or VF.
#[derive(Debug)]
pub struct IgbModel {
    config: [u8; 256],
    pub kind: Kind,
    /// PF global registers (plain storage).
    pub regs: HashMap<u32, u32>,
    pub rxq: Vec<SimRxQ>,
    pub txq: Vec<SimTxQ>,
    pub link_up: bool,
    /// `STATUS` reads until auto-negotiation completes.
    pub autoneg: Option<u32>,
    pub bmcr: u16,
    pub perm_mac: [u8; 6],
    /// The PF has VFs (`STATUS.IOV_MODE`).
    pub iov_mode: bool,
    /// Frames sent by the driver: (queue, frame).
    pub tx_frames: Vec<(u16, Vec<u8>)>,
    /// Do not process transmit descriptors on a tail write.
    pub hold_tx: bool,
    /// Tail writes per transmit queue.
    pub tx_doorbells: Vec<u64>,
    /// Frames dropped for want of receive descriptors.
    pub rx_no_buffer: u64,
    /// Frames dropped as longer than the frame limit.
    pub rx_oversize: u64,
    /// Frames the address filter did not accept.
    pub rx_filtered: u64,
    /// Descriptors each injected frame used (the last frame's).
    pub last_rx_descs: u32,
    /// Device (PF) or VF resets.
    pub resets: u32,
    pub agent: SimPfAgent,
    /// Driver violations.
    pub faults: Vec<String>,
    roc_unread: u32,
}

const VF_QUEUES: usize = 2;
const PF_QUEUES: usize = 16;

impl IgbModel {
    /// A PF (`8086:10c9`), link up (the kernel driver had it), MAC 52:54:00:12:34:56.
    pub fn pf() -> Self {
        Self::new(Kind::Pf, regs::DEV_82576)
    }

    /// A VF (`8086:10ca`) whose PF assigned it 02:76:0a:f0:00:00 and runs Linux's policy.
    pub fn vf() -> Self {
        let mut m = Self::new(Kind::Vf, regs::DEV_82576_VF);
        m.agent.vf_mac = Some([0x02, 0x76, 0x0a, 0xf0, 0x00, 0x00]);
        m.agent.admin_mac = true;
        m.agent.refuse_unicast_promisc = true;
        m
    }

    fn new(kind: Kind, device: u16) -> Self {
        let mut c = [0u8; 256];
        c[0..2].copy_from_slice(&regs::VENDOR.to_le_bytes());
        c[2..4].copy_from_slice(&device.to_le_bytes());
        c[0x0b] = 0x02; // network controller
        let nq = if kind == Kind::Pf { PF_QUEUES } else { VF_QUEUES };
        let mut m = IgbModel {
            config: c,
            kind,
            regs: HashMap::new(),
            rxq: vec![SimRxQ::default(); nq],
            txq: vec![SimTxQ::default(); nq],
            link_up: true,
            autoneg: None,
            bmcr: mdic_bmcr_default(),
            perm_mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            iov_mode: false,
            tx_frames: vec![],
            hold_tx: false,
            tx_doorbells: vec![0; nq],
            rx_no_buffer: 0,
            rx_oversize: 0,
            rx_filtered: 0,
            last_rx_descs: 0,
            resets: 0,
            agent: SimPfAgent::default(),
            faults: vec![],
            roc_unread: 0,
        };
        m.reset_registers();
        m
    }

    /// Sets the PCI device id (to model the I350, or another device).
    pub fn set_device_id(&mut self, device: u16) {
        self.config[2..4].copy_from_slice(&device.to_le_bytes());
    }

    fn fault(&mut self, s: String) {
        self.faults.push(s);
    }

    fn reg(&self, r: u32) -> u32 {
        self.regs.get(&r).copied().unwrap_or(0)
    }

    /// Register values after a reset (QEMU's: queue 0 enabled, receive address 0 loaded).
    fn reset_registers(&mut self) {
        self.regs.clear();
        for q in &mut self.rxq {
            *q = SimRxQ::default();
        }
        for q in &mut self.txq {
            *q = SimTxQ::default();
        }
        if self.kind == Kind::Pf {
            self.rxq[0].dctl = regs::DCTL_ENABLE;
            self.txq[0].dctl = regs::DCTL_ENABLE;
            let m = self.perm_mac;
            self.regs.insert(regs::RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
            self.regs.insert(regs::RAH0, u32::from_le_bytes([m[4], m[5], 0, 0]) | regs::RAH_AV);
        }
    }

    /// A PF reset (`CTRL.RST`): registers to their reset values, link down until
    /// auto-negotiation is restarted.
    pub fn reset(&mut self) {
        self.resets += 1;
        self.reset_registers();
        self.link_up = false;
        self.autoneg = None;
        self.bmcr = mdic_bmcr_default();
    }

    /// A VF reset (`CTRL.RST` on the VF): its queues off; the PF must be told (`RESET`).
    pub fn vf_reset(&mut self) {
        self.resets += 1;
        for q in &mut self.rxq {
            q.dctl &= !regs::DCTL_ENABLE;
        }
        for q in &mut self.txq {
            q.dctl &= !regs::DCTL_ENABLE;
        }
        self.agent.enabled = false;
        self.agent.cts = false;
    }

    /// The PF resets and comes back (its driver reloaded): the VF sees `RSTD`, and must be
    /// reset again before the PF serves it.
    pub fn pf_reset_done(&mut self) {
        self.agent.v2p |= v2p::RSTD;
        self.agent.enabled = false;
        self.agent.cts = false;
    }

    fn status(&mut self) -> u32 {
        if let Some(n) = self.autoneg {
            if n == 0 {
                self.autoneg = None;
                self.link_up = true;
            } else {
                self.autoneg = Some(n - 1);
            }
        }
        let mut s = regs::status::FD | 2 << regs::status::SPEED_SHIFT;
        if self.link_up {
            s |= regs::status::LU;
        }
        if self.kind == Kind::Pf && self.reg(regs::CTRL) & ctrl::GIO_MASTER_DISABLE == 0 {
            s |= regs::status::GIO_MASTER_ENABLE;
        }
        if self.iov_mode {
            s |= regs::status::IOV_MODE;
        }
        s
    }

    fn mdic(&mut self, v: u32) {
        let reg = (v >> mdic_reg_shift()) & 0x1f;
        let phy = (v >> 21) & 0x1f;
        let data = v as u16;
        let mut out = (v & !0xffff) | regs::mdic::READY;
        if phy != regs::mdic::PHY_ADDR {
            out |= regs::mdic::ERROR;
        } else if v & regs::mdic::OP_READ != 0 {
            out |= if reg == 0 { self.bmcr as u32 } else { 0 };
        } else if v & regs::mdic::OP_WRITE != 0 && reg == 0 {
            self.bmcr = data & !regs::mdic::BMCR_ANRESTART;
            if data & regs::mdic::BMCR_ANRESTART != 0 && data & regs::mdic::BMCR_AUTOEN != 0 {
                self.link_up = false;
                self.autoneg = Some(3);
            }
        }
        self.regs.insert(regs::MDIC, out);
    }

    // ---- queue registers ----

    fn queue_reg(&self, off: u32) -> Option<(bool, usize, u32)> {
        let l = if self.kind == Kind::Pf { QueueLayout::PF } else { QueueLayout::VF };
        let n = self.rxq.len() as u32;
        for (rx, base) in [(true, l.rx), (false, l.tx)] {
            if off >= base && off < base + n * l.stride {
                let i = (off - base) / l.stride;
                let r = (off - base) % l.stride;
                if r < 0x40 {
                    return Some((rx, i as usize, r));
                }
            }
        }
        None
    }

    fn queue_read(&mut self, rx: bool, i: usize, r: u32) -> Option<u32> {
        if rx {
            let qq = &mut self.rxq[i];
            Some(match r {
                q::BAL => qq.bal,
                q::BAH => qq.bah,
                q::LEN => qq.len,
                q::SRRCTL => qq.srrctl,
                q::HEAD => qq.head,
                q::TAIL => qq.tail,
                q::DCTL => qq.dctl,
                q::RQDPC if self.kind == Kind::Pf => std::mem::take(&mut qq.dropped),
                _ => return None,
            })
        } else {
            let qq = &self.txq[i];
            Some(match r {
                q::BAL => qq.bal,
                q::BAH => qq.bah,
                q::LEN => qq.len,
                q::HEAD => qq.head,
                q::TAIL => qq.tail,
                q::DCTL => qq.dctl,
                q::WBAL => qq.wbal,
                q::WBAH => qq.wbah,
                _ => return None,
            })
        }
    }

    fn queue_write(&mut self, mem: &mut SimMemory, rx: bool, i: usize, r: u32, v: u32) -> bool {
        let what = if rx { "rx" } else { "tx" };
        let enabled = if rx { self.rxq[i].enabled() } else { self.txq[i].enabled() };
        if matches!(r, q::BAL | q::BAH | q::LEN | q::SRRCTL | q::WBAL | q::WBAH) && enabled {
            self.fault(format!("{what} queue {i}: register {r:#x} written while the queue is enabled"));
        }
        if r == q::LEN && (v % 128 != 0 || v == 0) {
            self.fault(format!("{what} queue {i}: ring length {v} is not a non-zero multiple of 128"));
        }
        if r == q::BAL && v % 128 != 0 {
            self.fault(format!("{what} queue {i}: ring base {v:#x} is not 128-byte aligned"));
        }
        if rx {
            match r {
                q::BAL => self.rxq[i].bal = v,
                q::BAH => self.rxq[i].bah = v,
                q::LEN => self.rxq[i].len = v,
                q::SRRCTL => self.rxq[i].srrctl = v,
                q::HEAD => self.rxq[i].head = v,
                q::DCTL => self.rxq[i].dctl = v,
                q::TAIL => {
                    let qq = self.rxq[i].clone();
                    let n = qq.size();
                    if v >= n.max(1) {
                        self.fault(format!("rx queue {i}: tail {v} past a {n}-entry ring"));
                        return true;
                    }
                    if !qq.enabled() && v != 0 {
                        self.fault(format!("rx queue {i}: tail {v} written while the queue is disabled"));
                    }
                    // The new descriptors must not run into the device's head.
                    let added = (v + n - qq.tail) % n;
                    if qq.available() + added > n - 1 {
                        self.fault(format!(
                            "rx queue {i}: tail {v} overruns the device (head {}, {} available)",
                            qq.head,
                            qq.available()
                        ));
                    }
                    self.rxq[i].tail = v;
                }
                _ => return false,
            }
        } else {
            match r {
                q::BAL => self.txq[i].bal = v,
                q::BAH => self.txq[i].bah = v,
                q::LEN => self.txq[i].len = v,
                q::HEAD => self.txq[i].head = v,
                q::DCTL => self.txq[i].dctl = v,
                q::WBAL => self.txq[i].wbal = v,
                q::WBAH => self.txq[i].wbah = v,
                q::TAIL => {
                    let qq = &self.txq[i];
                    let n = qq.size();
                    if v >= n.max(1) {
                        self.fault(format!("tx queue {i}: tail {v} past a {n}-entry ring"));
                        return true;
                    }
                    let added = (v + n - qq.tail) % n;
                    if qq.pending() + added > n - 1 {
                        self.fault(format!("tx queue {i}: tail {v} overruns the device (head {})", qq.head));
                    }
                    self.txq[i].tail = v;
                    if self.txq[i].enabled() {
                        self.tx_doorbells[i] += 1;
                    }
                    if !self.hold_tx {
                        self.process_tx(mem, i);
                    }
                }
                _ => return false,
            }
        }
        true
    }

    fn tx_enabled(&self, i: usize) -> bool {
        let global = match self.kind {
            Kind::Pf => self.reg(regs::TCTL) & regs::tctl::EN != 0,
            Kind::Vf => self.agent.enabled,
        };
        global && self.txq[i].enabled()
    }

    /// Processes transmit queue `i` up to its tail.
    pub fn process_tx(&mut self, mem: &mut SimMemory, i: usize) {
        if !self.tx_enabled(i) {
            return;
        }
        while self.txq[i].head != self.txq[i].tail {
            let (base, head, n) = (self.txq[i].base(), self.txq[i].head, self.txq[i].size());
            let at = base + head as u64 * txd::SIZE as u64;
            let addr = mem.r64(at);
            let cmd = mem.r32(at + 8);
            let olinfo = mem.r32(at + 12);
            let len = (cmd & 0xffff) as usize;
            if cmd & txd::DEXT == 0 || cmd & (0xf << 20) != txd::DTYP_DATA {
                self.fault(format!("tx queue {i}: descriptor {head} is not an advanced data descriptor: {cmd:#x}"));
            }
            if cmd & txd::IFCS == 0 {
                self.fault(format!("tx queue {i}: descriptor {head} without IFCS"));
            }
            if len == 0 {
                self.fault(format!("tx queue {i}: descriptor {head} of length 0"));
            }
            let first = self.txq[i].partial.is_empty();
            let mut b = vec![0u8; len];
            mem.read(addr, &mut b);
            self.txq[i].partial.extend_from_slice(&b);
            if first && (olinfo >> txd::PAYLEN_SHIFT) as usize != len && cmd & txd::EOP != 0 {
                self.fault(format!("tx queue {i}: PAYLEN {} for a {len}-byte frame", olinfo >> txd::PAYLEN_SHIFT));
            }
            if cmd & txd::EOP != 0 {
                let f = std::mem::take(&mut self.txq[i].partial);
                self.tx_frames.push((i as u16, f));
            }
            let head = (head + 1) % n;
            self.txq[i].head = head;
            if cmd & txd::RS != 0 {
                let q = &self.txq[i];
                if q.wbal & 1 != 0 {
                    let wb = (q.wbah as u64) << 32 | (q.wbal & !3) as u64;
                    mem.w32(wb, head);
                } else {
                    mem.w32(at + 12, olinfo | txd::DD);
                }
            }
        }
    }

    /// Processes every transmit queue (after `hold_tx`).
    pub fn drain_tx(&mut self, mem: &mut SimMemory) {
        for i in 0..self.txq.len() {
            self.process_tx(mem, i);
        }
    }

    // ---- receive ----

    fn accepts(&self, dst: &[u8]) -> bool {
        let bcast = dst.iter().all(|&b| b == 0xff);
        let mcast = dst[0] & 1 != 0;
        match self.kind {
            Kind::Pf => {
                let r = self.reg(regs::RCTL);
                if bcast {
                    return r & rctl::BAM != 0;
                }
                if mcast {
                    let h = regs::mc_hash(&[dst[0], dst[1], dst[2], dst[3], dst[4], dst[5]]) as u32;
                    return r & rctl::MPE != 0 || self.reg(regs::MTA + 4 * (h >> 5)) & (1 << (h & 31)) != 0;
                }
                if r & rctl::UPE != 0 {
                    return true;
                }
                (0..regs::RECEIVE_ADDRESSES).any(|k| {
                    let (lo, hi) = (self.reg(regs::RAL0 + 8 * k), self.reg(regs::RAH0 + 8 * k));
                    hi & regs::RAH_AV != 0 && {
                        let (l, h) = (lo.to_le_bytes(), hi.to_le_bytes());
                        dst == [l[0], l[1], l[2], l[3], h[0], h[1]]
                    }
                })
            }
            Kind::Vf => {
                let a = &self.agent;
                if bcast {
                    return true;
                }
                if mcast {
                    let h = regs::mc_hash(&[dst[0], dst[1], dst[2], dst[3], dst[4], dst[5]]);
                    return a.promisc & msg::PROMISC_MULTICAST != 0 || a.mc_hashes.contains(&h);
                }
                a.promisc & msg::PROMISC_UNICAST != 0 || a.vf_mac.is_some_and(|m| m == dst)
            }
        }
    }

    fn oversize(&self, len: usize) -> bool {
        let (lpe, limit) = match self.kind {
            Kind::Pf => (self.reg(regs::RCTL) & rctl::LPE != 0, self.reg(regs::RLPML) as usize),
            Kind::Vf => (self.agent.lpe.is_some(), self.agent.lpe.unwrap_or(0) as usize),
        };
        if lpe {
            len + 4 > limit
        } else {
            len > 1518
        }
    }

    /// The receive queue RSS picks for `hash` (queue 0 without RSS).
    pub fn rss_queue(&self, hash: u32) -> usize {
        if self.kind == Kind::Pf && self.reg(regs::MRQC) & 3 == regs::mrqc::ENABLE_RSS {
            let e = hash & 127;
            ((self.reg(regs::RETA + 4 * (e / 4)) >> (8 * (e % 4))) & 0xf) as usize
        } else {
            0
        }
    }

    /// A frame arriving from the wire, with RSS hash `hash`: filtered, then written to the
    /// queue RSS picks. Returns whether a queue took it.
    pub fn inject_hashed(&mut self, mem: &mut SimMemory, hash: u32, frame: &[u8]) -> bool {
        let q = self.rss_queue(hash);
        self.inject_queue(mem, q, hash, frame)
    }

    /// A frame arriving from the wire (its RSS hash: FNV-1a of its bytes).
    pub fn inject(&mut self, mem: &mut SimMemory, frame: &[u8]) -> bool {
        let h = frame.iter().fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193));
        self.inject_hashed(mem, h, frame)
    }

    /// `frame` delivered straight to receive queue `qi` (the VF's second queue, a test).
    pub fn inject_queue(&mut self, mem: &mut SimMemory, qi: usize, hash: u32, frame: &[u8]) -> bool {
        let enabled = match self.kind {
            Kind::Pf => self.reg(regs::RCTL) & rctl::EN != 0 && self.link_up,
            Kind::Vf => self.agent.enabled,
        };
        if !enabled || frame.len() < 14 {
            self.rx_no_buffer += 1;
            return false;
        }
        if !self.accepts(&frame[..6]) {
            self.rx_filtered += 1;
            return false;
        }
        if self.oversize(frame.len()) {
            self.rx_oversize += 1;
            self.roc_unread += 1;
            return false;
        }
        if self.kind == Kind::Pf && self.reg(regs::RCTL) & rctl::SECRC == 0 {
            self.fault("receive without CRC stripping (RCTL.SECRC)".into());
        }
        let qq = self.rxq[qi].clone();
        let bsize = (qq.srrctl & regs::srrctl::BSIZEPKT_MAX) as usize * 1024;
        if !qq.enabled() || qq.size() == 0 || bsize == 0 {
            self.rx_no_buffer += 1;
            return false;
        }
        if qq.srrctl & (0x7 << 25) != regs::srrctl::DESCTYPE_ADV_ONEBUF {
            self.fault(format!("rx queue {qi}: SRRCTL {:#x} is not advanced one-buffer", qq.srrctl));
        }
        let need = frame.len().div_ceil(bsize) as u32;
        if qq.available() < need {
            self.rx_no_buffer += 1;
            self.rxq[qi].dropped += 1;
            return false;
        }
        let rss = self.kind == Kind::Pf
            && self.reg(regs::MRQC) & 3 == regs::mrqc::ENABLE_RSS
            && self.reg(regs::RXCSUM) & regs::RXCSUM_PCSD != 0;
        let (base, n) = (qq.base(), qq.size());
        let mut head = qq.head;
        for (k, chunk) in frame.chunks(bsize).enumerate() {
            let at = base + head as u64 * rxd::SIZE as u64;
            let addr = mem.r64(at);
            let hdr = mem.r64(at + 8);
            if hdr != 0 {
                self.fault(format!("rx queue {qi}: descriptor {head} has header address {hdr:#x}"));
            }
            mem.write(addr, chunk);
            let last = k as u32 + 1 == need;
            let mut wb = [0u8; 16];
            if rss {
                wb[4..8].copy_from_slice(&hash.to_le_bytes());
            }
            wb[12..14].copy_from_slice(&(chunk.len() as u16).to_le_bytes());
            // Everything but DD first, then the status word (QEMU's order).
            mem.write(at, &wb);
            let st = rxd::DD | if last { rxd::EOP } else { 0 };
            mem.w32(at + 8, st);
            head = (head + 1) % n;
        }
        self.rxq[qi].head = head;
        self.last_rx_descs = need;
        true
    }

    /// Makes the device write back a bogus transmit head (a misbehaving device).
    pub fn bogus_tx_head(&mut self, mem: &mut SimMemory, i: usize, head: u32) {
        let q = &self.txq[i];
        let wb = (q.wbah as u64) << 32 | (q.wbal & !3) as u64;
        mem.w32(wb, head);
    }

    // ---- mailbox (VF) ----

    fn mbx_write(&mut self, v: u32) {
        let a = &mut self.agent;
        let held = a.v2p & v2p::VFU != 0;
        if v & v2p::VFU != 0 {
            if a.v2p & v2p::PFU == 0 {
                a.v2p |= v2p::VFU;
            }
        } else {
            a.v2p &= !v2p::VFU;
        }
        if v & v2p::ACK != 0 {
            if !a.unread_reply {
                self.fault("mailbox ACK without a PF message".into());
            }
            self.agent.unread_reply = false;
        }
        if v & v2p::REQ != 0 {
            if !held {
                self.fault("mailbox REQ without holding VFU".into());
            }
            if !self.agent.mute {
                self.pf_service();
            }
        }
    }

    /// The PF reads the VF's message and answers it (Linux's igb policy).
    fn pf_service(&mut self) {
        let a = &mut self.agent;
        a.v2p |= v2p::PFACK;
        let m = a.mem;
        let kind = m[0] & 0xffff;
        let mut reply = [0u32; vf::MBX_WORDS];
        reply[0] = m[0];
        let mut len = 1;
        let ok = if kind == msg::RESET {
            a.cts = true;
            a.enabled = true;
            a.promisc = 0;
            a.mc_hashes.clear();
            len = 3;
            match a.vf_mac {
                Some(mac) => {
                    reply[1] = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
                    reply[2] = u32::from_le_bytes([mac[4], mac[5], 0, 0]);
                    true
                }
                None => false,
            }
        } else if !a.cts {
            false
        } else {
            match kind {
                msg::SET_MAC_ADDR => {
                    let (l, h) = (m[1].to_le_bytes(), m[2].to_le_bytes());
                    if a.admin_mac {
                        false
                    } else {
                        a.vf_mac = Some([l[0], l[1], l[2], l[3], h[0], h[1]]);
                        true
                    }
                }
                msg::SET_PROMISC => {
                    let flags = m[0] & (0xff << msg::INFO_SHIFT);
                    if flags & msg::PROMISC_UNICAST != 0 && a.refuse_unicast_promisc {
                        false
                    } else {
                        a.promisc = flags;
                        true
                    }
                }
                msg::SET_MULTICAST => {
                    let n = ((m[0] >> msg::INFO_SHIFT) & 0xff) as usize;
                    a.mc_hashes = (0..n.min(30)).map(|k| (m[1 + k / 2] >> (16 * (k % 2))) as u16).collect();
                    true
                }
                msg::SET_LPE => {
                    a.lpe = Some(m[1]);
                    true
                }
                _ => false,
            }
        };
        reply[0] |= if ok { msg::ACK } else { msg::NACK };
        if a.cts && kind != msg::RESET {
            reply[0] |= msg::CTS;
        }
        let sent: Vec<u32> = m.iter().copied().take(message_len(&m)).collect();
        a.log.push((sent, reply[0]));
        a.mem[..len].copy_from_slice(&reply[..len]);
        a.v2p |= v2p::PFSTS;
        a.unread_reply = true;
    }
}

/// Words of a VF message, for the log.
fn message_len(m: &[u32; vf::MBX_WORDS]) -> usize {
    match m[0] & 0xffff {
        msg::SET_MAC_ADDR => 3,
        msg::SET_LPE => 2,
        msg::SET_MULTICAST => 1 + (((m[0] >> msg::INFO_SHIFT) & 0xff) as usize).div_ceil(2),
        _ => 1,
    }
}

const fn mdic_reg_shift() -> u32 {
    regs::mdic::REG_SHIFT
}

/// BMCR at reset: auto-negotiation on, 1000 Mb/s full duplex.
const fn mdic_bmcr_default() -> u16 {
    regs::mdic::BMCR_AUTOEN | 0x0140
}

impl RingModel for IgbModel {
    fn inject(&mut self, mem: &mut SimMemory, frame: &[u8]) -> bool {
        IgbModel::inject(self, mem, frame)
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
        self.tx_doorbells[q as usize]
    }
    fn faults(&self) -> &[String] {
        &self.faults
    }
}

impl SimModel for IgbModel {
    fn config(&mut self) -> &mut [u8; 256] {
        &mut self.config
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        match (bar, self.kind) {
            (0, Kind::Pf) => Some(0x20000),
            (0, Kind::Vf) => Some(0x4000),
            _ => None,
        }
    }

    fn mmio_read(&mut self, _mem: &mut SimMemory, bar: u8, off: u32, width: u8) -> u64 {
        if bar != 0 || width != 4 {
            self.fault(format!("read of BAR {bar} offset {off:#x} with width {width}"));
            return !0;
        }
        if let Some((rx, i, r)) = self.queue_reg(off) {
            return match self.queue_read(rx, i, r) {
                Some(v) => v as u64,
                None => {
                    self.fault(format!("read of unknown queue register {off:#x}"));
                    0
                }
            };
        }
        let v = match (self.kind, off) {
            (_, regs::STATUS) => self.status(),
            (Kind::Vf, regs::CTRL) => 0,
            (Kind::Vf, vf::V2PMAILBOX) => {
                let a = &mut self.agent;
                let v = a.v2p | if a.in_reset { v2p::RSTI } else { 0 };
                a.v2p &= !v2p::READ_CLEAR;
                v
            }
            (Kind::Vf, o) if (vf::VMBMEM..vf::VMBMEM + 64).contains(&o) => {
                if self.agent.v2p & v2p::VFU == 0 {
                    self.fault("mailbox memory read without holding VFU".into());
                }
                self.agent.mem[((o - vf::VMBMEM) / 4) as usize]
            }
            (Kind::Vf, vf::VFGPRC | vf::VFGPTC) => 0,
            (Kind::Pf, regs::MPC) => 0,
            (Kind::Pf, regs::ROC) => std::mem::take(&mut self.roc_unread),
            (Kind::Pf, o)
                if matches!(
                    o,
                    regs::CTRL
                        | regs::CTRL_EXT
                        | regs::MDIC
                        | regs::RCTL
                        | regs::TCTL
                        | regs::RXCSUM
                        | regs::RLPML
                        | regs::MRQC
                ) || (regs::MTA..regs::MTA + 512).contains(&o)
                    || (regs::RAL0..regs::RAL0 + 128).contains(&o)
                    || (regs::RETA..regs::RETA + 128).contains(&o)
                    || (regs::RSSRK..regs::RSSRK + 40).contains(&o) =>
            {
                self.reg(o)
            }
            _ => {
                self.fault(format!("read of unknown register {off:#x}"));
                0
            }
        };
        v as u64
    }

    fn mmio_write(&mut self, mem: &mut SimMemory, bar: u8, off: u32, width: u8, v: u64) {
        let v = v as u32;
        if bar != 0 || width != 4 {
            self.fault(format!("write to BAR {bar} offset {off:#x} with width {width}"));
            return;
        }
        if let Some((rx, i, r)) = self.queue_reg(off) {
            if !self.queue_write(mem, rx, i, r, v) {
                self.fault(format!("write to unknown queue register {off:#x}"));
            }
            return;
        }
        match (self.kind, off) {
            (Kind::Pf, regs::CTRL) => {
                if v & ctrl::RST != 0 {
                    self.reset();
                } else {
                    self.regs.insert(regs::CTRL, v);
                }
            }
            (Kind::Vf, regs::CTRL) => {
                if v & ctrl::RST != 0 {
                    self.vf_reset();
                }
            }
            (Kind::Pf, regs::MDIC) => self.mdic(v),
            (_, regs::EIMC) | (Kind::Pf, regs::IMC) => {}
            (Kind::Vf, vf::V2PMAILBOX) => self.mbx_write(v),
            (Kind::Vf, o) if (vf::VMBMEM..vf::VMBMEM + 64).contains(&o) => {
                if self.agent.v2p & v2p::VFU == 0 {
                    self.fault("mailbox memory written without holding VFU".into());
                }
                self.agent.mem[((o - vf::VMBMEM) / 4) as usize] = v;
            }
            (Kind::Pf, o)
                if matches!(o, regs::CTRL_EXT | regs::RCTL | regs::TCTL | regs::RXCSUM | regs::RLPML | regs::MRQC)
                    || (regs::MTA..regs::MTA + 512).contains(&o)
                    || (regs::RAL0..regs::RAL0 + 128).contains(&o)
                    || (regs::RETA..regs::RETA + 128).contains(&o)
                    || (regs::RSSRK..regs::RSSRK + 40).contains(&o) =>
            {
                self.regs.insert(o, v);
                if o == regs::TCTL && v & regs::tctl::EN != 0 {
                    self.drain_tx(mem);
                }
            }
            _ => self.fault(format!("write of {v:#x} to unknown or read-only register {off:#x}")),
        }
    }
}
