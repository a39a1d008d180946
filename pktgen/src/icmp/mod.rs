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

// ---------------------------------------------------------------------------------------
// The socket.

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
    let pid = u64::from(std::process::id());
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

mod message;
mod socket;
mod stats;
#[cfg(test)]
mod tests;
mod tracker;

use message::payload_byte;
pub use message::{build_request, parse_reply, EchoReply, Reject};
use socket::{open_socket, realtime_ns};
#[cfg(test)]
use stats::fmt_g;
use stats::isqrt;
pub use stats::{Ignored, PingStats};
pub use tracker::{Outcome, Tracker};
