//! VXLAN (RFC 7348): an 8-byte header in a UDP datagram to port 4789, followed by an inner
//! Ethernet frame.

use super::{be32, need, put32, Error};

/// The IANA-assigned UDP destination port for VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// The I flag: the VNI is valid.
const FLAG_I: u8 = 0x08;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const FLAGS: usize = 0;
    pub const RESERVED1: Range<usize> = 1..4;
    /// VNI (24 bits) and the last reserved byte.
    pub const VNI_RES: Range<usize> = 4..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A view of a VXLAN header and the inner frame after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Length of the VXLAN header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps `buffer` after checking it holds the header. The I flag is not required here
    /// (see [`VxlanRepr::parse`]).
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        need(self.buffer.as_ref().len(), Self::HEADER_LEN)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// True when the I flag (VNI valid) is set.
    #[inline]
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::VNI_RES]) >> 8
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    /// Sets the VNI (low 24 bits used) and clears the reserved byte after it.
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        put32(&mut self.buffer.as_mut()[field::VNI_RES], (vni & 0x00ff_ffff) << 8);
    }

    /// The inner frame, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A VXLAN header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
}

impl VxlanRepr {
    /// Reads a checked header. Reserved bits are ignored, as RFC 7348 asks of receivers.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes; [`Error::Malformed`] when the I flag is
    /// clear.
    pub fn parse<T: AsRef<[u8]>>(p: &VxlanPacket<T>) -> Result<Self, Error> {
        p.check_len()?;
        if !p.vni_valid() {
            return Err(Error::Malformed);
        }
        Ok(VxlanRepr { vni: p.vni() })
    }

    /// Bytes [`emit`](Self::emit) writes: 8.
    pub const fn buffer_len(&self) -> usize {
        8
    }

    /// Writes the header (I flag set, reserved fields zero).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes;
    /// [`Error::ValueTooLarge`] when the VNI exceeds 24 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VxlanPacket<T>) -> Result<(), Error> {
        p.check_len()?;
        if self.vni > 0x00ff_ffff {
            return Err(Error::ValueTooLarge);
        }
        p.set_flags(FLAG_I);
        p.buffer.as_mut()[field::RESERVED1].fill(0);
        p.set_vni(self.vni);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use crate::wire::{EtherType, EthernetFrame};

    #[rustfmt::skip]
    const VXLAN: [u8; 22] = [
        0x08,                   // flags: I
        0x00, 0x00, 0x00,       // reserved
        0x12, 0x34, 0x56,       // VNI 0x123456
        0x00,                   // reserved
        0x02, 0, 0, 0, 0, 0x0b, // inner dst
        0x02, 0, 0, 0, 0, 0x0a, // inner src
        0x08, 0x06,             // inner EtherType ARP
    ];

    #[test]
    fn parse_fixture() {
        let p = VxlanPacket::new_checked(&VXLAN[..]).unwrap();
        assert!(p.vni_valid());
        assert_eq!(p.vni(), 0x123456);
        assert_eq!(VxlanRepr::parse(&p), Ok(VxlanRepr { vni: 0x123456 }));
        let inner = EthernetFrame::new_checked(p.payload()).unwrap();
        assert_eq!(inner.ethertype(), EtherType::Arp);
    }

    #[test]
    fn round_trip() {
        let r = VxlanRepr::parse(&VxlanPacket::new_checked(&VXLAN[..]).unwrap()).unwrap();
        let mut out = VXLAN;
        out[..8].fill(0xff);
        r.emit(&mut VxlanPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, VXLAN);
        let big = VxlanRepr { vni: 1 << 24 };
        assert_eq!(big.emit(&mut VxlanPacket::new_unchecked(&mut out[..])), Err(Error::ValueTooLarge));
    }

    #[test]
    fn flags_and_truncations() {
        let mut b = VXLAN;
        b[0] = 0;
        let p = VxlanPacket::new_checked(&b[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p), Err(Error::Malformed));
        b[0] = 0xff; // reserved flag bits are ignored
        b[7] = 0xff;
        assert_eq!(VxlanRepr::parse(&VxlanPacket::new_checked(&b[..]).unwrap()), Ok(VxlanRepr { vni: 0x123456 }));
        check_truncations(&VXLAN, 8, |b| VxlanRepr::parse(&VxlanPacket::new_checked(b)?));
    }
}
