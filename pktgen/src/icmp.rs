//! ICMP echo ("ping") built in, so that `sla-runner` needs no `ping` binary (its image is
//! `FROM scratch`).
//!
//! The socket is an ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, no
//! privilege: allowed when one of the caller's groups is inside `net.ipv4.ping_group_range`,
//! a per-namespace sysctl Kubernetes lets a pod set) or, failing that, a raw socket
//! (`SOCK_RAW`, needs `CAP_NET_RAW`). With a datagram socket the kernel owns the identifier
//! (the socket's "port") and hands us only replies to it, without the IP header; with a raw
//! socket every ICMP packet of the namespace arrives with its IP header and we filter by
//! source, identifier and a per-run cookie in the payload.
//!
//! `count` requests of `payload` bytes leave every `interval`; a reply is matched to its
//! request by identifier and sequence number (16 bits, so a window of 65536 requests is kept,
//! fixed size whatever `count` is). After the last request the run waits up to `timeout` for
//! the replies still missing; a late reply to an earlier request counts, as with iputils.
//! Anything else that arrives is ignored and counted by reason ([`Ignored`]). The summary
//! ([`PingStats`]) is computed the way iputils' `ping` computes its own: integer
//! microseconds, duplicates included in the RTT figures, `mdev` the integer square root of
//! the integer variance, loss as a `float` percentage (see [`PingStats::summary`]). Like
//! iputils, an RTT runs from the CLOCK_REALTIME time just before `sendto` to the kernel's
//! receive timestamp (`SO_TIMESTAMPNS`), so the pinger's own wake-up delay is not in it. One
//! difference: iputils times a reply from a timestamp it puts in the payload and so reports no
//! RTT below 16 payload bytes; we keep the send times in a table and time every size.
#![allow(unsafe_code)]

use dataplane::wire::{Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// ICMP echo reply type.
pub const ECHO_REPLY: u8 = 0;
/// ICMP echo request type.
pub const ECHO_REQUEST: u8 = 8;
/// Largest payload of one echo request over IPv4 (65535 - 20 - 8).
pub const MAX_PAYLOAD: usize = 65507;
/// Sequence numbers are 16 bits: the window of requests a reply can be matched to.
const WINDOW: usize = 1 << 16;
const NOT_SENT: u32 = u32::MAX;

/// Which ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    /// Datagram socket, else raw socket.
    #[default]
    Auto,
    /// Datagram socket only (`net.ipv4.ping_group_range`).
    Dgram,
    /// Raw socket only (`CAP_NET_RAW`).
    Raw,
}

/// One ping run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingConfig {
    /// Destination.
    pub target: Ipv4Addr,
    /// Echo requests to send (at least 1).
    pub count: u32,
    /// ICMP payload bytes (`ping -s`), at most [`MAX_PAYLOAD`].
    pub payload: usize,
    /// Between two requests.
    pub interval: Duration,
    /// How long to wait for missing replies after the last request (`ping -W`).
    pub timeout: Duration,
    /// Socket kind.
    pub socket: SocketKind,
}

impl PingConfig {
    /// `count` requests of 56 payload bytes, one a second, 1 s timeout, any socket.
    pub fn new(target: Ipv4Addr, count: u32) -> Self {
        PingConfig {
            target,
            count,
            payload: 56,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            socket: SocketKind::Auto,
        }
    }
}

/// Why no ping ran.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// A configuration value out of range.
    #[error("ping: {0}")]
    Config(String),
    /// No ICMP socket could be opened; the message says what would allow one.
    #[error("ping: no ICMP socket: {0}")]
    Socket(String),
    /// Waiting for the socket failed.
    #[error("ping: poll: {0}")]
    Poll(io::Error),
}

/// Packets that arrived and were ignored, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// Shorter than an IPv4 header (raw) or an ICMP header, or an IP total shorter than its header.
    pub short: u64,
    /// ICMP checksum wrong.
    pub bad_checksum: u64,
    /// Not an echo reply (another ICMP type, our own requests on a raw socket, not IPv4/ICMP).
    pub other_type: u64,
    /// An echo reply for someone else: another identifier, source address or run cookie.
    pub foreign: u64,
    /// Our identifier but a sequence number we never sent.
    pub unknown_seq: u64,
    /// Our identifier and sequence but a payload of the wrong length or content.
    pub bad_data: u64,
}

