//! Intel 82576 and I350 (the `igb` family) as poll-mode [`Port`]s: the PF for whole-device
//! passthrough (`igb`) and the SR-IOV virtual function (`igbvf`).
//!
//! Both kinds share the register layout of a queue, the advanced descriptor formats and
//! everything on the data path (`ring.rs`); they differ in who owns the device:
//! - **PF** (`8086:10c9` 82576, `8086:1521` I350), the whole device on vfio-pci: global
//!   reset, link through the PHY, MAC address from receive address 0, the receive and
//!   transmit units, up to [`MAX_PF_QUEUES`] queue pairs with RSS spreading frames over the
//!   receive queues, promiscuous mode in `RCTL` (`pf.rs`).
//! - **VF** (`8086:10ca`, `8086:1520`), one SR-IOV function on vfio-pci while its PF stays on
//!   the kernel's `igb`: the VF resets its own queues and asks the PF, through the PF–VF
//!   mailbox, for its MAC address, multicast filters and promiscuous modes, which the PF
//!   grants or refuses (`vf.rs`); up to [`MAX_VF_QUEUES`] queue pairs (the PF steers the
//!   VF's frames to its first receive queue).
//!
//! # Data path
//! See `ring.rs`: advanced descriptors, one per frame on transmit; receive buffers of the
//! data room rounded down to a KiB (frames longer than one buffer are reassembled by copying
//! their tail; frames longer than the data room are dropped and counted); head write-back for
//! transmit completion, reclaimed in bursts; a full transmit ring refuses and counts, never
//! waits. Per-queue counters (packets, bytes, errors, `rx_nombuf`, refused transmits in
//! `missed`) are in [`PortCounters`]; a PF adds the device's own drop counters.
//!
//! # Teardown
//! See [the module above](super): queues park their rings; when the port and every queue
//! are gone, the device is quiesced (PF: queues off and a global reset; VF: queues off and a
//! VF reset, which the PF sees), bus mastering goes off, and only then do the mbufs return.
//!
//! [`Port`]: crate::port::Port

pub mod regs;

mod pf;
mod ring;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
mod vf;

use super::hold::{DeviceHold, Quiesce};
use super::{fallback_mac, DeviceAccess, PciError, PciPortConfig};
use crate::mbuf::{Mbuf, Mempool, MBUF_HEADER};
use crate::port::{BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims};
use regs::{q, QueueLayout};
use ring::{IgbRx, IgbTx, RxEnv, RxRing, TxEnv, TxRing};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vfio::pci::PciId;

/// [`PortInfo::driver`] of a PF.
pub const DRIVER_PF: &str = "pci:igb";
/// [`PortInfo::driver`] of a VF.
pub const DRIVER_VF: &str = "pci:igbvf";
/// Most queue pairs of a PF port (RSS spreads over at most 8 queues on both devices).
pub const MAX_PF_QUEUES: u16 = 8;
/// Most queue pairs of a VF port.
pub const MAX_VF_QUEUES: u16 = 2;
/// Smallest mbuf data room: a full frame with a VLAN tag (the CRC is stripped).
pub const MIN_RX_ROOM: usize = 1518;
/// How long opening a PF waits for auto-negotiation to bring the link up.
const LINK_WAIT: Duration = Duration::from_secs(5);
/// How long a queue gets to report itself enabled or disabled.
const QUEUE_TIMEOUT: Duration = Duration::from_millis(100);

/// Which function of the device a port drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The physical function, the whole device.
    Pf,
    /// An SR-IOV virtual function (its PF on the kernel driver).
    Vf,
}

