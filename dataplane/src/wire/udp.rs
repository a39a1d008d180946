//! UDP (RFC 768) datagrams.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{be16, need, put16, Error, IpProtocol};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram.
///
/// [`new_checked`](Self::new_checked) guarantees `8 <= length <= buffer.len()`;
/// [`payload`](Self::payload) is `buffer[8..length]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 8 bytes and
    /// [`payload`](Self::payload) if the length field exceeds the buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after checking the length field against it.
    ///
    /// # Errors
    /// See [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes or than the length field;
    /// [`Error::Malformed`] when the length field is below 8.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, Self::HEADER_LEN)?;
        let l = usize::from(self.len());
        if l < Self::HEADER_LEN {
            return Err(Error::Malformed);
        }
        need(len, l)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Length field (header and payload).
    #[inline]
    pub fn len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// True when the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= Self::HEADER_LEN
    }

    /// Checksum as stored (0 means "none" over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload: `buffer[8..length]`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..usize::from(self.len())]
    }

    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// True when the checksum is absent (0) or correct over the IPv4 pseudo-header.
    #[inline]
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        self.checksum() == 0 || checksum::verify_l4_v4(src, dst, IpProtocol::Udp, self.datagram())
    }

    /// True when the checksum is correct over the IPv6 pseudo-header (it is mandatory in
    /// IPv6, so 0 fails).
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() != 0 && checksum::verify_l4_v6(src, dst, IpProtocol::Udp, self.datagram())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }

    /// Computes the checksum over the IPv4 pseudo-header and `length` bytes, and stores it
    /// (a computed 0 is stored as `0xffff`, RFC 768).
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v4(src, dst, IpProtocol::Udp, self.datagram());
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes the checksum over the IPv6 pseudo-header and `length` bytes, and stores it
    /// (a computed 0 is stored as `0xffff`, RFC 8200 §8.1).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, IpProtocol::Udp, self.datagram());
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A UDP header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Reads a checked datagram. The checksum is not verified.
    ///
    /// # Errors
    /// As [`UdpPacket::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> Result<Self, Error> {
        p.check_len()?;
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - UdpPacket::<T>::HEADER_LEN,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: the 8-byte header.
    pub const fn buffer_len(&self) -> usize {
        8
    }

    /// Writes the header with a zero checksum; write the payload, then call
    /// [`UdpPacket::fill_checksum_v4`] or [`UdpPacket::fill_checksum_v6`] (mandatory over
    /// IPv6).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes;
    /// [`Error::ValueTooLarge`] when `8 + payload_len` exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>) -> Result<(), Error> {
        need(p.buffer.as_ref().len(), 8)?;
        let len = u16::try_from(8 + self.payload_len).map_err(|_| Error::ValueTooLarge)?;
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len);
        p.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const DNS: [u8; 12] = [
        0xd4, 0x31,             // src port 54321
        0x00, 0x35,             // dst port 53
        0x00, 0x0c,             // length 12
        0x00, 0x00,             // checksum (filled by the tests)
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    fn addrs() -> (Ipv4Addr, Ipv4Addr) {
        (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
    }

    #[test]
    fn parse_fixture() {
        let p = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (54321, 53, 12));
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        let (s, d) = addrs();
        assert!(p.verify_checksum_v4(&s, &d), "zero checksum means none over IPv4");
        assert!(!p.verify_checksum_v6(&s.to_ipv6_mapped(), &d.to_ipv6_mapped()));
    }

    #[test]
    fn checksums() {
        let (s, d) = addrs();
        let mut b = DNS;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum_v4(&s, &d);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum_v4(&s, &d));
        assert!(!p.verify_checksum_v4(&d, &Ipv4Addr::new(10, 0, 0, 3)));
        let (s6, d6) = (s.to_ipv6_mapped(), d.to_ipv6_mapped());
        p.fill_checksum_v6(&s6, &d6);
        assert!(p.verify_checksum_v6(&s6, &d6));
    }

    #[test]
    fn round_trip() {
        let p = UdpPacket::new_checked(&DNS[..]).unwrap();
        let r = UdpRepr::parse(&p).unwrap();
        assert_eq!(r, UdpRepr { src_port: 54321, dst_port: 53, payload_len: 4 });
        let mut out = DNS;
        out[..8].fill(0xff);
        r.emit(&mut UdpPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, DNS);
        let big = UdpRepr { payload_len: 65528, ..r };
        assert_eq!(big.emit(&mut UdpPacket::new_unchecked(&mut out[..])), Err(Error::ValueTooLarge));
    }

    #[test]
    fn truncations() {
        check_truncations(&DNS, 12, |b| UdpRepr::parse(&UdpPacket::new_checked(b)?));
        let mut b = DNS;
        b[5] = 7;
        assert_eq!(UdpPacket::new_checked(&b[..]), Err(Error::Malformed));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = UdpPacket::new_checked(&data[..]) {
                let r = UdpRepr::parse(&p).unwrap();
                prop_assert_eq!(r.payload_len, p.payload().len());
                let _ = p.verify_checksum_v4(&Ipv4Addr::LOCALHOST, &Ipv4Addr::LOCALHOST);
            }
        }
    }
}