impl Ignored {
    /// Sum of every reason.
    pub fn total(&self) -> u64 {
        self.short + self.bad_checksum + self.other_type + self.foreign + self.unknown_seq + self.bad_data
    }
}

/// A ping run's outcome, as iputils summarises it, plus what was ignored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingStats {
    /// Destination.
    pub target: Ipv4Addr,
    /// Socket used: "dgram" or "raw".
    pub socket: &'static str,
    /// Requests sent (including those `sendto` refused, as iputils counts them).
    pub transmitted: u32,
    /// Distinct requests answered.
    pub received: u32,
    /// Further replies to an already answered request.
    pub duplicates: u32,
    /// `sendto`/`recvfrom` errors (ICMP errors, no route, ...).
    pub errors: u32,
    /// The first such error, as text.
    pub first_error: Option<String>,
    /// (transmitted - received) / transmitted, percent, rounded to a C `float` as iputils does.
    pub loss_pct: f64,
    /// From the first request to the last packet sent or received, ms (rounded).
    pub time_ms: u64,
    /// Minimum RTT, ms (with µs resolution); None without replies.
    pub min_ms: Option<f64>,
    /// Average RTT, ms.
    pub avg_ms: Option<f64>,
    /// Maximum RTT, ms.
    pub max_ms: Option<f64>,
    /// Mean deviation (standard deviation), ms.
    pub mdev_ms: Option<f64>,
    /// Ignored packets by reason.
    pub ignored: Ignored,
    #[serde(skip)]
    rtt_us: [i64; 4],
}

/// Writes payload byte `i`: the run's cookie in the first 8 bytes (when there are 8), then `i`
/// as a byte.
fn payload_byte(cookie: u64, i: usize) -> u8 {
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

/// What [`Tracker::on_reply`] made of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First reply to request `index`, after `rtt_us`.
    Matched {
        /// Request index (0-based).
        index: u32,
        /// Round trip, µs.
        rtt_us: i64,
    },
    /// Another reply to an answered request (timed too, as iputils does).
    Duplicate,
    /// Ignored; counted in [`Ignored`].
    Ignored,
}

/// Request/reply bookkeeping and the iputils statistics. Fixed size (the 65536-entry sequence
/// window); nothing allocates per packet.
#[derive(Debug)]
pub struct Tracker {
    target: Ipv4Addr,
    ident: Option<u16>,
    payload: usize,
    cookie: u64,
    /// Per sequence number: index of the last request sent with it, or NOT_SENT.
    sent_index: Vec<u32>,
    /// Per sequence number: its send time, ns.
    sent_ns: Vec<u64>,
    /// Per sequence number: index + 1 of the request answered, 0 when none.
    answered: Vec<u32>,
    transmitted: u32,
    received: u32,
    duplicates: u32,
    errors: u32,
    first_error: Option<String>,
    ignored: Ignored,
    tsum: i64,
    tsum2: i64,
    tmin: i64,
    tmax: i64,
}

impl Tracker {
    /// A tracker for replies from `target` with `payload` bytes carrying `cookie`. The
    /// identifier is set by [`Tracker::set_ident`] (a datagram socket learns it after binding).
    pub fn new(target: Ipv4Addr, payload: usize, cookie: u64) -> Self {
        Tracker {
            target,
            ident: None,
            payload,
            cookie,
            sent_index: vec![NOT_SENT; WINDOW],
            sent_ns: vec![0; WINDOW],
            answered: vec![0; WINDOW],
            transmitted: 0,
            received: 0,
            duplicates: 0,
            errors: 0,
            first_error: None,
            ignored: Ignored::default(),
            tsum: 0,
            tsum2: 0,
            tmin: i64::MAX,
            tmax: 0,
        }
    }

    /// The identifier replies must carry.
    pub fn set_ident(&mut self, ident: u16) {
        self.ident = Some(ident);
    }

    /// Requests sent so far (the next request's index).
    pub fn transmitted(&self) -> u32 {
        self.transmitted
    }

    /// Distinct requests answered so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Records request number `transmitted()` (sequence `transmitted() as u16`) sent at `now_ns`.
    pub fn on_send(&mut self, now_ns: u64) {
        let i = self.transmitted;
        let s = usize::from(i as u16);
        self.sent_index[s] = i;
        self.sent_ns[s] = now_ns;
        self.answered[s] = 0;
        self.transmitted += 1;
    }