impl Kind {
    /// The driver name ([`DRIVER_PF`] or [`DRIVER_VF`]).
    pub fn driver(self) -> &'static str {
        match self {
            Kind::Pf => DRIVER_PF,
            Kind::Vf => DRIVER_VF,
        }
    }

    /// Most queue pairs.
    pub fn max_queues(self) -> u16 {
        match self {
            Kind::Pf => MAX_PF_QUEUES,
            Kind::Vf => MAX_VF_QUEUES,
        }
    }

    fn layout(self) -> QueueLayout {
        match self {
            Kind::Pf => QueueLayout::PF,
            Kind::Vf => QueueLayout::VF,
        }
    }

    /// The smallest BAR 0 holding every register the driver touches.
    fn bar_min(self) -> u64 {
        match self {
            Kind::Pf => QueueLayout::PF.tx(MAX_PF_QUEUES, 0) as u64,
            Kind::Vf => QueueLayout::VF.tx(MAX_VF_QUEUES, 0) as u64,
        }
    }
}

/// The kind of igb function the config-space header `hdr` describes, if any.
pub fn kind_of(hdr: &[u8]) -> Option<Kind> {
    match PciId::from_config(hdr)? {
        PciId { vendor: regs::VENDOR, device: regs::DEV_82576 | regs::DEV_I350 } => Some(Kind::Pf),
        PciId { vendor: regs::VENDOR, device: regs::DEV_82576_VF | regs::DEV_I350_VF } => Some(Kind::Vf),
        _ => None,
    }
}

/// igb's part of the device state.
#[derive(Debug)]
pub(crate) struct Igb {
    kind: Kind,
    queues: u16,
    mbx: vf::Mailbox,
}

impl<D: DeviceAccess> Quiesce<D> for Igb {
    /// PF: queues off and a global reset. VF: queues off and a VF reset.
    fn quiesce(&self, dev: &D) -> Result<(), PciError> {
        match self.kind {
            Kind::Pf => pf::quiesce(dev, self.queues),
            Kind::Vf => {
                let l = QueueLayout::VF;
                for n in 0..self.queues {
                    dev.write32(0, l.rx(n, q::DCTL), 0);
                    dev.write32(0, l.tx(n, q::DCTL), 0);
                }
                let off = pf::poll(QUEUE_TIMEOUT, || {
                    (0..self.queues).all(|n| {
                        dev.read32(0, l.rx(n, q::DCTL)) & regs::DCTL_ENABLE == 0
                            && dev.read32(0, l.tx(n, q::DCTL)) & regs::DCTL_ENABLE == 0
                    })
                });
                // Head write-back off: the next driver (DPDK's igbvf PMD, Linux's igbvf) never
                // writes TDWBAL and reads completions from the descriptors' DD bits, and a VF
                // reset does not clear the register on QEMU's igb. Left on, the device would
                // write heads to our freed ring and never set DD: seen as DPDK's transmit
                // stalling after one ring (compare-igbvf, DPDK after our driver).
                for n in 0..self.queues {
                    dev.write32(0, l.tx(n, q::WBAL), 0);
                    dev.write32(0, l.tx(n, q::WBAH), 0);
                }
                dev.write32(0, regs::CTRL, regs::ctrl::RST);
                std::thread::sleep(Duration::from_millis(1));
                if off {
                    Ok(())
                } else {
                    Err(PciError::Timeout { device: dev.name().to_string(), what: "the VF's queues to stop" })
                }
            }
        }
    }
}

/// The device, shared by the port and its queues (see [`DeviceHold`]).
pub(crate) type Shared<D> = DeviceHold<D, Igb>;

/// How a running port's device shows it was reset under the driver, if it was: a PF's
/// receiver is off (we never turn it off while the port lives), a VF's first receive queue
/// is disabled (a VF reset or a PF reset clears it), or the device reads all ones (gone, or
/// its config space reset).
fn reset_under_us<D: DeviceAccess>(dev: &D, kind: Kind) -> Option<&'static str> {
    if dev.read32(0, regs::STATUS) == u32::MAX {
        return Some("the device reads all ones");
    }
    match kind {
        Kind::Pf if dev.read32(0, regs::RCTL) & regs::rctl::EN == 0 => Some("the receiver is off (RCTL.EN)"),
        Kind::Vf if dev.read32(0, QueueLayout::VF.rx(0, q::DCTL)) & regs::DCTL_ENABLE == 0 => {
            Some("receive queue 0 is disabled (RXDCTL.ENABLE)")
        }
        _ => None,
    }
}

