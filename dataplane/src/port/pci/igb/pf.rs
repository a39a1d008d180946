//! The PF side (whole-device passthrough): global reset, link, MAC address, the receive and
//! transmit units, RSS, promiscuous mode and the device's drop counters.
//!
//! # Bring-up (82576 datasheet 4.5 and 4.6, the order Linux's `igb` and DPDK's PMD use)
//! 1. Interrupts masked (`IMC`, `EIMC`: we poll), receive and transmit stopped, new DMA
//!    stopped (`CTRL.GIO_MASTER_DISABLE`, then wait for `STATUS.GIO_MASTER_ENABLE` to clear),
//!    then `CTRL.RST`, which resets the MAC, the queues and the filters (it self-clears).
//! 2. Link: `CTRL.SLU` with speed and duplex left to auto-negotiation, which is restarted in
//!    the PHY (`BMCR.AUTOEN | ANRESTART` over `MDIC`); `STATUS.LU` reports the result. After a
//!    reset the link stays down until a driver does this.
//! 3. MAC address: receive address 0, which the device loads from its NVM at reset. The other
//!    receive addresses and the multicast table are cleared.
//! 4. Receive: CRC stripped, broadcast accepted, long frames enabled up to the device's
//!    maximum (the driver drops what does not fit its data room, and counts it), checksum
//!    offload off (`RXCSUM.PCSD`: the descriptor carries the RSS hash instead); with several
//!    queues, RSS over IPv4/IPv6 and TCP/UDP ports with the redirection table spread evenly.
//!    The rings are programmed and enabled by the caller, then `RCTL.EN`.
//! 5. Transmit: pad short frames, the usual collision parameters, `TCTL.EN`.
use super::super::{DeviceAccess, PciError};
use super::regs::{self, ctrl, mdic, mrqc, q, rctl, status, tctl, QueueLayout};
use crate::port::MacAddr;
use std::time::{Duration, Instant};

/// How long a reset, the bus-master stop or a PHY access may take.
const RESET_TIMEOUT: Duration = Duration::from_secs(1);

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub(crate) fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        spins += 1;
        if spins < 20 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_micros(if spins < 200 { 50 } else { 1000 }));
        }
    }
}

/// Stops the device and resets it (step 1). On return no DMA is in progress and none will
/// start until the driver programs the device again.
///
/// # Errors
/// The reset did not complete within a second (a device that is gone reads all ones and
/// lands here).
pub(crate) fn reset<D: DeviceAccess>(dev: &D) -> Result<(), PciError> {
    dev.write32(0, regs::IMC, u32::MAX);
    dev.write32(0, regs::EIMC, u32::MAX);
    dev.write32(0, regs::RCTL, 0);
    dev.write32(0, regs::TCTL, tctl::PSP);
    let c = dev.read32(0, regs::CTRL);
    dev.write32(0, regs::CTRL, c | ctrl::GIO_MASTER_DISABLE);
    if !poll(RESET_TIMEOUT, || dev.read32(0, regs::STATUS) & status::GIO_MASTER_ENABLE == 0) {
        // The reset below stops the DMA engines anyway; the datasheet only asks to try.
        log::debug!("{}: GIO master did not stop within {RESET_TIMEOUT:?}", dev.name());
    }
    // Let posted writes drain before the reset.
    std::thread::sleep(Duration::from_millis(1));
    let c = dev.read32(0, regs::CTRL);
    dev.write32(0, regs::CTRL, c | ctrl::RST);
    // The datasheet asks for a pause before registers are read again.
    std::thread::sleep(Duration::from_millis(2));
    if !poll(RESET_TIMEOUT, || dev.read32(0, regs::CTRL) & ctrl::RST == 0) {
        return Err(PciError::Timeout { device: dev.name().to_string(), what: "the device reset (CTRL.RST)" });
    }
    // Interrupts stay masked after the reset too.
    dev.write32(0, regs::IMC, u32::MAX);
    dev.write32(0, regs::EIMC, u32::MAX);
    Ok(())
}

/// Stops the queues, then resets the device: the teardown.
///
/// # Errors
/// As [`reset`].
pub(crate) fn quiesce<D: DeviceAccess>(dev: &D, queues: u16) -> Result<(), PciError> {
    dev.write32(0, regs::RCTL, 0);
    for n in 0..queues {
        dev.write32(0, QueueLayout::PF.rx(n, q::DCTL), 0);
        dev.write32(0, QueueLayout::PF.tx(n, q::DCTL), 0);
    }
    reset(dev)
}

/// One PHY register access over `MDIC`; returns the register's value (reads) or the value
/// written.
fn mdic<D: DeviceAccess>(dev: &D, reg: u32, op: u32, data: u16) -> Result<u16, PciError> {
    let cmd = data as u32 | reg << mdic::REG_SHIFT | mdic::PHY_ADDR << mdic::PHY_SHIFT | op;
    dev.write32(0, regs::MDIC, cmd);
    let mut v = 0;
    if !poll(RESET_TIMEOUT, || {
        v = dev.read32(0, regs::MDIC);
        v & mdic::READY != 0
    }) {
        return Err(PciError::Timeout { device: dev.name().to_string(), what: "a PHY register access (MDIC)" });
    }
    if v & mdic::ERROR != 0 {
        return Err(PciError::Device {
            device: dev.name().to_string(),
            msg: format!("PHY register {reg} access failed"),
        });
    }
    Ok(v as u16)
}