    /// Records a failed send or receive.
    pub fn on_error(&mut self, e: &io::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Records a rejected packet.
    pub fn on_reject(&mut self, r: Reject) {
        match r {
            Reject::Short => self.ignored.short += 1,
            Reject::BadChecksum => self.ignored.bad_checksum += 1,
            Reject::OtherType => self.ignored.other_type += 1,
        }
    }

    /// Matches a parsed reply received at `now_ns`.
    pub fn on_reply(&mut self, r: &EchoReply<'_>, now_ns: u64) -> Outcome {
        if r.src != self.target || self.ident != Some(r.ident) {
            self.ignored.foreign += 1;
            return Outcome::Ignored;
        }
        let s = usize::from(r.seq);
        // Another run that happens to share the identifier (raw sockets see every reply).
        if self.payload >= 8 && r.payload.len() >= 8 && r.payload[..8] != self.cookie.to_be_bytes() {
            self.ignored.foreign += 1;
            return Outcome::Ignored;
        }
        let index = self.sent_index[s];
        if index == NOT_SENT {
            self.ignored.unknown_seq += 1;
            return Outcome::Ignored;
        }
        let good = r.payload.len() == self.payload
            && r.payload.iter().enumerate().all(|(i, b)| *b == payload_byte(self.cookie, i));
        if !good {
            self.ignored.bad_data += 1;
            return Outcome::Ignored;
        }
        // Microseconds, truncated, as iputils' triptime; never negative.
        let rtt_us = (now_ns.saturating_sub(self.sent_ns[s]) / 1000) as i64;
        self.add_rtt(rtt_us);
        if self.answered[s] == index + 1 {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        self.answered[s] = index + 1;
        self.received += 1;
        Outcome::Matched { index, rtt_us }
    }

    fn add_rtt(&mut self, t: i64) {
        self.tsum += t;
        self.tsum2 += t * t;
        self.tmin = self.tmin.min(t);
        self.tmax = self.tmax.max(t);
    }

    /// The summary after `elapsed_ns` (first request to last packet) on a `socket` socket.
    pub fn stats(&self, socket: &'static str, elapsed_ns: u64) -> PingStats {
        let tx = self.transmitted;
        let lost = f64::from(tx.saturating_sub(self.received));
        let loss = if tx == 0 { 0.0 } else { f64::from((lost * 100.0 / f64::from(tx)) as f32) };
        let timed = i64::from(self.received) + i64::from(self.duplicates);
        let mut rtt_us = [0i64; 4];
        let ms = |us: i64| Some(us as f64 / 1000.0);
        let (min_ms, avg_ms, max_ms, mdev_ms) = if self.received > 0 {
            let avg = self.tsum / timed;
            // iputils' order of operations (the first form avoids rounding for small times).
            let var = if self.tsum < i64::from(i32::MAX) {
                (self.tsum2 - (self.tsum * self.tsum) / timed) / timed
            } else {
                self.tsum2 / timed - avg * avg
            };
            let mdev = isqrt(var);
            rtt_us = [self.tmin, avg, self.tmax, mdev];
            (ms(self.tmin), ms(avg), ms(self.tmax), ms(mdev))
        } else {
            (None, None, None, None)
        };
        PingStats {
            target: self.target,
            socket,
            transmitted: tx,
            received: self.received,
            duplicates: self.duplicates,
            errors: self.errors,
            first_error: self.first_error.clone(),
            loss_pct: loss,
            time_ms: (elapsed_ns + 500_000) / 1_000_000,
            min_ms,
            avg_ms,
            max_ms,
            mdev_ms,
            ignored: self.ignored,
            rtt_us,
        }
    }
}

/// Integer square root by Newton's method exactly as iputils' `llsqrt` (for `a = k² - 1` it
/// returns `k`, otherwise the floor root; 0 for `a <= 0`).
fn isqrt(a: i64) -> i64 {
    if a <= 0 {
        return 0;
    }
    let (mut x, mut prev) = (a, i64::MAX);
    while x < prev {
        prev = x;
        x = (x + a / x) / 2;
    }
    x
}

/// C's `%g` (6 significant digits, trailing zeros removed) for a non-negative finite value.
fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let e = v.abs().log10().floor() as i32;
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..6).contains(&e) {
        let m = v / 10f64.powi(e);
        // Rounding may carry the mantissa to 10.
        let (m, e) = if format!("{m:.5}").starts_with("10") { (m / 10.0, e + 1) } else { (m, e) };
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(format!("{m:.5}")), e.abs());
    }
    trim(format!("{v:.*}", (5 - e).max(0) as usize))
}

