//! The echo request we build and the reply parser (through `dataplane::wire` views).

use super::*;

/// Writes payload byte `i`: the run's cookie in the first 8 bytes (when there are 8), then `i`
/// as a byte.
pub(super) fn payload_byte(cookie: u64, i: usize) -> u8 {
    if i < 8 {
        cookie.to_be_bytes()[i]
    } else {
        i as u8
    }
}

/// Builds an echo request with `payload` bytes into `buf` (cleared first) and returns its
/// length.
pub fn build_request(buf: &mut Vec<u8>, ident: u16, seq: u16, payload: usize, cookie: u64) -> usize {
    buf.clear();
    buf.resize(Icmpv4Packet::<&[u8]>::HEADER_LEN + payload, 0);
    // At least the 8-byte header: the view's setters cannot panic.
    let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv4Message::EchoRequest);
    p.set_msg_code(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq);
    for (i, b) in p.data_mut().iter_mut().enumerate() {
        *b = payload_byte(cookie, i);
    }
    p.fill_checksum();
    buf.len()
}

/// A checked echo reply: identifier, sequence and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload.
    pub payload: &'a [u8],
    /// Source address (from the IP header on a raw socket, else from `recvfrom`).
    pub src: Ipv4Addr,
}

/// Why a received packet is not an echo reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Too short.
    Short,
    /// Checksum wrong.
    BadChecksum,
    /// Not an ICMP echo reply.
    OtherType,
}

/// Parses what a socket returned: with `ip_header` (raw socket) an IPv4 packet, else the ICMP
/// message alone (datagram socket); `from` is `recvfrom`'s source address.
///
/// # Errors
/// [`Reject`] with the reason; never panics on any input.
pub fn parse_reply(pkt: &[u8], ip_header: bool, from: Ipv4Addr) -> Result<EchoReply<'_>, Reject> {
    let (icmp, src) = if ip_header {
        if pkt.len() < 20 {
            return Err(Reject::Short);
        }
        // 20 bytes or more: the view's fixed-header getters cannot panic.
        let ip = Ipv4Packet::new_unchecked(pkt);
        if ip.version() != 4 || ip.next_header() != IpProtocol::Icmp {
            return Err(Reject::OtherType);
        }
        let ihl = ip.header_len();
        let total = usize::from(ip.total_len());
        if ihl < 20 || total < ihl || pkt.len() < ihl {
            return Err(Reject::Short);
        }
        let end = total.min(pkt.len());
        (&pkt[ihl..end], ip.src_addr())
    } else {
        (pkt, from)
    };
    let msg = Icmpv4Packet::new_checked(icmp).map_err(|_| Reject::Short)?;
    if msg.msg_type() != Icmpv4Message::EchoReply || msg.msg_code() != 0 {
        return Err(Reject::OtherType);
    }
    if !msg.verify_checksum() {
        return Err(Reject::BadChecksum);
    }
    Ok(EchoReply { ident: msg.echo_ident(), seq: msg.echo_seq_no(), payload: &icmp[8..], src })
}