/// Step 2: link up through auto-negotiation. Does not wait for the result.
///
/// # Errors
/// The PHY does not answer.
pub(crate) fn start_link<D: DeviceAccess>(dev: &D) -> Result<(), PciError> {
    let c = dev.read32(0, regs::CTRL);
    dev.write32(0, regs::CTRL, (c | ctrl::SLU) & !(ctrl::FRCSPD | ctrl::FRCDPX));
    let bmcr = mdic(dev, mdic::PHY_BMCR, mdic::OP_READ, 0)?;
    mdic(dev, mdic::PHY_BMCR, mdic::OP_WRITE, bmcr | mdic::BMCR_AUTOEN | mdic::BMCR_ANRESTART)?;
    Ok(())
}

/// Link state from `STATUS`: (up, speed in Mb/s, full duplex).
pub(crate) fn link<D: DeviceAccess>(dev: &D) -> (bool, u32, bool) {
    let s = dev.read32(0, regs::STATUS);
    if s == u32::MAX {
        return (false, 0, false);
    }
    let speed = match (s >> status::SPEED_SHIFT) & 3 {
        0 => 10,
        1 => 100,
        _ => 1000,
    };
    (s & status::LU != 0, speed, s & status::FD != 0)
}

/// Step 3: the MAC address from receive address 0 (`None` when it is not valid), with every
/// other address filter and the multicast table cleared.
pub(crate) fn mac_and_filters<D: DeviceAccess>(dev: &D) -> Option<MacAddr> {
    for i in 1..regs::RECEIVE_ADDRESSES {
        dev.write32(0, regs::RAH0 + 8 * i, 0);
        dev.write32(0, regs::RAL0 + 8 * i, 0);
    }
    for i in 0..128 {
        dev.write32(0, regs::MTA + 4 * i, 0);
    }
    let (lo, hi) = (dev.read32(0, regs::RAL0), dev.read32(0, regs::RAH0));
    let l = lo.to_le_bytes();
    let h = hi.to_le_bytes();
    let mac = MacAddr([l[0], l[1], l[2], l[3], h[0], h[1]]);
    (hi & regs::RAH_AV != 0 && mac.0 != [0; 6] && mac.0[0] & 1 == 0).then_some(mac)
}

/// Programs receive address 0 with `mac` (for a device whose NVM gave none).
pub(crate) fn set_mac<D: DeviceAccess>(dev: &D, mac: MacAddr) {
    let m = mac.0;
    dev.write32(0, regs::RAL0, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    dev.write32(0, regs::RAH0, u32::from_le_bytes([m[4], m[5], 0, 0]) | regs::RAH_AV);
}

/// `RCTL` without the enable bit: CRC stripped, broadcast accepted, long frames on.
pub(crate) fn rctl_base(promisc: bool) -> u32 {
    let p = if promisc { rctl::UPE | rctl::MPE } else { 0 };
    rctl::SECRC | rctl::BAM | rctl::LPE | p
}

/// Step 4 (global part): receive checksum, frame limit, RSS over `queues` queues. The
/// receiver stays off.
pub(crate) fn setup_rx<D: DeviceAccess>(dev: &D, queues: u16, promisc: bool) {
    dev.write32(0, regs::RCTL, rctl_base(promisc));
    dev.write32(0, regs::RXCSUM, regs::RXCSUM_PCSD);
    dev.write32(0, regs::RLPML, regs::MAX_FRAME);
    if queues > 1 {
        for i in 0..32u32 {
            let b: [u8; 4] = std::array::from_fn(|k| ((4 * i as usize + k) % queues as usize) as u8);
            dev.write32(0, regs::RETA + 4 * i, u32::from_le_bytes(b));
        }
        for (i, c) in regs::RSS_KEY.chunks_exact(4).enumerate() {
            dev.write32(0, regs::RSSRK + 4 * i as u32, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        dev.write32(
            0,
            regs::MRQC,
            mrqc::ENABLE_RSS
                | mrqc::FIELD_IPV4
                | mrqc::FIELD_IPV4_TCP
                | mrqc::FIELD_IPV4_UDP
                | mrqc::FIELD_IPV6
                | mrqc::FIELD_IPV6_TCP
                | mrqc::FIELD_IPV6_UDP,
        );
    } else {
        dev.write32(0, regs::MRQC, 0);
    }
}

/// Turns the receiver on (after the rings are enabled).
pub(crate) fn enable_rx<D: DeviceAccess>(dev: &D, promisc: bool) {
    dev.write32(0, regs::RCTL, rctl_base(promisc) | rctl::EN);
}

/// Step 5: the transmitter on.
pub(crate) fn enable_tx<D: DeviceAccess>(dev: &D) {
    dev.write32(0, regs::TCTL, tctl::EN | tctl::PSP | tctl::CT_DEFAULT | tctl::COLD_DEFAULT | tctl::RTLC);
}

/// Promiscuous mode on or off (the receiver's other bits unchanged).
pub(crate) fn set_promiscuous<D: DeviceAccess>(dev: &D, on: bool) {
    let r = dev.read32(0, regs::RCTL);
    let p = rctl::UPE | rctl::MPE;
    dev.write32(0, regs::RCTL, if on { r | p } else { r & !p });
}

/// Frames the device itself dropped since the last call: (missed for want of descriptors or
/// buffer space, oversize). The counters clear on read.
pub(crate) fn take_drops<D: DeviceAccess>(dev: &D, queues: u16) -> (u64, u64) {
    let rd = |r: u32| match dev.read32(0, r) {
        u32::MAX => 0,
        v => v as u64,
    };
    let missed = rd(regs::MPC) + (0..queues).map(|n| rd(QueueLayout::PF.rx(n, q::RQDPC))).sum::<u64>();
    (missed, rd(regs::ROC))
}