impl PingStats {
    /// iputils' closing lines:
    ///
    /// ```text
    /// --- 198.18.0.2 ping statistics ---
    /// 5 packets transmitted, 4 received, +1 duplicates, 20% packet loss, time 812ms
    /// rtt min/avg/max/mdev = 0.031/0.045/0.071/0.012 ms
    /// ```
    ///
    /// (iputils' "+N corrupted" is not printed: we ignore and count bad replies in
    /// [`PingStats::ignored`] instead.)
    pub fn summary(&self) -> String {
        let mut s = format!(
            "--- {} ping statistics ---\n{} packets transmitted, {} received",
            self.target, self.transmitted, self.received
        );
        if self.duplicates > 0 {
            s += &format!(", +{} duplicates", self.duplicates);
        }
        if self.errors > 0 {
            s += &format!(", +{} errors", self.errors);
        }
        if self.transmitted > 0 {
            s += &format!(", {}% packet loss, time {}ms", fmt_g(self.loss_pct), self.time_ms);
        }
        s.push('\n');
        if self.received > 0 {
            let f = |us: i64| format!("{}.{:03}", us / 1000, us % 1000);
            let [a, b, c, d] = self.rtt_us;
            s += &format!("rtt min/avg/max/mdev = {}/{}/{}/{} ms\n", f(a), f(b), f(c), f(d));
        }
        s
    }
}

// ---------------------------------------------------------------------------------------
// The socket.

struct Socket {
    fd: i32,
    kind: &'static str,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: fd is a socket this struct opened and owns; closed once, here.
        unsafe { libc::close(self.fd) };
    }
}

