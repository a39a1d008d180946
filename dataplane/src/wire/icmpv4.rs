//! ICMP for IPv4 (RFC 792). Echo request/reply are decoded; other types are kept as values
//! with their 4-byte rest-of-header and data.

use super::checksum;
use super::{be16, be32, need, open_enum, put16, put32, Error};

open_enum! {
    /// ICMPv4 message type.
    pub enum Icmpv4Message(u8) {
        /// Echo reply (0).
        EchoReply = 0,
        /// Destination unreachable (3).
        DstUnreachable = 3,
        /// Redirect (5).
        Redirect = 5,
        /// Echo request (8).
        EchoRequest = 8,
        /// Router advertisement (9).
        RouterAdvert = 9,
        /// Router solicitation (10).
        RouterSolicit = 10,
        /// Time exceeded (11).
        TimeExceeded = 11,
        /// Parameter problem (12).
        ParamProblem = 12,
        /// Timestamp (13).
        Timestamp = 13,
        /// Timestamp reply (14).
        TimestampReply = 14,
    }
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// A view of an ICMPv4 message: type, code, checksum, 4-byte rest-of-header, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Length of the header (type, code, checksum, rest-of-header).
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after checking it holds the 8-byte header.
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

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The 4-byte rest-of-header as a big-endian word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::REST])
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// The bytes after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// True when the whole message sums to `0xffff`.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = v.into();
    }

    /// Sets the code.
    #[inline]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the rest-of-header word.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        put32(&mut self.buffer.as_mut()[field::REST], v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::ECHO_IDENT], v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], v);
    }

    /// The data bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes the checksum over the whole buffer and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMPv4 message as values, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (type 0, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Any other type, or an echo with a non-zero code.
    Other {
        /// Message type.
        msg_type: Icmpv4Message,
        /// Code.
        code: u8,
        /// Rest-of-header word.
        rest: u32,
        /// Data after the header (for errors: the offending IP header and 8 bytes).
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a checked message, borrowing its data. The checksum is not verified (see
    /// [`Icmpv4Packet::verify_checksum`]).
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv4Packet<&'a T>) -> Result<Self, Error> {
        p.check_len()?;
        let buf: &'a T = p.buffer;
        let data = &buf.as_ref()[field::DATA];
        let (ident, seq_no) = (p.echo_ident(), p.echo_seq_no());
        Ok(match (p.msg_type(), p.msg_code()) {
            (Icmpv4Message::EchoRequest, 0) => Icmpv4Repr::EchoRequest { ident, seq_no, data },
            (Icmpv4Message::EchoReply, 0) => Icmpv4Repr::EchoReply { ident, seq_no, data },
            (msg_type, code) => Icmpv4Repr::Other { msg_type, code, rest: p.rest_of_header(), data },
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 8 plus the data.
    pub fn buffer_len(&self) -> usize {
        let data = match self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::Other { data, .. } => data,
        };
        8 + data.len()
    }

    /// Writes the whole message and fills the checksum (over the first
    /// [`buffer_len`](Self::buffer_len) bytes of the view).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Icmpv4Packet<T>) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = p.buffer.as_mut().get_mut(..len).ok_or(Error::Truncated)?;
        let mut p = Icmpv4Packet::new_unchecked(buf);
        let (t, code, rest, data) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                (Icmpv4Message::EchoRequest, 0, echo_rest(ident, seq_no), data)
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                (Icmpv4Message::EchoReply, 0, echo_rest(ident, seq_no), data)
            }
            Icmpv4Repr::Other { msg_type, code, rest, data } => (msg_type, code, rest, data),
        };
        p.set_msg_type(t);
        p.set_msg_code(code);
        p.set_rest_of_header(rest);
        p.data_mut().copy_from_slice(data);
        p.fill_checksum();
        Ok(())
    }
}

fn echo_rest(ident: u16, seq_no: u16) -> u32 {
    (u32::from(ident) << 16) | u32::from(seq_no)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const ECHO_REQUEST: [u8; 12] = [
        0x08, 0x00,             // type echo request, code 0
        0x3a, 0xcb,             // checksum
        0x12, 0x34,             // identifier
        0x00, 0x01,             // sequence number
        0xaa, 0x00, 0x00, 0xff, // data
    ];

    #[test]
    fn parse_fixture() {
        let p = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), Icmpv4Message::EchoRequest);
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert_eq!(r, Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: &[0xaa, 0, 0, 0xff] });
    }

    #[test]
    fn round_trip() {
        let p = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        let mut out = [0u8; 12];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, ECHO_REQUEST);
        let mut short = [0u8; 11];
        assert_eq!(r.emit(&mut Icmpv4Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn other_types_are_values() {
        // Time exceeded, code 0, unused rest, with a quoted header fragment.
        let mut b = [11u8, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 20];
        Icmpv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert_eq!(r, Icmpv4Repr::Other { msg_type: Icmpv4Message::TimeExceeded, code: 0, rest: 0, data: &b[8..] });
        let mut out = [0u8; 12];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, b);
        assert_eq!(Icmpv4Message::from(42), Icmpv4Message::Unknown(42));
    }

    #[test]
    fn truncations() {
        check_truncations(&ECHO_REQUEST, 8, |b| {
            let p = Icmpv4Packet::new_checked(b)?;
            Icmpv4Repr::parse(&p).map(|r| r.buffer_len())
        });
    }

    proptest! {
        #[test]
        fn random_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Icmpv4Packet::new_checked(&data[..]) {
                let r = Icmpv4Repr::parse(&p).unwrap();
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..])).unwrap();
                // Everything but the checksum survives; the checksum is then valid.
                prop_assert_eq!(&out[..2], &data[..2]);
                prop_assert_eq!(&out[4..], &data[4..]);
                prop_assert!(Icmpv4Packet::new_unchecked(&out[..]).verify_checksum());
            }
        }
    }
}