/// Enables queue register block `reg` (`RXDCTL` or `TXDCTL`) and waits until it reads back
/// enabled.
fn enable_queue<D: DeviceAccess>(dev: &D, reg: u32, thresh: u32) -> Result<(), PciError> {
    dev.write32(0, reg, regs::DCTL_ENABLE | thresh);
    if pf::poll(QUEUE_TIMEOUT, || dev.read32(0, reg) & regs::DCTL_ENABLE != 0) {
        Ok(())
    } else {
        Err(PciError::Timeout { device: dev.name().to_string(), what: "a queue to enable" })
    }
}

/// Disables queue register block `reg` and waits until it reads back disabled.
fn disable_queue<D: DeviceAccess>(dev: &D, reg: u32) -> Result<(), PciError> {
    dev.write32(0, reg, 0);
    if pf::poll(QUEUE_TIMEOUT, || dev.read32(0, reg) & regs::DCTL_ENABLE == 0) {
        Ok(())
    } else {
        Err(PciError::Timeout { device: dev.name().to_string(), what: "a queue to disable" })
    }
}

/// An igb PF or VF port. See the module docs.
pub struct IgbPort<D: DeviceAccess = super::VfioDevice> {
    rx: Vec<Option<IgbRx<D>>>,
    tx: Vec<Option<IgbTx<D>>>,
    shared: Arc<Shared<D>>,
    claims: QueueClaims,
    counters: Arc<PortCounters>,
    id: u16,
    queues: u16,
    mac: MacAddr,
    /// VF: the PF assigned the MAC address (rather than accepting ours).
    mac_from_pf: bool,
    promisc: bool,
    pool: Mempool,
    /// PF: the device's drop counters accumulated so far (missed, oversize).
    dev_drops: Mutex<(u64, u64)>,
}

impl<D: DeviceAccess> std::fmt::Debug for IgbPort<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgbPort")
            .field("device", &self.shared.name)
            .field("kind", &self.shared.state.kind)
            .field("id", &self.id)
            .field("queues", &self.queues)
            .field("mac", &self.mac)
            .field("promiscuous", &self.promisc)
            .finish()
    }
}

