//! The VF side: reset, and the PF–VF mailbox through which a VF asks its PF (the kernel's
//! `igb`, which keeps the PF) for its MAC address and receive modes.
//!
//! # The mailbox (82576 datasheet 7.8.2.9, as Linux's `igbvf` and DPDK's VF PMD use it)
//! Sixteen 32-bit words of shared memory (`VMBMEM`) and a control register (`V2PMAILBOX`).
//! - **Send**: take the memory (write `VFU`, read it back set: the PF did not hold it), write
//!   the message, then write `REQ` (which also drops `VFU`): the PF is interrupted. It reads
//!   the message and answers with `PFACK`.
//! - **Receive**: the PF writes its reply and sets `PFSTS`; we take the memory, read the
//!   reply, and write `ACK` (dropping `VFU`).
//! - `PFSTS`, `PFACK` and `RSTD` clear when the register is read, so every read is folded
//!   into a cached copy (under one lock): a bit seen by [`Mailbox::link_ok`] is not lost to a
//!   transaction, and the other way round. `RSTI` says the PF itself is in reset; nothing
//!   can be asked of it then.
//!
//! A reply's first word is the request's type with `ACK` or `NACK` (and `CTS` once the PF
//! accepted our reset). Only one transaction runs at a time (the lock), each bounded by
//! [`MBX_TIMEOUT`].
//!
//! # Reset
//! `CTRL.RST` on a VF resets its queues and interrupts only, and tells the PF (a VF reset
//! event). Then the `RESET` message: the PF clears what it kept for the VF, enables the VF's
//! receive and transmit, and replies with the MAC address it assigned (`ip link set ... vf N
//! mac ...`), or `NACK` when it assigned none, in which case we pick a locally administered
//! one and ask for it with `SET_MAC_ADDR`.
use super::super::{DeviceAccess, PciError};
use super::regs::{self, ctrl, msg, v2p, vf};
use crate::port::MacAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the PF gets to acknowledge or answer a message (its driver runs in an interrupt
/// handler and a work item: quick on hardware, slower in an emulated guest).
pub(crate) const MBX_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the PF gets to leave its own reset (`RSTI`).
const PF_RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// The mailbox, with the read-to-clear bits seen so far.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    state: Mutex<MbxState>,
}

#[derive(Debug, Default)]
struct MbxState {
    /// Read-to-clear bits seen and not yet consumed.
    seen: u32,
    /// A transaction timed out: the PF may still be in the middle of it.
    broken: bool,
}

/// Sleeps a little, more as the wait grows (the first polls are quick).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 20 {
        std::hint::spin_loop();
    } else {
        std::thread::sleep(Duration::from_micros(if *spins < 200 { 50 } else { 500 }));
    }
}

impl MbxState {
    /// Reads `V2PMAILBOX`, keeping its read-to-clear bits.
    fn read<D: DeviceAccess>(&mut self, dev: &D) -> u32 {
        let v = dev.read32(0, vf::V2PMAILBOX);
        if v == u32::MAX {
            // A device that is gone reads all ones: no bit of it means anything.
            return 0;
        }
        self.seen |= v & v2p::READ_CLEAR;
        v
    }

    /// True (and consumed) when `bit`, a read-to-clear bit, was set since last consumed.
    fn take<D: DeviceAccess>(&mut self, dev: &D, bit: u32) -> bool {
        self.read(dev);
        let hit = self.seen & bit != 0;
        self.seen &= !bit;
        hit
    }

    /// Takes the mailbox memory.
    fn lock<D: DeviceAccess>(&mut self, dev: &D) -> Result<(), PciError> {
        let start = Instant::now();
        let mut spins = 0;
        loop {
            dev.write32(0, vf::V2PMAILBOX, v2p::VFU);
            if self.read(dev) & v2p::VFU != 0 {
                return Ok(());
            }
            if start.elapsed() > MBX_TIMEOUT {
                log::warn!("{}: mailbox still not ours: V2PMAILBOX {:#x}", dev.name(), dev.read32(0, vf::V2PMAILBOX));
                return Err(PciError::Timeout {
                    device: dev.name().to_string(),
                    what: "the PF to release the mailbox",
                });
            }
            backoff(&mut spins);
        }
    }

