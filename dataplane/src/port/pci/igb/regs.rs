//! Intel 82576 / I350 constants: PCI ids, the registers both drivers touch, the advanced
//! receive and transmit descriptor formats, and the PF–VF mailbox protocol.
//!
//! Names follow the 82576 and I350 datasheets (and so Linux's `e1000_regs.h`); every
//! register is 32 bits wide and accessed with 32-bit reads and writes (a VF's BAR accepts
//! nothing else); descriptors are little-endian.

/// Intel's PCI vendor id.
pub const VENDOR: u16 = 0x8086;
/// 82576 physical function (copper).
pub const DEV_82576: u16 = 0x10c9;
/// 82576 virtual function.
pub const DEV_82576_VF: u16 = 0x10ca;
/// I350 physical function (copper).
pub const DEV_I350: u16 = 0x1521;
/// I350 virtual function.
pub const DEV_I350_VF: u16 = 0x1520;

/// Device control (PF: the whole device; VF: the VF's own reset bit only).
pub const CTRL: u32 = 0x0000;
/// Device status (read-only; a VF reads its PF's link bits).
pub const STATUS: u32 = 0x0008;
/// Extended device control (PF).
pub const CTRL_EXT: u32 = 0x0018;
/// MDI control: PHY register access (PF).
pub const MDIC: u32 = 0x0020;
/// Interrupt mask clear (PF).
pub const IMC: u32 = 0x00d8;
/// Receive control (PF).
pub const RCTL: u32 = 0x0100;
/// Transmit control (PF).
pub const TCTL: u32 = 0x0400;
/// Extended interrupt mask clear (PF and VF).
pub const EIMC: u32 = 0x1528;
/// Multicast table array, 128 registers (PF).
pub const MTA: u32 = 0x5200;
/// Receive address low/high pairs, 16 of them, 8 bytes apart (PF).
pub const RAL0: u32 = 0x5400;
/// High half of receive address 0.
pub const RAH0: u32 = 0x5404;
/// Receive checksum control (PF).
pub const RXCSUM: u32 = 0x5000;
/// Receive long packet maximum length (PF).
pub const RLPML: u32 = 0x5004;
/// Multiple receive queues command (PF): RSS on or off, and which fields are hashed.
pub const MRQC: u32 = 0x5818;
/// RSS redirection table: 128 one-byte entries in 32 registers (PF).
pub const RETA: u32 = 0x5c00;
/// RSS random key: 40 bytes in 10 registers (PF).
pub const RSSRK: u32 = 0x5c80;
/// Missed packets count (PF; clear on read).
pub const MPC: u32 = 0x4010;
/// Receive oversize count (PF; clear on read).
pub const ROC: u32 = 0x40ac;

/// Receive address registers.
pub const RECEIVE_ADDRESSES: u32 = 16;
/// `RAH`: address valid.
pub const RAH_AV: u32 = 1 << 31;

/// `CTRL` bits.
pub mod ctrl {
    /// GIO master disable: stop issuing new DMA (PF).
    pub const GIO_MASTER_DISABLE: u32 = 1 << 2;
    /// Set link up (PF).
    pub const SLU: u32 = 1 << 6;
    /// Force speed (PF).
    pub const FRCSPD: u32 = 1 << 11;
    /// Force duplex (PF).
    pub const FRCDPX: u32 = 1 << 12;
    /// Device reset (self-clearing); on a VF, the VF's queues and interrupts only.
    pub const RST: u32 = 1 << 26;
}

/// `STATUS` bits.
pub mod status {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link up.
    pub const LU: u32 = 1 << 1;
    /// Speed field (bits 7:6): 00 10, 01 100, 1x 1000 Mb/s.
    pub const SPEED_SHIFT: u32 = 6;
    /// SR-IOV mode: the PF has VFs enabled.
    pub const IOV_MODE: u32 = 1 << 18;
    /// The device still masters the bus (cleared after `GIO_MASTER_DISABLE` takes effect).
    pub const GIO_MASTER_ENABLE: u32 = 1 << 19;
}

/// `CTRL_EXT`: driver loaded (tells management firmware a driver owns the device).
pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