impl<D: DeviceAccess> IgbPort<D> {
    /// Brings up the igb PF or VF `dev` as port `id` with `cfg.queues` queue pairs, its
    /// receive buffers from `pool` (whose region is mapped for the device's DMA).
    ///
    /// # Errors
    /// [`PortError::Config`] for a configuration that cannot work (no queue or more than the
    /// kind has, ring sizes not powers of two from 8 to 4096, more ring entries than mbufs, a
    /// data room below a full frame); [`PortError::Pci`] when the device is not an igb
    /// function, its BAR is too small, a PF has VFs enabled, the reset or a queue does not
    /// complete, a VF's PF does not answer the mailbox or assigns and accepts no MAC address,
    /// or DMA memory cannot be mapped; [`PortError::Mempool`] when the pool cannot fill the
    /// receive rings. The device is reset before any error returns.
    pub fn open_device(id: u16, mut dev: D, cfg: &PciPortConfig, pool: &Mempool) -> Result<Self, PortError> {
        let name = dev.name().to_string();
        let perr = |e: PciError| e.into_port(&name);
        let conf = |msg: String| PortError::Config { port: name.clone(), msg };
        let dev_err = |msg: String| PciError::Device { device: name.clone(), msg }.into_port(&name);
        let hdr = dev.config_header().map_err(perr)?;
        let Some(kind) = kind_of(&hdr) else {
            let pid = PciId::from_config(&hdr).unwrap_or(PciId { vendor: !0, device: !0 });
            return Err(perr(PciError::Unsupported { device: name.clone(), id: pid }));
        };
        if cfg.queues == 0 || cfg.queues > kind.max_queues() {
            return Err(conf(format!(
                "{} queue pairs asked: an igb {} port has 1 to {}",
                cfg.queues,
                if kind == Kind::Pf { "PF" } else { "VF" },
                kind.max_queues()
            )));
        }
        for (what, n) in [("rx ring", cfg.rx_ring), ("tx ring", cfg.tx_ring)] {
            if !n.is_power_of_two() || !(regs::MIN_RING..=regs::MAX_RING).contains(&n) {
                return Err(conf(format!(
                    "{what} size {n} must be a power of two from {} to {}",
                    regs::MIN_RING,
                    regs::MAX_RING
                )));
            }
        }
        let lent = cfg.queues as usize * cfg.rx_ring as usize;
        if lent >= pool.size() {
            return Err(conf(format!(
                "the receive rings lend {lent} mbufs ({} queues x {} entries) but the pool has only {}: use a bigger \
                 pool or smaller rings",
                cfg.queues,
                cfg.rx_ring,
                pool.size()
            )));
        }
        let room = pool.config().chunk_size as usize - MBUF_HEADER - pool.config().headroom as usize;
        if room < MIN_RX_ROOM {
            return Err(conf(format!(
                "the mempool's data room ({room} bytes) is below the {MIN_RX_ROOM} bytes of a full frame: use \
                 2048-byte chunks or a smaller headroom"
            )));
        }
        // The device's buffer size never exceeds the data room: see ring.rs.
        let buf_len = (room / 1024).min(regs::srrctl::BSIZEPKT_MAX as usize) * 1024;
        let bar_len = dev.map_bar(0).map_err(perr)?;
        if bar_len < kind.bar_min() {
            return Err(dev_err(format!("BAR 0 is {bar_len:#x} bytes, below the {:#x} an igb needs", kind.bar_min())));
        }
        if kind == Kind::Pf && dev.read32(0, regs::STATUS) & regs::status::IOV_MODE != 0 {
            return Err(dev_err(
                "the PF has SR-IOV VFs enabled: whole-PF passthrough needs sriov_numvfs = 0 (or use the VFs, with \
                 the PF on the kernel igb driver)"
                    .into(),
            ));
        }
        let mut sh: Shared<D> = DeviceHold::new(dev, Igb { kind, queues: cfg.queues, mbx: vf::Mailbox::default() });
        // From here on, an early return drops `sh`, which resets the device.
        let (mac, mac_from_pf) = match kind {
            Kind::Pf => {
                pf::reset(&sh.dev).map_err(perr)?;
                let ext = sh.dev.read32(0, regs::CTRL_EXT);
                sh.dev.write32(0, regs::CTRL_EXT, ext | regs::CTRL_EXT_DRV_LOAD);
                pf::start_link(&sh.dev).map_err(perr)?;
                let mac = match pf::mac_and_filters(&sh.dev) {
                    Some(m) => m,
                    None => {
                        let m = fallback_mac(&name);
                        log::warn!("{name}: no valid MAC address in receive address 0; using {m}");
                        pf::set_mac(&sh.dev, m);
                        m
                    }
                };
                pf::setup_rx(&sh.dev, cfg.queues, false);
                (mac, true)
            }
            Kind::Vf => {
                let (mac, from_pf) = vf::reset_and_mac(&sh.dev, &sh.state.mbx).map_err(perr)?;
                // Let the PF deliver frames up to the largest it handles: what does not fit
                // the data room is then dropped and counted here, not silently by the PF.
                match sh.state.mbx.command(&sh.dev, &[regs::msg::SET_LPE, regs::msg::VF_MAX_FRAME]) {
                    Ok(true) => {}
                    Ok(false) => log::debug!("{name}: the PF refused the VF's frame size request"),
                    Err(e) => return Err(perr(e)),
                }
                (mac, from_pf)
            }
        };
        sh.dev.set_bus_master(true).map_err(perr)?;
        let pool_dma = sh.map_pool(pool).map_err(perr)?;
        let layout = kind.layout();
        let srrctl = (buf_len / 1024) as u32 | regs::srrctl::DESCTYPE_ADV_ONEBUF | regs::srrctl::DROP_EN;
        let mut rings = Vec::with_capacity(cfg.queues as usize);
        for n in 0..cfg.queues {
            let d = &sh.dev;
            let rx = RxRing::new(d.alloc_dma(cfg.rx_ring as usize * regs::rxd::SIZE).map_err(perr)?, cfg.rx_ring);
            disable_queue(d, layout.rx(n, q::DCTL)).map_err(perr)?;
            d.write32(0, layout.rx(n, q::BAL), rx.iova() as u32);
            d.write32(0, layout.rx(n, q::BAH), (rx.iova() >> 32) as u32);
            d.write32(0, layout.rx(n, q::LEN), rx.bytes());
            d.write32(0, layout.rx(n, q::SRRCTL), srrctl);
            d.write32(0, layout.rx(n, q::HEAD), 0);
            d.write32(0, layout.rx(n, q::TAIL), 0);
            enable_queue(d, layout.rx(n, q::DCTL), regs::RXDCTL_THRESH).map_err(perr)?;
            let tx = TxRing::new(d.alloc_dma(TxRing::area_len(cfg.tx_ring)).map_err(perr)?, cfg.tx_ring);
            disable_queue(d, layout.tx(n, q::DCTL)).map_err(perr)?;
            d.write32(0, layout.tx(n, q::BAL), tx.iova() as u32);
            d.write32(0, layout.tx(n, q::BAH), (tx.iova() >> 32) as u32);
            d.write32(0, layout.tx(n, q::LEN), tx.bytes());
            d.write32(0, layout.tx(n, q::HEAD), 0);
            d.write32(0, layout.tx(n, q::TAIL), 0);
            // Bit 0: head write-back on.
            d.write32(0, layout.tx(n, q::WBAL), tx.wb_iova() as u32 | 1);
            d.write32(0, layout.tx(n, q::WBAH), (tx.wb_iova() >> 32) as u32);
            enable_queue(d, layout.tx(n, q::DCTL), regs::TXDCTL_THRESH).map_err(perr)?;
            rings.push((rx, tx));
        }
        if kind == Kind::Pf {
            pf::enable_rx(&sh.dev, false);
            pf::enable_tx(&sh.dev);
        }
        let shared = Arc::new(sh);
        let counters = PortCounters::new(cfg.queues as usize, cfg.queues as usize);
        let delta = pool_dma.iova_delta();
        let (mut rx, mut tx) = (Vec::new(), Vec::new());
        for (n, (rring, tring)) in (0u16..).zip(rings) {
            rx.push(Some(IgbRx {
                ring: Some(rring),
                env: RxEnv {
                    shared: shared.clone(),
                    pool: pool.clone(),
                    counters: counters.clone(),
                    delta,
                    buf_len,
                    tail_reg: layout.rx(n, q::TAIL),
                    rss: kind == Kind::Pf && cfg.queues > 1,
                    q: n,
                    port: id,
                },
            }));
            tx.push(Some(IgbTx {
                ring: Some(tring),
                env: TxEnv {
                    shared: shared.clone(),
                    pool: pool.clone(),
                    counters: counters.clone(),
                    delta,
                    free_thresh: (cfg.tx_ring as usize / 2).max(1),
                    tail_reg: layout.tx(n, q::TAIL),
                    dctl_reg: layout.tx(n, q::DCTL),
                    len_reg: layout.tx(n, q::LEN),
                    q: n,
                },
            }));
        }
        let mut port = IgbPort {
            rx,
            tx,
            shared,
            claims: QueueClaims::new(cfg.queues, cfg.queues),
            counters,
            id,
            queues: cfg.queues,
            mac,
            mac_from_pf,
            promisc: false,
            pool: pool.clone(),
            dev_drops: Mutex::new((0, 0)),
        };
        // From here on, an early return drops the port: queues park, the device resets.
        for r in port.rx.iter_mut().flatten() {
            if !r.fill() {
                return Err(PortError::Mempool { port: name.clone(), source: crate::mbuf::MempoolError::Exhausted });
            }
        }
        if kind == Kind::Pf && !pf::poll(LINK_WAIT, || pf::link(&port.shared.dev).0) {
            log::warn!("{name}: link still down {LINK_WAIT:?} after auto-negotiation started");
        }
        log::info!(
            "{name}: {} {mac}{}, {} queue pair(s), rings {}/{}, {buf_len}-byte receive buffers",
            kind.driver(),
            if kind == Kind::Vf && !mac_from_pf { " (ours: the PF assigned none)" } else { "" },
            cfg.queues,
            cfg.rx_ring,
            cfg.tx_ring
        );
        Ok(port)
    }