    /// Waits for `bit` (`PFACK` or `PFSTS`); a PF reset meanwhile is an error.
    fn wait<D: DeviceAccess>(&mut self, dev: &D, bit: u32, what: &'static str) -> Result<(), PciError> {
        let start = Instant::now();
        let mut spins = 0;
        loop {
            let v = self.read(dev);
            if self.seen & bit != 0 {
                self.seen &= !bit;
                return Ok(());
            }
            if v & v2p::RSTI != 0 || self.seen & v2p::RSTD != 0 {
                return Err(PciError::Device {
                    device: dev.name().to_string(),
                    msg: "the PF was reset during a mailbox transaction".into(),
                });
            }
            if start.elapsed() > MBX_TIMEOUT {
                log::warn!("{}: no {what}: V2PMAILBOX {v:#x}", dev.name());
                self.broken = true;
                return Err(PciError::Timeout { device: dev.name().to_string(), what });
            }
            backoff(&mut spins);
        }
    }
}

impl Mailbox {
    fn state(&self) -> std::sync::MutexGuard<'_, MbxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `words` to the PF and returns its reply (`reply_words` long), checking that it
    /// answers this message type. A `NACK` is returned as a reply, not an error.
    ///
    /// # Errors
    /// A timeout (the PF does not service its VFs: its driver is not loaded, or hung), a PF
    /// reset meanwhile, or a reply to another message.
    pub(crate) fn request<D: DeviceAccess>(
        &self,
        dev: &D,
        words: &[u32],
        reply_words: usize,
    ) -> Result<[u32; vf::MBX_WORDS], PciError> {
        let name = dev.name().to_string();
        let mut st = self.state();
        debug_assert!(!words.is_empty() && words.len() <= vf::MBX_WORDS && reply_words <= vf::MBX_WORDS);
        // Send.
        st.lock(dev)?;
        // Stale notifications belong to no transaction of ours.
        st.take(dev, v2p::PFSTS | v2p::PFACK);
        for (i, w) in words.iter().enumerate() {
            dev.write32(0, vf::VMBMEM + 4 * i as u32, *w);
        }
        dev.write32(0, vf::V2PMAILBOX, v2p::REQ);
        st.wait(dev, v2p::PFACK, "the PF to acknowledge a mailbox message")?;
        // Receive.
        st.wait(dev, v2p::PFSTS, "the PF's reply to a mailbox message")?;
        st.lock(dev)?;
        let mut reply = [0u32; vf::MBX_WORDS];
        for (i, r) in reply.iter_mut().enumerate().take(reply_words.max(1)) {
            *r = dev.read32(0, vf::VMBMEM + 4 * i as u32);
        }
        dev.write32(0, vf::V2PMAILBOX, v2p::ACK);
        st.broken = false;
        if reply[0] & 0xffff != words[0] & 0xffff {
            return Err(PciError::Device {
                device: name,
                msg: format!("the PF answered mailbox message {:#x} with {:#x}", words[0], reply[0]),
            });
        }
        Ok(reply)
    }

    /// Sends `words` and tells whether the PF accepted (`ACK`) or refused (`NACK`) them.
    ///
    /// # Errors
    /// As [`Mailbox::request`].
    pub(crate) fn command<D: DeviceAccess>(&self, dev: &D, words: &[u32]) -> Result<bool, PciError> {
        let r = self.request(dev, words, 1)?;
        Ok(r[0] & msg::ACK != 0 && r[0] & msg::NACK == 0)
    }

    /// Waits until the PF is out of reset (`RSTI` clear), consuming a reset-done indication.
    ///
    /// # Errors
    /// The PF stays in reset (its driver is not loaded, or the PF interface is down).
    pub(crate) fn wait_pf_ready<D: DeviceAccess>(&self, dev: &D) -> Result<(), PciError> {
        let mut st = self.state();
        let start = Instant::now();
        let mut spins = 0;
        loop {
            let v = st.read(dev);
            if v & v2p::RSTI == 0 {
                st.seen &= !v2p::RSTD;
                return Ok(());
            }
            if start.elapsed() > PF_RESET_TIMEOUT {
                return Err(PciError::Device {
                    device: dev.name().to_string(),
                    msg: "the PF is in reset (mailbox RSTI): its kernel igb driver must be loaded and the PF \
                          interface up before a VF can be used"
                        .into(),
                });
            }
            backoff(&mut spins);
        }
    }