/// `MDIC` fields (PHY access).
pub mod mdic {
    /// Register address shift.
    pub const REG_SHIFT: u32 = 16;
    /// PHY address shift.
    pub const PHY_SHIFT: u32 = 21;
    /// Write operation.
    pub const OP_WRITE: u32 = 1 << 26;
    /// Read operation.
    pub const OP_READ: u32 = 2 << 26;
    /// The operation completed.
    pub const READY: u32 = 1 << 28;
    /// The operation failed.
    pub const ERROR: u32 = 1 << 30;
    /// The internal copper PHY's address.
    pub const PHY_ADDR: u32 = 1;
    /// PHY register 0: basic mode control.
    pub const PHY_BMCR: u32 = 0;
    /// BMCR: restart auto-negotiation (self-clearing).
    pub const BMCR_ANRESTART: u16 = 1 << 9;
    /// BMCR: auto-negotiation enable.
    pub const BMCR_AUTOEN: u16 = 1 << 12;
}

/// `RCTL` bits.
pub mod rctl {
    /// Receiver enable.
    pub const EN: u32 = 1 << 1;
    /// Unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// Multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// Long packet enable (frames up to `RLPML`).
    pub const LPE: u32 = 1 << 5;
    /// Broadcast accept.
    pub const BAM: u32 = 1 << 15;
    /// Strip the Ethernet CRC.
    pub const SECRC: u32 = 1 << 26;
}

/// `TCTL` bits.
pub mod tctl {
    /// Transmitter enable.
    pub const EN: u32 = 1 << 1;
    /// Pad short packets.
    pub const PSP: u32 = 1 << 3;
    /// Collision threshold (15, the datasheet's recommendation), shifted in place.
    pub const CT_DEFAULT: u32 = 0xf << 4;
    /// Collision distance (63 for full duplex), shifted in place.
    pub const COLD_DEFAULT: u32 = 0x3f << 12;
    /// Re-transmit on late collision.
    pub const RTLC: u32 = 1 << 24;
}

/// `RXCSUM`: packet checksum disable, which makes the descriptor carry the RSS hash (and is
/// required for RSS).
pub const RXCSUM_PCSD: u32 = 1 << 13;

/// `MRQC` values.
pub mod mrqc {
    /// RSS over the queues (no VMDq).
    pub const ENABLE_RSS: u32 = 0x2;
    /// Hash TCP over IPv4.
    pub const FIELD_IPV4_TCP: u32 = 1 << 16;
    /// Hash IPv4 addresses.
    pub const FIELD_IPV4: u32 = 1 << 17;
    /// Hash IPv6 addresses.
    pub const FIELD_IPV6: u32 = 1 << 20;
    /// Hash TCP over IPv6.
    pub const FIELD_IPV6_TCP: u32 = 1 << 21;
    /// Hash UDP over IPv4.
    pub const FIELD_IPV4_UDP: u32 = 1 << 22;
    /// Hash UDP over IPv6.
    pub const FIELD_IPV6_UDP: u32 = 1 << 23;
}

/// The RSS key (Microsoft's RSS verification key, the usual default of Intel NICs).
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// Where a device keeps the registers of its queues: queue `n`'s receive registers start at
/// `rx + stride n`, its transmit registers at `tx + stride n`, each block with the offsets
/// of [`q`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLayout {
    /// Receive block of queue 0.
    pub rx: u32,
    /// Transmit block of queue 0.
    pub tx: u32,
    /// Distance between the blocks of consecutive queues.
    pub stride: u32,
}

impl QueueLayout {
    /// A PF's 16 queues (the datasheet's primary addresses).
    pub const PF: QueueLayout = QueueLayout { rx: 0xc000, tx: 0xe000, stride: 0x40 };
    /// A VF's 2 queues (the 82575-compatible addresses, all a VF's BAR decodes).
    pub const VF: QueueLayout = QueueLayout { rx: 0x2800, tx: 0x3800, stride: 0x100 };

    /// Register `reg` (a [`q`] offset) of receive queue `n`.
    #[inline(always)]
    pub const fn rx(&self, n: u16, reg: u32) -> u32 {
        self.rx + self.stride * n as u32 + reg
    }

    /// Register `reg` (a [`q`] offset) of transmit queue `n`.
    #[inline(always)]
    pub const fn tx(&self, n: u16, reg: u32) -> u32 {
        self.tx + self.stride * n as u32 + reg
    }
}