    /// PF or VF.
    pub fn kind(&self) -> Kind {
        self.shared.state.kind
    }

    /// Queue pairs in use.
    pub fn queues(&self) -> u16 {
        self.queues
    }

    /// VF: whether the PF assigned the MAC address (`false`: the PF had none and accepted
    /// one of ours). Always true for a PF (its address comes from its NVM).
    pub fn mac_from_pf(&self) -> bool {
        self.mac_from_pf
    }

    /// Per-queue counters (receive queue `q`: packets, bytes, errors — oversize or bad
    /// frames —, `nombuf`; transmit queue `q`: packets, bytes, errors, `missed` — packets
    /// refused on a full ring).
    pub fn counters(&self) -> &Arc<PortCounters> {
        &self.counters
    }

    /// The pool the receive rings are filled from.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    fn pci_err(&self, e: PciError) -> PortError {
        e.into_port(&self.shared.name)
    }

    fn refused(&self, what: &str) -> PortError {
        let name = self.shared.name.clone();
        PciError::Device { device: name.clone(), msg: format!("the PF refused {what}") }.into_port(&name)
    }

    /// Changes the port's MAC address (PF: receive address 0; VF: asks the PF, which refuses
    /// when its administrator set the VF's address).
    ///
    /// # Errors
    /// A multicast or zero address; a VF whose PF refuses or does not answer.
    pub fn set_mac(&mut self, mac: MacAddr) -> Result<(), PortError> {
        if mac.0 == [0; 6] || mac.0[0] & 1 != 0 {
            return Err(PortError::Config {
                port: self.shared.name.clone(),
                msg: format!("{mac} is not a unicast address"),
            });
        }
        let sh = &self.shared;
        match sh.state.kind {
            Kind::Pf => pf::set_mac(&sh.dev, mac),
            Kind::Vf => {
                if !vf::set_mac(&sh.dev, &sh.state.mbx, mac).map_err(|e| self.pci_err(e))? {
                    return Err(self.refused(&format!("MAC address {mac}")));
                }
            }
        }
        self.mac = mac;
        Ok(())
    }

    /// Receives the multicast groups `macs` (besides broadcast and our own address): PF: in
    /// the multicast table; VF: asks the PF (at most 30 groups).
    ///
    /// # Errors
    /// More than 30 groups on a VF; a VF whose PF refuses or does not answer.
    pub fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<(), PortError> {
        let sh = &self.shared;
        match sh.state.kind {
            Kind::Pf => {
                let mut mta = [0u32; 128];
                for m in macs {
                    let h = regs::mc_hash(&m.0) as usize;
                    mta[h >> 5] |= 1 << (h & 31);
                }
                for (i, w) in mta.iter().enumerate() {
                    sh.dev.write32(0, regs::MTA + 4 * i as u32, *w);
                }
                Ok(())
            }
            Kind::Vf => {
                if macs.len() > regs::msg::MAX_MC_HASHES {
                    return Err(PortError::Config {
                        port: sh.name.clone(),
                        msg: format!("{} multicast groups: a VF can ask its PF for at most 30", macs.len()),
                    });
                }
                let m = vf::multicast_message(macs);
                if !sh.state.mbx.command(&sh.dev, &m).map_err(|e| self.pci_err(e))? {
                    return Err(self.refused("the multicast list"));
                }
                Ok(())
            }
        }
    }
}

