//! ICMP for IPv6 (RFC 4443) and the neighbor discovery messages of RFC 4861 that a data
//! plane answers itself: neighbor solicitation and advertisement with their link-layer
//! address options. Other types are kept as values.

use std::net::Ipv6Addr;

use super::checksum;
use super::{be16, be32, need, open_enum, put16, put32, Error, EthernetAddress, IpProtocol};

open_enum! {
    /// ICMPv6 message type.
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable (1).
        DstUnreachable = 1,
        /// Packet too big (2).
        PktTooBig = 2,
        /// Time exceeded (3).
        TimeExceeded = 3,
        /// Parameter problem (4).
        ParamProblem = 4,
        /// Echo request (128).
        EchoRequest = 128,
        /// Echo reply (129).
        EchoReply = 129,
        /// Multicast listener query (130).
        MldQuery = 130,
        /// Router solicitation (133).
        RouterSolicit = 133,
        /// Router advertisement (134).
        RouterAdvert = 134,
        /// Neighbor solicitation (135).
        NeighborSolicit = 135,
        /// Neighbor advertisement (136).
        NeighborAdvert = 136,
        /// Redirect (137).
        Redirect = 137,
        /// Multicast listener report v2 (143).
        MldReport = 143,
    }
}

impl Icmpv6Message {
    /// Smallest valid message length for this type (RFC 4443 / RFC 4861), which
    /// [`Icmpv6Packet::new_checked`] enforces.
    pub fn min_len(self) -> usize {
        match self {
            Icmpv6Message::RouterAdvert => 16,
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => 24,
            Icmpv6Message::Redirect => 40,
            _ => 8,
        }
    }

    /// Offset of the NDP options for the NDP types, `None` for other types.
    fn ndisc_options_offset(self) -> Option<usize> {
        match self {
            Icmpv6Message::RouterSolicit => Some(8),
            Icmpv6Message::RouterAdvert => Some(16),
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => Some(24),
            Icmpv6Message::Redirect => Some(40),
            _ => None,
        }
    }
}

/// Neighbor advertisement flags (the high bits of the first rest-of-header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdiscNeighborFlags(pub u8);

impl NdiscNeighborFlags {
    /// R: the sender is a router.
    pub const ROUTER: NdiscNeighborFlags = NdiscNeighborFlags(0x80);
    /// S: sent in response to a solicitation.
    pub const SOLICITED: NdiscNeighborFlags = NdiscNeighborFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NdiscNeighborFlags = NdiscNeighborFlags(0x20);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: NdiscNeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for NdiscNeighborFlags {
    type Output = NdiscNeighborFlags;
    fn bitor(self, rhs: Self) -> Self {
        NdiscNeighborFlags(self.0 | rhs.0)
    }
}

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// One NDP option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdiscOption<'a> {
    /// Source link-layer address (type 1) of Ethernet length (option length 1).
    SourceLinkLayerAddr(EthernetAddress),
    /// Target link-layer address (type 2) of Ethernet length (option length 1).
    TargetLinkLayerAddr(EthernetAddress),
    /// Any other option, or a link-layer address option of another length.
    Other {
        /// Option type.
        kind: u8,
        /// The option bytes after type and length (`8 * length - 2` of them).
        data: &'a [u8],
    },
}