fn open(kind: i32) -> io::Result<i32> {
    // SAFETY: socket(2) with constant arguments; returns a new fd or -1.
    let fd =
        unsafe { libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // Kernel receive timestamps, as iputils asks for: the RTT then ends when the reply arrived,
    // not when this process got to run. Best effort (without it: the time recvmsg returned).
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on our fd with a valid c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// CLOCK_REALTIME in ns, the clock of SO_TIMESTAMPNS (send and receive times must share it).
fn realtime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn group_range() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| format!("\"{}\"", s.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn open_socket(kind: SocketKind) -> Result<Socket, PingError> {
    let dgram_err = if kind == SocketKind::Raw {
        None
    } else {
        match open(libc::SOCK_DGRAM) {
            Ok(fd) => return Ok(Socket { fd, kind: "dgram" }),
            Err(e) => Some(e),
        }
    };
    // SAFETY: getegid(2) cannot fail.
    let gid = unsafe { libc::getegid() };
    let dgram_msg = |e: &io::Error| {
        format!(
            "datagram ICMP socket refused ({e}): group {gid} is not in net.ipv4.ping_group_range = {} \
             (set it to include {gid}: sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\", or in Kubernetes \
             securityContext.sysctls)",
            group_range()
        )
    };
    if kind == SocketKind::Dgram {
        return Err(PingError::Socket(dgram_msg(dgram_err.as_ref().expect("set above"))));
    }
    match open(libc::SOCK_RAW) {
        Ok(fd) => Ok(Socket { fd, kind: "raw" }),
        Err(e) => {
            let raw = format!("raw ICMP socket refused ({e}): needs CAP_NET_RAW");
            Err(PingError::Socket(match dgram_err {
                Some(d) => format!("{}; {raw}", dgram_msg(&d)),
                None => raw,
            }))
        }
    }
}

fn sockaddr(a: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(a).to_be() },
        sin_zero: [0; 8],
    }
}

impl Socket {
    fn send(&self, pkt: &[u8], to: Ipv4Addr) -> io::Result<()> {
        let sa = sockaddr(to);
        // SAFETY: pkt is a valid buffer of pkt.len() bytes; sa is a sockaddr_in of the given size.
        let n = unsafe {
            libc::sendto(
                self.fd,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// One packet into `buf`, or None when none is waiting: its length, source and receive
    /// time (CLOCK_REALTIME ns: the kernel's timestamp, else now).
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Ipv4Addr, u64)>> {
        let mut sa = sockaddr(Ipv4Addr::UNSPECIFIED);
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // u64s: aligned for cmsghdr; room for one timespec message and more.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header, filled in below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at buffers (name, iov over buf, control) that outlive the call.
        let n = unsafe { libc::recvmsg(self.fd, &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut at = None;
        // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !c.is_null() {
            // SAFETY: c is a valid cmsghdr inside control (checked non-null above).
            let h = unsafe { &*c };
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
                // SAFETY: an SCM_TIMESTAMPNS message carries one timespec; read_unaligned as
                // CMSG_DATA need not be aligned for it.
                let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                at = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            // SAFETY: as above.
            c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
        }
        let from = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
        Ok(Some((n as usize, from, at.unwrap_or_else(realtime_ns))))
    }

    /// The identifier the kernel gave a datagram socket (its local port, known after a send).
    fn local_port(&self) -> io::Result<u16> {
        let mut sa = sockaddr(Ipv4Addr::UNSPECIFIED);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: sa/len describe a sockaddr_in we own.
        let r = unsafe { libc::getsockname(self.fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(u16::from_be(sa.sin_port))
        }
    }

    /// Waits until readable or `ns` elapsed.
    fn wait(&self, ns: u64) -> Result<(), PingError> {
        let mut p = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as _ };
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let r = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(PingError::Poll(e));
            }
        }
        Ok(())
    }
}

fn check(cfg: &PingConfig) -> Result<(), PingError> {
    if cfg.count == 0 {
        return Err(PingError::Config("count must be at least 1".into()));
    }
    if cfg.payload > MAX_PAYLOAD {
        return Err(PingError::Config(format!("payload {} is over {MAX_PAYLOAD} bytes", cfg.payload)));
    }
    if cfg.interval.is_zero() {
        return Err(PingError::Config("interval must be > 0".into()));
    }
    if cfg.target.is_unspecified() || cfg.target.is_broadcast() || cfg.target.is_multicast() {
        return Err(PingError::Config(format!("target {} is not a unicast address", cfg.target)));
    }
    Ok(())
}

/// Pings `cfg.target`: opens the socket, sends `count` requests every `interval`, collects
/// replies until all are in or `timeout` after the last request, and summarises.
///
/// # Errors
/// [`PingError`]: a bad configuration, no socket (the message says which sysctl or capability
/// would give one), or a failing `ppoll`. Failed sends, lost replies and stray packets are not
/// errors: they are in the [`PingStats`].
pub fn ping(cfg: &PingConfig) -> Result<PingStats, PingError> {
    check(cfg)?;
    let sock = open_socket(cfg.socket)?;
    let raw = sock.kind == "raw";
    let start = crate::now_ns();
    // SAFETY: getpid(2) cannot fail.
    let pid = unsafe { libc::getpid() } as u64;
    let cookie = splitmix64(start ^ (pid << 40) ^ RUNS.fetch_add(1, Ordering::Relaxed).rotate_left(20));
    let mut t = Tracker::new(cfg.target, cfg.payload, cookie);
    // A raw socket's identifier is ours to choose; a datagram socket's is the kernel's.
    let mut ident = (cookie >> 48) as u16;
    let mut ident_known = raw;
    if raw {
        t.set_ident(ident);
    }
    let mut out = Vec::with_capacity(8 + cfg.payload);
    let mut buf = vec![0u8; 65536];
    let interval = cfg.interval.as_nanos() as u64;
    let timeout = cfg.timeout.as_nanos() as u64;
    let mut next = start;
    let mut last_event = start;
    loop {
        let now = crate::now_ns();
        if t.transmitted() < cfg.count && now >= next {
            build_request(&mut out, ident, t.transmitted() as u16, cfg.payload, cookie);
            t.on_send(realtime_ns());
            last_event = now;
            match sock.send(&out, cfg.target) {
                Ok(()) if !raw && !ident_known => {
                    // The kernel bound the socket on this first successful send.
                    ident = sock.local_port().map_err(|e| PingError::Socket(format!("getsockname: {e}")))?;
                    t.set_ident(ident);
                    ident_known = true;
                }
                Ok(()) => {}
                Err(e) => t.on_error(&e),
            }
            next = next.saturating_add(interval);
        }
        let done_sending = t.transmitted() >= cfg.count;
        let deadline = last_send_deadline(done_sending, next, interval, timeout);
        if done_sending && (t.received() >= cfg.count || now >= deadline) {
            break;
        }
        let until = if done_sending { deadline } else { next };
        sock.wait(until.saturating_sub(crate::now_ns()))?;
        loop {
            match sock.recv(&mut buf) {
                Ok(None) => break,
                Ok(Some((n, from, at))) => match parse_reply(&buf[..n], raw, from) {
                    Ok(r) => {
                        if t.on_reply(&r, at) != Outcome::Ignored {
                            last_event = crate::now_ns();
                        }
                    }
                    Err(r) => t.on_reject(r),
                },
                Err(e) => t.on_error(&e),
            }
        }
    }
    Ok(t.stats(sock.kind, last_event - start))
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// SplitMix64's finaliser: every input bit reaches every output bit.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// After the last request (sent at `next - interval`), replies are awaited `timeout` longer.
fn last_send_deadline(done: bool, next: u64, interval: u64, timeout: u64) -> u64 {
    if done {
        next.saturating_sub(interval).saturating_add(timeout)
    } else {
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::checksum::checksum;

    const T: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// An echo reply to what `build_request` built: type 0, checksum fixed up.
    fn reply_to(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = ECHO_REPLY;
        r[2..4].fill(0);
        let c = checksum(&r);
        r[2..4].copy_from_slice(&c.to_be_bytes());
        r
    }

    fn with_ip(icmp: &[u8], src: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        p[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&[198, 18, 0, 1]);
        p.extend_from_slice(icmp);
        p
    }

    #[test]
    fn checksum_matches_rfc1071_examples() {
        // RFC 1071 section 3's example words sum to 0xddf2; the checksum is its complement.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        assert_eq!(checksum(&[]), 0xffff);
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&[0x01]), !0x0100);
        let mut b = Vec::new();
        build_request(&mut b, 0x1234, 7, 13, 42);
        assert_eq!(checksum(&b), 0, "a built request checks out");
        assert_eq!(&b[..8], &[8, 0, b[2], b[3], 0x12, 0x34, 0, 7]);
        assert_eq!(b.len(), 21);
    }

    #[test]
    fn parses_replies_with_and_without_ip_header() {
        let mut b = Vec::new();
        build_request(&mut b, 9, 3, 20, 1);
        let r = reply_to(&b);
        let p = parse_reply(&r, false, T).unwrap();
        assert_eq!((p.ident, p.seq, p.payload.len(), p.src), (9, 3, 20, T));
        let ip = with_ip(&r, Ipv4Addr::new(198, 18, 9, 9));
        let p = parse_reply(&ip, true, Ipv4Addr::UNSPECIFIED).unwrap();
        assert_eq!((p.ident, p.seq, p.src), (9, 3, Ipv4Addr::new(198, 18, 9, 9)));
        // Trailing bytes beyond the IP total length are not payload.
        let mut padded = ip.clone();
        padded.extend_from_slice(&[0xee; 6]);
        assert_eq!(parse_reply(&padded, true, T).unwrap().payload.len(), 20);
    }

    #[test]
    fn bad_replies_are_rejected_by_reason() {
        let mut b = Vec::new();
        build_request(&mut b, 9, 3, 20, 1);
        let r = reply_to(&b);
        assert_eq!(parse_reply(&r[..7], false, T), Err(Reject::Short));
        assert_eq!(parse_reply(&[0x45; 19], true, T), Err(Reject::Short));
        assert_eq!(parse_reply(&b, false, T), Err(Reject::OtherType), "our own request");
        let mut bad = r.clone();
        bad[10] ^= 1;
        assert_eq!(parse_reply(&bad, false, T), Err(Reject::BadChecksum));
        let mut ip = with_ip(&r, T);
        ip[9] = 17;
        assert_eq!(parse_reply(&ip, true, T), Err(Reject::OtherType), "not ICMP");
        let mut ip = with_ip(&r, T);
        ip[0] = 0x4f;
        assert_eq!(parse_reply(&ip, true, T), Err(Reject::Short), "IHL beyond the packet");
        let mut ip = with_ip(&r, T);
        ip[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(parse_reply(&ip, true, T), Err(Reject::Short), "total cuts the ICMP header");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x1234_5678u32;
        for n in 0..400 {
            let v: Vec<u8> = (0..n % 90)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_reply(&v, true, T);
            let _ = parse_reply(&v, false, T);
        }
    }

    fn tracker(payload: usize) -> Tracker {
        let mut t = Tracker::new(T, payload, 77);
        t.set_ident(5);
        t
    }

    fn reply(seq: u16, payload: usize) -> Vec<u8> {
        let mut b = Vec::new();
        build_request(&mut b, 5, seq, payload, 77);
        reply_to(&b)
    }

    #[test]
    fn replies_match_by_identifier_and_sequence() {
        let mut t = tracker(16);
        for i in 0..3 {
            t.on_send(1_000_000 * i);
        }
        let r1 = reply(1, 16);
        let p = parse_reply(&r1, false, T).unwrap();
        assert_eq!(t.on_reply(&p, 1_000_000 + 250_400), Outcome::Matched { index: 1, rtt_us: 250 });
        assert_eq!(t.on_reply(&p, 1_000_000 + 300_000), Outcome::Duplicate);
        // Out of order is fine.
        let r0 = reply(0, 16);
        let p = parse_reply(&r0, false, T).unwrap();
        assert_eq!(t.on_reply(&p, 2_000_000), Outcome::Matched { index: 0, rtt_us: 2000 });
        // Never sent, another identifier, another source, wrong payload: ignored and counted.
        let r9 = reply(9, 16);
        assert_eq!(t.on_reply(&parse_reply(&r9, false, T).unwrap(), 0), Outcome::Ignored);
        let mut other = Vec::new();
        build_request(&mut other, 6, 2, 16, 77);
        let other = reply_to(&other);
        assert_eq!(t.on_reply(&parse_reply(&other, false, T).unwrap(), 0), Outcome::Ignored);
        let r2 = reply(2, 16);
        let elsewhere = parse_reply(&r2, false, Ipv4Addr::new(198, 18, 0, 3)).unwrap();
        assert_eq!(t.on_reply(&elsewhere, 0), Outcome::Ignored);
        let short = reply(2, 15);
        assert_eq!(t.on_reply(&parse_reply(&short, false, T).unwrap(), 0), Outcome::Ignored);
        let mut cookie = Vec::new();
        build_request(&mut cookie, 5, 2, 16, 78);
        let cookie = reply_to(&cookie);
        assert_eq!(t.on_reply(&parse_reply(&cookie, false, T).unwrap(), 0), Outcome::Ignored);
        let mut data = reply(2, 16);
        data[8 + 12] ^= 0xff;
        data[2..4].fill(0);
        let c = checksum(&data);
        data[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(t.on_reply(&parse_reply(&data, false, T).unwrap(), 0), Outcome::Ignored);
        t.on_reject(Reject::Short);
        t.on_reject(Reject::BadChecksum);
        t.on_reject(Reject::OtherType);
        let s = t.stats("dgram", 2_000_000);
        assert_eq!((s.transmitted, s.received, s.duplicates), (3, 2, 1));
        assert_eq!(
            s.ignored,
            Ignored { short: 1, bad_checksum: 1, other_type: 1, foreign: 3, unknown_seq: 1, bad_data: 2 }
        );
        assert_eq!(s.ignored.total(), 9);
    }

    #[test]
    fn sequence_numbers_wrap_to_the_latest_request() {
        let mut t = tracker(0);
        for i in 0..70_000u64 {
            t.on_send(i);
        }
        // Sequence 3 was last used by request 65539.
        let r = reply(3, 0);
        assert_eq!(
            t.on_reply(&parse_reply(&r, false, T).unwrap(), 70_000_000),
            Outcome::Matched { index: 65_539, rtt_us: 69_934 }
        );
        assert_eq!(t.on_reply(&parse_reply(&r, false, T).unwrap(), 70_000_000), Outcome::Duplicate);
    }

    /// The iputils arithmetic done by hand: RTTs 31, 45, 71, 33 µs + a 60 µs duplicate out of 5.
    #[test]
    fn summary_is_iputils_arithmetic() {
        let mut t = tracker(8);
        for i in 0..5 {
            t.on_send(i * 200_000_000);
        }
        for (seq, rtt_us) in [(0u16, 31u64), (1, 45), (2, 71), (3, 33), (3, 60)] {
            let r = reply(seq, 8);
            t.on_reply(&parse_reply(&r, false, T).unwrap(), u64::from(seq) * 200_000_000 + rtt_us * 1000 + 999);
        }
        let s = t.stats("raw", 812_400_000);
        // tsum = 240 over 5 timed replies: avg 48; tsum2 = 12716: var = (12716 - 57600/5)/5 = 1196/5 = 239,
        // mdev = isqrt(239) = 15.
        assert_eq!((s.min_ms, s.avg_ms, s.max_ms, s.mdev_ms), (Some(0.031), Some(0.048), Some(0.071), Some(0.015)));
        assert_eq!(s.loss_pct, 20.0);
        assert_eq!(
            s.summary(),
            "--- 198.18.0.2 ping statistics ---\n5 packets transmitted, 4 received, +1 duplicates, 20% packet loss, \
             time 812ms\nrtt min/avg/max/mdev = 0.031/0.048/0.071/0.015 ms\n"
        );
        // Large times take iputils' other branch: avg and var from the quotients.
        let mut t = tracker(0);
        for i in 0..3 {
            t.on_send(i);
        }
        for (seq, us) in [(0u16, 900_000_000u64), (1, 1_200_000_000), (2, 1_500_000_000)] {
            let r = reply(seq, 0);
            t.on_reply(&parse_reply(&r, false, T).unwrap(), u64::from(seq) + us * 1000);
        }
        let s = t.stats("raw", 0);
        // tsum = 3.6e9 µs > INT_MAX: avg = 1.2e9, var = tsum2/3 - avg^2 = 1.5e18 - 1.44e18 = 6e16.
        assert_eq!(s.mdev_ms, Some(f64::from(244_948_974u32) / 1000.0));
        assert!(s.summary().ends_with("rtt min/avg/max/mdev = 900000.000/1200000.000/1500000.000/244948.974 ms\n"));
    }

    #[test]
    fn no_reply_means_full_loss_and_no_rtt_line() {
        let mut t = tracker(56);
        for i in 0..3 {
            t.on_send(i);
        }
        t.on_error(&io::Error::from_raw_os_error(libc::ENETUNREACH));
        let s = t.stats("dgram", 2_000_400_000);
        assert_eq!((s.received, s.loss_pct, s.min_ms, s.errors), (0, 100.0, None, 1));
        assert_eq!(
            s.summary(),
            "--- 198.18.0.2 ping statistics ---\n3 packets transmitted, 0 received, +1 errors, 100% packet loss, \
             time 2000ms\n"
        );
        assert!(s.first_error.unwrap().contains("unreachable"));
    }

    #[test]
    fn loss_is_printed_like_printf_g() {
        for (v, s) in [
            (0.0, "0"),
            (20.0, "20"),
            (100.0, "100"),
            (33.333_332_061_767_58, "33.3333"),
            (0.5, "0.5"),
            (0.066_666_670_143_604_28, "0.0666667"),
            (2.777_777_7e-5, "2.77778e-05"),
            (99.999_9, "99.9999"),
            (99.999_999, "100"),
        ] {
            assert_eq!(fmt_g(v), s, "{v}");
        }
        // One in three lost, through the f32 rounding.
        let mut t = tracker(0);
        for i in 0..3 {
            t.on_send(i);
        }
        for seq in [0u16, 1] {
            t.on_reply(&parse_reply(&reply(seq, 0), false, T).unwrap(), 10_000);
        }
        assert!(t.stats("raw", 0).summary().contains(", 33.3333% packet loss"));
    }

    #[test]
    fn isqrt_is_iputils_llsqrt() {
        // Newton's iteration stops one step late, as iputils' does: a = k^2 - 1 gives k, every
        // other a its floor root.
        for a in (0i64..5000).chain([1 << 40, (1 << 40) - 1, i64::MAX / 4]) {
            let r = isqrt(a);
            let floor = (a as f64).sqrt().floor() as i64;
            let k = floor + 1;
            let want = if k * k - 1 == a && a > 0 { k } else { floor };
            assert_eq!(r, want, "{a}");
        }
        assert_eq!((isqrt(3), isqrt(8), isqrt(239), isqrt(-5)), (2, 3, 15, 0));
    }

    #[test]
    fn bad_configs_are_errors() {
        let ok = PingConfig::new(T, 1);
        for (c, what) in [
            (PingConfig { count: 0, ..ok }, "count"),
            (PingConfig { payload: MAX_PAYLOAD + 1, ..ok }, "payload"),
            (PingConfig { interval: Duration::ZERO, ..ok }, "interval"),
            (PingConfig { target: Ipv4Addr::BROADCAST, ..ok }, "unicast"),
        ] {
            let e = ping(&c).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }
}