impl<D: DeviceAccess> Port for IgbPort<D> {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.shared.name.clone(),
            driver: self.kind().driver().into(),
            rx_queues: self.queues,
            tx_queues: self.queues,
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    /// `STATUS` link, speed and duplex; down as well when the PF is in reset or was reset
    /// since the VF's reset, and for good once the device was reset under us (PF: receiver
    /// off; VF: queue 0 disabled; either: the device reads all ones), which marks the port
    /// dead (see `hold.rs`: its transmit queues then refuse and count everything).
    fn link(&self) -> LinkStatus {
        let sh = &self.shared;
        if sh.is_dead() {
            return LinkStatus::default();
        }
        if let Some(why) = reset_under_us(&sh.dev, sh.state.kind) {
            sh.mark_dead(why);
            return LinkStatus::default();
        }
        let (up, speed_mbps, full_duplex) = pf::link(&sh.dev);
        let ours = match sh.state.kind {
            Kind::Pf => true,
            Kind::Vf => sh.state.mbx.link_ok(&sh.dev),
        };
        if up && ours {
            LinkStatus { up, speed_mbps, full_duplex }
        } else {
            LinkStatus::default()
        }
    }

    /// The queues' counters; a PF adds the device's drops (missed for want of descriptors
    /// to `imissed`, oversize frames it refused to `ierrors`).
    fn stats(&self) -> PortStats {
        let mut s = self.counters.snapshot();
        if self.kind() == Kind::Pf {
            let mut acc = self.dev_drops.lock().unwrap_or_else(|e| e.into_inner());
            let (missed, oversize) = pf::take_drops(&self.shared.dev, self.queues);
            acc.0 += missed;
            acc.1 += oversize;
            s.imissed += acc.0;
            s.ierrors += acc.1;
        }
        s
    }