/// Iterator over the NDP options of a message; yields an error (and then stops) at an option
/// of length zero or one running past the end.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    /// Iterates over the options in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        NdiscOptions { rest: bytes }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        let res = (|| {
            need(rest.len(), 2)?;
            let len = usize::from(rest[1]) * 8;
            if len == 0 {
                return Err(Error::Malformed);
            }
            let opt = rest.get(..len).ok_or(Error::Truncated)?;
            let o = match (opt[0], len) {
                (OPT_SOURCE_LLADDR, 8) => NdiscOption::SourceLinkLayerAddr(EthernetAddress::from_bytes(&opt[2..])),
                (OPT_TARGET_LLADDR, 8) => NdiscOption::TargetLinkLayerAddr(EthernetAddress::from_bytes(&opt[2..])),
                (kind, _) => NdiscOption::Other { kind, data: &opt[2..] },
            };
            Ok((o, len))
        })();
        match res {
            Ok((o, len)) => {
                self.rest = &rest[len..];
                Some(Ok(o))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
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
    pub const NEIGH_FLAGS: usize = 4;
    pub const DATA: RangeFrom<usize> = 8..;
    pub const TARGET: Range<usize> = 8..24;
}

/// A view of an ICMPv6 message.
///
/// [`new_checked`](Self::new_checked) guarantees at least 8 bytes, and at least
/// [`Icmpv6Message::min_len`] for the type found, so that [`target_addr`](Self::target_addr)
/// cannot panic on a checked neighbor solicitation or advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Length of the common header (type, code, checksum, rest-of-header).
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 8 bytes
    /// (24 for [`target_addr`](Self::target_addr)).
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` after checking its length against the message type.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes or than the type's minimum.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes or than the type's minimum.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, Self::HEADER_LEN)?;
        need(len, self.msg_type().min_len())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
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

    /// The 4-byte rest-of-header as a big-endian word (MTU for packet-too-big, pointer for
    /// parameter problem, flags for neighbor advertisement).
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

    /// Neighbor advertisement flags.
    #[inline]
    pub fn neighbor_flags(&self) -> NdiscNeighborFlags {
        NdiscNeighborFlags(self.buffer.as_ref()[field::NEIGH_FLAGS] & 0xe0)
    }

    /// Target address of a neighbor solicitation/advertisement (or redirect).
    ///
    /// # Panics
    /// When the buffer is shorter than 24 bytes, which `new_checked` rules out for those
    /// types.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(a)
    }

    /// The bytes after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The NDP options of an NDP message (empty for other types, and for a buffer too short
    /// for its type).
    #[inline]
    pub fn ndisc_options(&self) -> NdiscOptions<'_> {
        let b = self.buffer.as_ref();
        let opts = self.msg_type().ndisc_options_offset().and_then(|at| b.get(at..)).unwrap_or(&[]);
        NdiscOptions::new(opts)
    }

    /// True when the message carries a correct checksum over the IPv6 pseudo-header.
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::verify_l4_v6(src, dst, IpProtocol::Icmpv6, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: Icmpv6Message) {
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

    /// Sets the neighbor advertisement flags (and clears the reserved bits).
    #[inline]
    pub fn set_neighbor_flags(&mut self, f: NdiscNeighborFlags) {
        self.set_rest_of_header(u32::from(f.0 & 0xe0) << 24);
    }

    /// Sets the target address.
    ///
    /// # Panics
    /// When the buffer is shorter than 24 bytes.
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&a.octets());
    }

    /// The bytes after the 8-byte header, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes the checksum (with the IPv6 pseudo-header) over the whole buffer and stores
    /// it.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, IpProtocol::Icmpv6, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMPv6 message as values, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// Echo request (type 128, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (type 129, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Neighbor solicitation (type 135, code 0). Options other than the source link-layer
    /// address are skipped on parse and not emitted.
    NeighborSolicit {
        /// The address being resolved.
        target_addr: Ipv6Addr,
        /// The solicitor's MAC (absent in DAD probes).
        source_lladdr: Option<EthernetAddress>,
    },
    /// Neighbor advertisement (type 136, code 0). Options other than the target link-layer
    /// address are skipped on parse and not emitted.
    NeighborAdvert {
        /// R, S, O flags.
        flags: NdiscNeighborFlags,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// The advertiser's MAC.
        target_lladdr: Option<EthernetAddress>,
    },
    /// Any other type, or one of the above with a non-zero code.
    Other {
        /// Message type.
        msg_type: Icmpv6Message,
        /// Code.
        code: u8,
        /// Rest-of-header word.
        rest: u32,
        /// The bytes after the 8-byte header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Reads a checked message, borrowing its data. The checksum is not verified (see
    /// [`Icmpv6Packet::verify_checksum`]).
    ///
    /// # Errors
    /// [`Error::Truncated`] as [`Icmpv6Packet::check_len`]; for neighbor solicitation and
    /// advertisement, [`Error::Malformed`] or [`Error::Truncated`] for a bad option.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv6Packet<&'a T>) -> Result<Self, Error> {
        p.check_len()?;
        let buf: &'a T = p.buffer;
        let buf = buf.as_ref();
        let data = &buf[field::DATA];
        let (ident, seq_no) = (p.echo_ident(), p.echo_seq_no());
        Ok(match (p.msg_type(), p.msg_code()) {
            (Icmpv6Message::EchoRequest, 0) => Icmpv6Repr::EchoRequest { ident, seq_no, data },
            (Icmpv6Message::EchoReply, 0) => Icmpv6Repr::EchoReply { ident, seq_no, data },
            (Icmpv6Message::NeighborSolicit, 0) => {
                let mut source_lladdr = None;
                for o in NdiscOptions::new(&buf[24..]) {
                    if let NdiscOption::SourceLinkLayerAddr(a) = o? {
                        source_lladdr = source_lladdr.or(Some(a));
                    }
                }
                Icmpv6Repr::NeighborSolicit { target_addr: p.target_addr(), source_lladdr }
            }
            (Icmpv6Message::NeighborAdvert, 0) => {
                let mut target_lladdr = None;
                for o in NdiscOptions::new(&buf[24..]) {
                    if let NdiscOption::TargetLinkLayerAddr(a) = o? {
                        target_lladdr = target_lladdr.or(Some(a));
                    }
                }
                Icmpv6Repr::NeighborAdvert { flags: p.neighbor_flags(), target_addr: p.target_addr(), target_lladdr }
            }
            (msg_type, code) => Icmpv6Repr::Other { msg_type, code, rest: p.rest_of_header(), data },
        })
    }

    /// Bytes [`emit`](Self::emit) writes: the whole message.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::Other { data, .. } => 8 + data.len(),
            Icmpv6Repr::NeighborSolicit { source_lladdr: l, .. }
            | Icmpv6Repr::NeighborAdvert { target_lladdr: l, .. } => 24 + if l.is_some() { 8 } else { 0 },
        }
    }

    /// Writes the whole message into the first [`buffer_len`](Self::buffer_len) bytes of the
    /// view and fills the checksum with the pseudo-header of `src` and `dst`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &mut Icmpv6Packet<T>,
    ) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = p.buffer.as_mut().get_mut(..len).ok_or(Error::Truncated)?;
        let mut p = Icmpv6Packet::new_unchecked(buf);
        match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, data } | Icmpv6Repr::EchoReply { ident, seq_no, data } => {
                let t = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    Icmpv6Message::EchoRequest
                } else {
                    Icmpv6Message::EchoReply
                };
                p.set_msg_type(t);
                p.set_msg_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(data);
            }
            Icmpv6Repr::NeighborSolicit { target_addr, source_lladdr } => {
                p.set_msg_type(Icmpv6Message::NeighborSolicit);
                p.set_msg_code(0);
                p.set_rest_of_header(0);
                p.set_target_addr(target_addr);
                if let Some(a) = source_lladdr {
                    emit_lladdr(&mut p.buffer[24..32], OPT_SOURCE_LLADDR, a);
                }
            }
            Icmpv6Repr::NeighborAdvert { flags, target_addr, target_lladdr } => {
                p.set_msg_type(Icmpv6Message::NeighborAdvert);
                p.set_msg_code(0);
                p.set_neighbor_flags(flags);
                p.set_target_addr(target_addr);
                if let Some(a) = target_lladdr {
                    emit_lladdr(&mut p.buffer[24..32], OPT_TARGET_LLADDR, a);
                }
            }
            Icmpv6Repr::Other { msg_type, code, rest, data } => {
                p.set_msg_type(msg_type);
                p.set_msg_code(code);
                p.set_rest_of_header(rest);
                p.data_mut().copy_from_slice(data);
            }
        }
        p.fill_checksum(src, dst);
        Ok(())
    }
}

fn emit_lladdr(b: &mut [u8], kind: u8, a: EthernetAddress) {
    b[0] = kind;
    b[1] = 1;
    b[2..8].copy_from_slice(&a.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    fn src() -> Ipv6Addr {
        "fe80::1".parse().unwrap()
    }
    fn dst() -> Ipv6Addr {
        "ff02::1:ff00:2".parse().unwrap()
    }

    #[rustfmt::skip]
    const NS: [u8; 32] = [
        0x87, 0x00,             // type 135 neighbor solicitation, code 0
        0x00, 0x00,             // checksum (filled by the test)
        0x00, 0x00, 0x00, 0x00, // reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target fe80::2
        0x01, 0x01,             // option: source link-layer address, length 1
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // 02:00:00:00:00:01
    ];

    #[rustfmt::skip]
    const NA: [u8; 32] = [
        0x88, 0x00,             // type 136 neighbor advertisement, code 0
        0x00, 0x00,             // checksum (filled by the test)
        0x60, 0x00, 0x00, 0x00, // flags S, O
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target fe80::2
        0x02, 0x01,             // option: target link-layer address, length 1
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // 02:00:00:00:00:02
    ];

    #[rustfmt::skip]
    const ECHO: [u8; 12] = [
        0x80, 0x00,             // echo request
        0x00, 0x00,             // checksum
        0xbe, 0xef, 0x00, 0x07, // identifier, sequence
        0x01, 0x02, 0x03, 0x04, // data
    ];

    fn filled<const N: usize>(mut b: [u8; N]) -> [u8; N] {
        Icmpv6Packet::new_unchecked(&mut b[..]).fill_checksum(&src(), &dst());
        b
    }

    #[test]
    fn parse_ns() {
        let b = filled(NS);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(&src(), &dst()));
        assert!(!p.verify_checksum(&"fe80::3".parse().unwrap(), &dst()));
        let r = Icmpv6Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Icmpv6Repr::NeighborSolicit {
                target_addr: "fe80::2".parse().unwrap(),
                source_lladdr: Some("02:00:00:00:00:01".parse().unwrap()),
            }
        );
        let opts: Vec<_> = p.ndisc_options().collect();
        assert_eq!(opts, vec![Ok(NdiscOption::SourceLinkLayerAddr(EthernetAddress([2, 0, 0, 0, 0, 1])))]);
    }

    #[test]
    fn parse_na() {
        let b = filled(NA);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        let r = Icmpv6Repr::parse(&p).unwrap();
        let Icmpv6Repr::NeighborAdvert { flags, target_lladdr, .. } = r else { panic!("{r:?}") };
        assert!(flags.contains(NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE));
        assert!(!flags.contains(NdiscNeighborFlags::ROUTER));
        assert_eq!(target_lladdr, Some(EthernetAddress([2, 0, 0, 0, 0, 2])));
    }

    #[test]
    fn round_trips() {
        for b in [&filled(NS)[..], &filled(NA)[..], &filled(ECHO)[..]] {
            let r = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(b).unwrap()).unwrap();
            assert_eq!(r.buffer_len(), b.len());
            let mut out = vec![0xa5u8; b.len()];
            r.emit(&src(), &dst(), &mut Icmpv6Packet::new_unchecked(&mut out[..])).unwrap();
            assert_eq!(out, b);
            let mut short = vec![0u8; b.len() - 1];
            assert_eq!(r.emit(&src(), &dst(), &mut Icmpv6Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
        }
    }

    #[test]
    fn ns_without_option_dad() {
        let b = filled({
            let mut x = [0u8; 24];
            x.copy_from_slice(&NS[..24]);
            x
        });
        let r = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert!(matches!(r, Icmpv6Repr::NeighborSolicit { source_lladdr: None, .. }));
        assert_eq!(r.buffer_len(), 24);
    }

    #[test]
    fn bad_options() {
        let mut b = NS;
        b[25] = 0; // option length 0
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p), Err(Error::Malformed));
        assert_eq!(p.ndisc_options().collect::<Vec<_>>(), vec![Err(Error::Malformed)]);
        let mut b = NS;
        b[25] = 2; // runs past the end
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p), Err(Error::Truncated));
        // A link-layer option of another length is an `Other` value, not an error.
        let mut b = [0u8; 40];
        b[..32].copy_from_slice(&NS);
        b[25] = 2;
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(p.ndisc_options().next(), Some(Ok(NdiscOption::Other { kind: 1, .. }))));
        assert!(matches!(Icmpv6Repr::parse(&p), Ok(Icmpv6Repr::NeighborSolicit { source_lladdr: None, .. })));
    }

    #[test]
    fn truncations() {
        let parse = |b: &[u8]| Icmpv6Repr::parse(&Icmpv6Packet::new_checked(b)?).map(|r| r.buffer_len());
        // NS/NA: below 24 is too short for the type; 25..32 ends inside the option; exactly
        // 24 is a valid message without options.
        for full in [filled(NS), filled(NA)] {
            for len in 0..=full.len() {
                let r = parse(&full[..len]);
                assert_eq!(r.is_ok(), len == 24 || len == 32, "len {len}: {r:?}");
            }
        }
        check_truncations(&filled(ECHO), 8, parse);
    }

    #[test]
    fn other_types_are_values() {
        let b = filled([2u8, 0, 0, 0, 0, 0, 0x05, 0xdc, 0x60, 0, 0, 0]);
        let r = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r, Icmpv6Repr::Other { msg_type: Icmpv6Message::PktTooBig, code: 0, rest: 1500, data: &b[8..] });
        assert_eq!(Icmpv6Message::from(200), Icmpv6Message::Unknown(200));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Icmpv6Packet::new_checked(&data[..]) {
                for o in p.ndisc_options() { let _ = o; }
                let _ = (p.target_addr_if_ndp(), p.neighbor_flags(), p.data());
                if let Ok(r) = Icmpv6Repr::parse(&p) {
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&src(), &dst(), &mut Icmpv6Packet::new_unchecked(&mut out[..])).unwrap();
                    prop_assert!(Icmpv6Packet::new_checked(&out[..]).unwrap().verify_checksum(&src(), &dst()));
                }
            }
        }
    }

    impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
        fn target_addr_if_ndp(&self) -> Option<Ipv6Addr> {
            matches!(self.msg_type(), Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert)
                .then(|| self.target_addr())
        }
    }
}
