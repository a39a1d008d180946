//! Things shared by IPv4, IPv6 and TCP: the protocol number and a small owned options block.

use super::{open_enum, Error};

open_enum! {
    /// IP protocol / IPv6 next-header number (IANA "Assigned Internet Protocol Numbers").
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options (0).
        HopByHop = 0,
        /// ICMP for IPv4 (1).
        Icmp = 1,
        /// IGMP (2).
        Igmp = 2,
        /// IPv4 encapsulated in IP (4).
        IpIp = 4,
        /// TCP (6).
        Tcp = 6,
        /// UDP (17).
        Udp = 17,
        /// IPv6 encapsulated in IP (41).
        Ipv6 = 41,
        /// IPv6 routing header (43).
        Ipv6Route = 43,
        /// IPv6 fragment header (44).
        Ipv6Frag = 44,
        /// GRE (47).
        Gre = 47,
        /// IPsec Encapsulating Security Payload (50).
        Esp = 50,
        /// IPsec Authentication Header (51).
        Ah = 51,
        /// ICMP for IPv6 (58).
        Icmpv6 = 58,
        /// IPv6 "no next header" (59).
        Ipv6NoNxt = 59,
        /// IPv6 destination options (60).
        Ipv6Opts = 60,
        /// SCTP (132).
        Sctp = 132,
    }
}

/// Up to 40 bytes of raw header options (IPv4 options, TCP options), owned and `Copy` so that
/// `Repr`s need no lifetime. Always a multiple of 4 bytes long.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawOptions {
    bytes: [u8; 40],
    len: u8,
}

impl RawOptions {
    /// Most option bytes an IPv4 or TCP header can carry.
    pub const MAX_LEN: usize = 40;

    /// No options.
    pub const EMPTY: RawOptions = RawOptions { bytes: [0; 40], len: 0 };

    /// Copies `bytes`, padding with zeros (End of Option List) to a multiple of 4.
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`] when `bytes` is longer than 40.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > Self::MAX_LEN {
            return Err(Error::ValueTooLarge);
        }
        let mut o = Self::EMPTY;
        o.bytes[..bytes.len()].copy_from_slice(bytes);
        o.len = bytes.len().div_ceil(4) as u8 * 4;
        Ok(o)
    }

    /// The option bytes (a multiple of 4 long).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes (a multiple of 4, at most 40).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when there are no options.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for RawOptions {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl core::fmt::Debug for RawOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RawOptions({:02x?})", self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_open_enum() {
        assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
        assert_eq!(IpProtocol::from(253), IpProtocol::Unknown(253));
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
    }

    #[test]
    fn raw_options_pad_and_bound() {
        let o = RawOptions::new(&[1, 1, 1]).unwrap();
        assert_eq!(o.as_bytes(), &[1, 1, 1, 0]);
        assert_eq!(RawOptions::new(&[0; 40]).unwrap().len(), 40);
        assert_eq!(RawOptions::new(&[0; 41]), Err(Error::ValueTooLarge));
        assert!(RawOptions::default().is_empty());
    }
}