/// Offsets inside a queue's register block (the same in both directions where named alike).
pub mod q {
    /// Descriptor ring base, low 32 bits (128-byte aligned).
    pub const BAL: u32 = 0x00;
    /// Descriptor ring base, high 32 bits.
    pub const BAH: u32 = 0x04;
    /// Ring length in bytes (a multiple of 128).
    pub const LEN: u32 = 0x08;
    /// Receive only: split and replication control (buffer size, descriptor type).
    pub const SRRCTL: u32 = 0x0c;
    /// Head (the device's index).
    pub const HEAD: u32 = 0x10;
    /// Tail (the driver's index).
    pub const TAIL: u32 = 0x18;
    /// Queue control: thresholds and enable.
    pub const DCTL: u32 = 0x28;
    /// Receive only (PF): packets dropped for want of descriptors (clear on read).
    pub const RQDPC: u32 = 0x30;
    /// Transmit only: completion write-back address, low 32 bits (bit 0 enables head
    /// write-back).
    pub const WBAL: u32 = 0x38;
    /// Transmit only: completion write-back address, high 32 bits.
    pub const WBAH: u32 = 0x3c;
}

/// `RXDCTL`/`TXDCTL`: queue enable.
pub const DCTL_ENABLE: u32 = 1 << 25;
/// `RXDCTL`: prefetch 8, host 8, write back every descriptor (we poll: a descriptor must not
/// wait for companions before the device writes it back).
pub const RXDCTL_THRESH: u32 = 8 | 8 << 8 | 1 << 16;
/// `TXDCTL`: prefetch 8, host 1, write-back threshold 0 (head write-back reports every
/// descriptor with RS).
pub const TXDCTL_THRESH: u32 = 8 | 1 << 8;

/// `SRRCTL` fields.
pub mod srrctl {
    /// Packet buffer size in 1 KiB units (bits 6:0).
    pub const BSIZEPKT_SHIFT: u32 = 10;
    /// Largest `BSIZEPKT` value.
    pub const BSIZEPKT_MAX: u32 = 0x7f;
    /// Advanced descriptors, one buffer (no header split).
    pub const DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
    /// Drop frames for this queue when it has no descriptors, instead of stalling the others.
    pub const DROP_EN: u32 = 1 << 31;
}

/// Advanced receive descriptor (16 bytes). Read format: packet buffer address at 0, header
/// buffer address at 8 (0: no header split; its low bit is where `DD` is written back).
/// Write-back format: RSS hash at 4, status and errors at 8, length at 12, VLAN at 14.
pub mod rxd {
    /// Descriptor size.
    pub const SIZE: usize = 16;
    /// Read format: packet buffer address.
    pub const PKT_ADDR: usize = 0;
    /// Read format: header buffer address.
    pub const HDR_ADDR: usize = 8;
    /// Write-back: RSS hash.
    pub const RSS: usize = 4;
    /// Write-back: extended status and errors.
    pub const STATUS: usize = 8;
    /// Write-back: bytes written to this descriptor's buffer.
    pub const LENGTH: usize = 12;
    /// Status: descriptor done.
    pub const DD: u32 = 1 << 0;
    /// Status: end of packet.
    pub const EOP: u32 = 1 << 1;
    /// Errors: any receive error (CRC, symbol, sequence, length) on the frame.
    pub const RXE: u32 = 1 << 29;
}

/// Advanced transmit data descriptor (16 bytes): buffer address at 0, `cmd_type_len` at 8,
/// `olinfo_status` at 12 (where `DD` is written back when the device writes descriptors
/// back instead of its head).
pub mod txd {
    /// Descriptor size.
    pub const SIZE: usize = 16;
    /// Buffer address.
    pub const ADDR: usize = 0;
    /// Length (bits 15:0), descriptor type, command.
    pub const CMD_TYPE_LEN: usize = 8;
    /// Payload length (bits 31:14) and offload options.
    pub const OLINFO: usize = 12;
    /// Advanced data descriptor type.
    pub const DTYP_DATA: u32 = 0x3 << 20;
    /// End of packet.
    pub const EOP: u32 = 1 << 24;
    /// Insert the FCS.
    pub const IFCS: u32 = 1 << 25;
    /// Report status (write back head or `DD` once done).
    pub const RS: u32 = 1 << 27;
    /// Descriptor extension: advanced format.
    pub const DEXT: u32 = 1 << 29;
    /// `olinfo_status`: payload length shift.
    pub const PAYLEN_SHIFT: u32 = 14;
    /// Write-back: descriptor done.
    pub const DD: u32 = 1 << 0;
}

/// Largest ring the drivers program (the datasheets allow more; 4096 is Linux's maximum).
pub const MAX_RING: u16 = 4096;
/// Smallest ring (the length must be a multiple of 128 bytes: 8 descriptors).
pub const MIN_RING: u16 = 8;
/// Largest frame the device takes with long packets enabled (`RLPML` is 14 bits).
pub const MAX_FRAME: u32 = 0x3fff;