    /// PF: `RCTL.UPE | MPE`. VF: asks the PF for unicast and multicast promiscuous mode; a
    /// PF that refuses unicast (Linux's `igb` does) is asked for multicast promiscuous mode
    /// alone, which is then what the port has (a warning says so): the VF still receives
    /// only frames to its own address, broadcast and multicast.
    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        let sh = &self.shared;
        match sh.state.kind {
            Kind::Pf => pf::set_promiscuous(&sh.dev, on),
            Kind::Vf => {
                use regs::msg::{PROMISC_MULTICAST, PROMISC_UNICAST, SET_PROMISC};
                let ask = |flags: u32| sh.state.mbx.command(&sh.dev, &[SET_PROMISC | flags]);
                let flags = if on { PROMISC_UNICAST | PROMISC_MULTICAST } else { 0 };
                if !ask(flags).map_err(|e| self.pci_err(e))? {
                    if !on || !ask(PROMISC_MULTICAST).map_err(|e| self.pci_err(e))? {
                        return Err(self.refused(if on { "promiscuous mode" } else { "leaving promiscuous mode" }));
                    }
                    log::warn!(
                        "{}: the PF refuses unicast promiscuous mode for its VFs; multicast promiscuous mode is on \
                         (unicast frames still reach the VF only when addressed to {})",
                        sh.name,
                        self.mac
                    );
                }
            }
        }
        self.promisc = on;
        Ok(())
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        Ok(Box::new(self.claims.take(&self.shared.name, true, q, &mut self.rx)?))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        Ok(Box::new(self.claims.take(&self.shared.name, false, q, &mut self.tx)?))
    }
}