    /// False when the PF is in reset or was reset since the VF's own reset (the VF then needs
    /// a reset too), or a transaction was left unanswered.
    pub(crate) fn link_ok<D: DeviceAccess>(&self, dev: &D) -> bool {
        let mut st = self.state();
        let v = dev.read32(0, vf::V2PMAILBOX);
        if v == u32::MAX {
            // The device is gone (or reads all ones for another reason).
            return false;
        }
        st.seen |= v & v2p::READ_CLEAR;
        v & v2p::RSTI == 0 && st.seen & v2p::RSTD == 0 && !st.broken
    }
}

/// Resets the VF and asks the PF for its MAC address. Returns the MAC and whether the PF
/// assigned it (`false`: we picked one, a locally administered address).
///
/// # Errors
/// The PF is not ready or does not answer, or refuses every MAC address.
pub(crate) fn reset_and_mac<D: DeviceAccess>(dev: &D, mbx: &Mailbox) -> Result<(MacAddr, bool), PciError> {
    log::debug!(
        "{}: before reset: CTRL {:#x} STATUS {:#x} V2PMAILBOX {:#x} RXDCTL0 {:#x}",
        dev.name(),
        dev.read32(0, regs::CTRL),
        dev.read32(0, regs::STATUS),
        dev.read32(0, vf::V2PMAILBOX),
        dev.read32(0, regs::QueueLayout::VF.rx(0, regs::q::DCTL))
    );
    // Interrupts off (we poll): the VF has three vectors.
    dev.write32(0, regs::EIMC, 0x7);
    dev.write32(0, regs::CTRL, ctrl::RST);
    // The reset is immediate for the VF's own state; the PF learns of it by interrupt.
    std::thread::sleep(Duration::from_millis(1));
    mbx.wait_pf_ready(dev)?;
    let r = mbx.request(dev, &[msg::RESET], 3)?;
    if r[0] & msg::ACK != 0 {
        let b = [r[1].to_le_bytes(), r[2].to_le_bytes()];
        let mac = MacAddr([b[0][0], b[0][1], b[0][2], b[0][3], b[1][0], b[1][1]]);
        if mac.0 != [0; 6] && mac.0[0] & 1 == 0 {
            return Ok((mac, true));
        }
    }
    // No MAC assigned by the PF: propose one of our own.
    let mac = super::super::fallback_mac(dev.name());
    if !set_mac(dev, mbx, mac)? {
        return Err(PciError::Device {
            device: dev.name().to_string(),
            msg: format!(
                "the PF assigned no MAC address and refused {mac}: assign one on the PF (ip link set PF vf N mac \
                 ADDRESS)"
            ),
        });
    }
    Ok((mac, false))
}

/// Asks the PF to use `mac` for the VF; `false` when it refuses (a MAC the PF's
/// administrator set cannot be overridden).
///
/// # Errors
/// As [`Mailbox::request`].
pub(crate) fn set_mac<D: DeviceAccess>(dev: &D, mbx: &Mailbox, mac: MacAddr) -> Result<bool, PciError> {
    let m = mac.0;
    mbx.command(
        dev,
        &[msg::SET_MAC_ADDR, u32::from_le_bytes([m[0], m[1], m[2], m[3]]), u32::from_le_bytes([m[4], m[5], 0, 0])],
    )
}

/// The `SET_MULTICAST` message for `macs` (at most [`msg::MAX_MC_HASHES`]): their hashes,
/// two per word.
pub(crate) fn multicast_message(macs: &[MacAddr]) -> Vec<u32> {
    let n = macs.len().min(msg::MAX_MC_HASHES);
    let mut w = vec![0u32; 1 + n.div_ceil(2)];
    w[0] = msg::SET_MULTICAST | (n as u32) << msg::INFO_SHIFT;
    for (i, m) in macs.iter().take(n).enumerate() {
        w[1 + i / 2] |= (regs::mc_hash(&m.0) as u32) << (16 * (i % 2));
    }
    w
}