/// VF registers (the VF's own BAR).
pub mod vf {
    /// Good packets received.
    pub const VFGPRC: u32 = 0x0f10;
    /// Good packets transmitted.
    pub const VFGPTC: u32 = 0x0f14;
    /// VF-to-PF mailbox control.
    pub const V2PMAILBOX: u32 = 0x0c40;
    /// Mailbox memory: 16 words.
    pub const VMBMEM: u32 = 0x0800;
    /// Mailbox size in 32-bit words.
    pub const MBX_WORDS: usize = 16;
}

/// `V2PMAILBOX` bits (the VF's view).
pub mod v2p {
    /// Request: the VF posted a message for the PF.
    pub const REQ: u32 = 1 << 0;
    /// Acknowledge: the VF read the PF's message.
    pub const ACK: u32 = 1 << 1;
    /// The VF owns the mailbox memory.
    pub const VFU: u32 = 1 << 2;
    /// The PF owns the mailbox memory.
    pub const PFU: u32 = 1 << 3;
    /// The PF wrote a message (clear on read).
    pub const PFSTS: u32 = 1 << 4;
    /// The PF acknowledged our message (clear on read).
    pub const PFACK: u32 = 1 << 5;
    /// The PF is being reset.
    pub const RSTI: u32 = 1 << 6;
    /// The PF finished a reset (clear on read).
    pub const RSTD: u32 = 1 << 7;
    /// The bits a read clears.
    pub const READ_CLEAR: u32 = PFSTS | PFACK | RSTD;
}

/// Mailbox messages (word 0: message type in bits 15:0, information in 23:16, and the
/// reply's ACK/NACK/CTS flags in the top bits).
pub mod msg {
    /// VF reset: the reply carries the VF's MAC address (ACK) or none (NACK).
    pub const RESET: u32 = 0x01;
    /// Set the VF's MAC address (words 1–2).
    pub const SET_MAC_ADDR: u32 = 0x02;
    /// Set the multicast hash list: count in the info field, 16-bit hashes from word 1.
    pub const SET_MULTICAST: u32 = 0x03;
    /// Set the largest receive frame (word 1, including the CRC).
    pub const SET_LPE: u32 = 0x05;
    /// Promiscuous modes (info field flags).
    pub const SET_PROMISC: u32 = 0x06;
    /// `SET_PROMISC` flag: unicast promiscuous.
    pub const PROMISC_UNICAST: u32 = 0x01 << 16;
    /// `SET_PROMISC` flag: multicast promiscuous.
    pub const PROMISC_MULTICAST: u32 = 0x02 << 16;
    /// Info field shift.
    pub const INFO_SHIFT: u32 = 16;
    /// The largest frame a VF asks for with `SET_LPE` (Linux's igb caps requests here).
    pub const VF_MAX_FRAME: u32 = 9728;
    /// Most multicast hashes one `SET_MULTICAST` carries.
    pub const MAX_MC_HASHES: usize = 30;
    /// Reply: accepted.
    pub const ACK: u32 = 1 << 31;
    /// Reply: refused.
    pub const NACK: u32 = 1 << 30;
    /// Reply: the VF is clear to send further requests.
    pub const CTS: u32 = 1 << 29;
    /// A message the PF sends on its own (not a reply).
    pub const PF_CONTROL: u32 = 0x0100;
}

/// The 12-bit multicast hash of `mac` (filter type 0: address bits 47:36), as the PF's
/// multicast table indexes it.
pub const fn mc_hash(mac: &[u8; 6]) -> u16 {
    ((mac[4] as u16 >> 4) | (mac[5] as u16) << 4) & 0xfff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_datasheets() {
        assert_eq!(QueueLayout::PF.rx(0, q::TAIL), 0xc018);
        assert_eq!(QueueLayout::PF.rx(7, q::DCTL), 0xc1e8);
        assert_eq!(QueueLayout::PF.tx(1, q::WBAL), 0xe078);
        assert_eq!(QueueLayout::VF.rx(1, q::SRRCTL), 0x290c);
        assert_eq!(QueueLayout::VF.tx(0, q::TAIL), 0x3818);
        // 01:00:5e:00:00:fb (mDNS): address bits 47:36 are 0xfb0.
        assert_eq!(mc_hash(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]), 0xfb0);
    }
}
