//! `pktgen`: a traffic generator and receiver on the `dataplane` port backends, an RFC 2544
//! throughput search and a YAML SLA runner.
//!
//! - [`frame`]: frame templates (Ethernet, optional VLAN, IPv4, UDP) carrying a 16-byte
//!   [signature](frame::Signature): magic, flow id, 64-bit sequence number, TX timestamp.
//! - [`seq`]: the exact per-flow sequence tracker (received, lost, duplicated, reordered).
//! - [`hist`]: a fixed-bucket log histogram for latency (no allocation per packet).
//! - [`rx`]: the receiver: parses frames, feeds trackers and histograms, builds a [`rx::Report`].
//! - [`tx`]: the sender: token bucket on the cycle counter, or full speed.
//! - [`ports`]: `--port` specs (null, pcap, af_packet, af_xdp) and opening them.
//! - [`engine`]: one trial (a sender thread and a receiver thread, each optionally inside a
//!   network namespace).
//! - [`rfc2544`]: binary search for the zero-loss throughput per frame size.
//! - [`plot`]: SVG plots with `plotters`.
//! - [`icmp`]: ICMP echo (ping) on a datagram or raw socket, iputils-style summary.
//! - [`sla`]: the YAML SLA suites run by `sla-runner`.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod engine;
pub mod frame;
pub mod hist;
pub mod icmp;
pub mod plot;
pub mod ports;
pub mod rfc2544;
pub mod rx;
pub mod seq;
pub mod sla;
pub mod tx;

/// Nanoseconds of CLOCK_MONOTONIC (the clock every TX timestamp and RX time is taken from, so
/// that a sender and a receiver in different processes on one host agree).
#[allow(unsafe_code)]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// True when `a` is inside 198.18.0.0/15 (RFC 2544 benchmarking space), the only addresses
/// pktgen puts in frames or aims at.
pub fn is_bench_addr(a: std::net::Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 198 && (o[1] & 0xfe) == 18
}
