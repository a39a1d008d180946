//! The limits of the forwarding modes' options, checked in one step ([`check`]) once the
//! command line is parsed and the lcore plan made, before anything is opened: no mbuf pool,
//! port, socket, XDP program, file or metrics listener exists yet when a limit fails, and the
//! failure is a usage error (exit 2) whose message names the option and the limit. (Limits of
//! a single value, such as a port spec's keys, are checked where the value is parsed.)
//!
//! # The mbuf pool
//! Sized the way DPDK's l3fwd sizes its pool (`NB_MBUF` in `examples/l3fwd/main.c`): what
//! the receive rings hold, plus a burst per lcore and port, plus what the transmit rings can
//! hold, plus a cache per lcore. [`MbufNeed`] has two figures:
//! - the **minimum**, below which a worker can wait for an mbuf that never comes back: the
//!   mbufs lent to receive rings for as long as they are open (an AF_XDP fill ring, a NIC's
//!   receive descriptors), and per lcore one receive burst plus a transmit buffer of
//!   `--tx-burst` for each enabled port. `--mbufs` below it is an error.
//! - **DPDK's count**, which adds what transmit rings may hold until the device is done with
//!   it and each lcore's mempool cache (up to 1.5 × [`DEFAULT_CACHE`] stranded in another
//!   lcore's cache). `--mbufs` below it is a warning: forwarding can stall while the
//!   transmit rings are full.
//!
//! Without `--mbufs` the pool gets DPDK's count, and at least [`DEFAULT_MBUFS`].

use crate::lcores::Plan;
use crate::ports::PortSpec;
use dataplane::burst::MAX_BURST;
use dataplane::mbuf::DEFAULT_CACHE;
use std::net::ToSocketAddrs;

/// Bytes of frame an mbuf of the VNF's pool holds: a 2048-byte chunk less the mbuf header
/// and the headroom (1728). A frame is one mbuf, so no port, generator or `--max-pkt-len` can
/// go beyond it.
pub const DATA_ROOM: usize = dataplane::mbuf::DEFAULT_DATA_ROOM;
/// The data room of DPDK's mbufs (`RTE_MBUF_DEFAULT_DATAROOM`), for DPDK ports.
pub const DPDK_DATA_ROOM: usize = 2048;
/// The longest statistics period, DPDK l2fwd's `MAX_TIMER_PERIOD` (one day).
pub const MAX_STATS_PERIOD: u64 = 86400;
/// The longest `--idle-sleep-us` (what `Lcore::set_idle_sleep_us` takes).
pub const MAX_IDLE_SLEEP_US: u64 = 1_000_000;
/// The pool size without `--mbufs`, unless the ports need more.
pub const DEFAULT_MBUFS: u32 = 16384;
/// The largest pool a `Mempool` takes (2^28).
pub const MAX_MBUFS: u32 = 1 << 28;
/// Descriptors per queue of a DPDK port (`DpdkPortConfig`'s default) and of a native PCI port
/// without `rxd=`/`txd=` (`PciPortConfig`'s).
const RING_1024: u32 = 1024;
/// AF_XDP's rx and tx rings (`AfXdpConfig::new`; the fill ring, what a queue lends, is
/// `af_xdp::DEFAULT_FILL_SIZE`), AF_PACKET's tx frames
/// (`AfPacketConfig::new`) and a ring port's ring (`ports::open`).
const AF_XDP_RING: u32 = 2048;
const AF_PACKET_TX_FRAMES: u32 = 1024;
const RING_PORT_RING: u32 = 1024;

/// The data room of the mbufs the ports will use: DPDK's for DPDK ports (they cannot be
/// mixed with native ones), ours otherwise.
pub fn data_room(specs: &[PortSpec]) -> usize {
    if specs.iter().any(PortSpec::is_dpdk) {
        DPDK_DATA_ROOM
    } else {
        DATA_ROOM
    }
}

/// A ring of a port: entries, and the key that sets it (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ring {
    entries: u32,
    key: &'static str,
}

/// What one port, as its spec says, takes from the pool and what its rings hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortRings {
    rx_queues: u32,
    tx_queues: u32,
    /// Mbufs lent to each rx queue for as long as it is open.
    rx_lent: u32,
    /// Mbufs a tx queue can hold until the device (or the peer of a ring) is done with them.
    tx_held: u32,
    rx_ring: Option<Ring>,
    tx_ring: Option<Ring>,
    /// Its rx queues are fed by a NIC or the kernel (RSS, fanout): an rx queue nobody polls
    /// loses what is steered to it.
    steered: bool,
}

fn port_rings(spec: &PortSpec, plan: &Plan, port: u16) -> PortRings {
    let none =
        PortRings { rx_queues: 1, tx_queues: 1, rx_lent: 0, tx_held: 0, rx_ring: None, tx_ring: None, steered: false };
    let q = |queues: u16| u32::from(queues.max(1));
    match spec {
        PortSpec::Null { queues, .. } => PortRings { rx_queues: q(*queues), tx_queues: q(*queues), ..none },
        PortSpec::Pcap { rx, tx } => {
            PortRings { rx_queues: u32::from(rx.is_some()), tx_queues: u32::from(tx.is_some()), ..none }
        }
        PortSpec::Ring => PortRings {
            tx_held: RING_PORT_RING,
            tx_ring: Some(Ring { entries: RING_PORT_RING, key: "its ring" }),
            ..none
        },
        PortSpec::AfXdp { queues, .. } => PortRings {
            rx_queues: q(*queues),
            tx_queues: q(*queues),
            rx_lent: dataplane::port::af_xdp::DEFAULT_FILL_SIZE,
            tx_held: AF_XDP_RING,
            rx_ring: Some(Ring { entries: AF_XDP_RING, key: "AF_XDP rx ring" }),
            tx_ring: Some(Ring { entries: AF_XDP_RING, key: "AF_XDP tx ring" }),
            steered: true,
        },
        PortSpec::AfPacket { queues, .. } => PortRings {
            rx_queues: q(*queues),
            tx_queues: q(*queues),
            tx_ring: Some(Ring { entries: AF_PACKET_TX_FRAMES, key: "AF_PACKET tx ring" }),
            steered: true,
            ..none
        },
        PortSpec::Pci { queues, rxd, txd, .. } => {
            let or_default = |n: u16| if n == 0 { RING_1024 } else { u32::from(n) };
            PortRings {
                rx_queues: q(*queues),
                tx_queues: q(*queues),
                rx_lent: or_default(*rxd),
                tx_held: or_default(*txd),
                rx_ring: Some(Ring { entries: or_default(*rxd), key: "rxd" }),
                tx_ring: Some(Ring { entries: or_default(*txd), key: "txd" }),
                steered: true,
            }
        }
        PortSpec::Dpdk { .. } => PortRings {
            rx_queues: u32::from(plan.rx_queues(port).max(1)),
            tx_queues: u32::from(plan.queues_needed(port)),
            rx_lent: RING_1024,
            tx_held: RING_1024,
            rx_ring: Some(Ring { entries: RING_1024, key: "rx descriptors" }),
            tx_ring: Some(Ring { entries: RING_1024, key: "tx descriptors" }),
            steered: true,
        },
    }
}

/// The mbufs the ports and lcores need (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbufNeed {
    /// Lent to the rx rings of every port.
    pub rx_rings: u64,
    /// Per lcore one rx burst and a tx buffer for every enabled port.
    pub bursts: u64,
    /// What the tx rings can hold.
    pub tx_rings: u64,
    /// The lcores' mempool caches.
    pub caches: u64,
}

impl MbufNeed {
    /// What the ports and lcores need: `specs` (sized to the plan) with `enabled` ports, the
    /// plan's lcores, the burst sizes.
    pub fn of(specs: &[PortSpec], plan: &Plan, enabled: usize, rx_burst: usize, tx_burst: usize) -> Self {
        let lcores = plan.lcores.len().max(1) as u64;
        let (mut rx_rings, mut tx_rings) = (0u64, 0u64);
        for (id, spec) in specs.iter().enumerate() {
            let r = port_rings(spec, plan, id as u16);
            rx_rings += u64::from(r.rx_queues) * u64::from(r.rx_lent);
            tx_rings += u64::from(r.tx_queues) * u64::from(r.tx_held);
        }
        let cache = u64::from(DEFAULT_CACHE) + u64::from(DEFAULT_CACHE) / 2;
        MbufNeed {
            rx_rings,
            bursts: lcores * (rx_burst as u64 + enabled as u64 * tx_burst as u64),
            tx_rings,
            caches: if lcores > 1 { lcores * cache } else { 0 },
        }
    }

    /// The minimum: receive rings and bursts.
    pub fn minimum(&self) -> u64 {
        self.rx_rings + self.bursts
    }

    /// DPDK's count: everything.
    pub fn dpdk(&self) -> u64 {
        self.minimum() + self.tx_rings + self.caches
    }
}

/// The options [`check`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The port specs, sized to the plan ([`Plan::fit_spec`]).
    pub specs: &'a [PortSpec],
    /// The lcore plan.
    pub plan: &'a Plan,
    /// The enabled ports (`-p`).
    pub enabled: &'a [u16],
    /// `--rx-burst`.
    pub rx_burst: usize,
    /// `--tx-burst`.
    pub tx_burst: usize,
    /// `--idle-sleep-us`.
    pub idle_sleep_us: u64,
    /// `--mbufs`, if given.
    pub mbufs: Option<u32>,
    /// `-T`.
    pub period: u64,
    /// `--duration`.
    pub duration: Option<f64>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<&'a str>,
}

/// What [`check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The size of the mbuf pool to create.
    pub mbufs: u32,
    /// Not errors, but worth saying before the ports are opened.
    pub warnings: Vec<String>,
}

/// Checks every limit of the common options against each other and the ports.
///
/// # Errors
/// The first limit exceeded, as a message naming the option and the limit.
pub fn check(o: &Options) -> Result<Checked, String> {
    let mut warnings = vec![];
    for (opt, v) in [("--rx-burst", o.rx_burst), ("--tx-burst", o.tx_burst)] {
        if v == 0 || v > MAX_BURST {
            return Err(format!("{opt} {v} must be 1 to {MAX_BURST} (the largest burst)"));
        }
    }
    if o.idle_sleep_us > MAX_IDLE_SLEEP_US {
        return Err(format!("--idle-sleep-us {} must be at most {MAX_IDLE_SLEEP_US}", o.idle_sleep_us));
    }
    check_period(o.period)?;
    if let Some(d) = o.duration {
        if !d.is_finite() || d <= 0.0 {
            return Err(format!("--duration {d} must be a positive number of seconds"));
        }
    }
    if let Some(a) = o.metrics_addr {
        check_listen_addr(a)?;
    }
    for (id, spec) in o.specs.iter().enumerate() {
        let id = id as u16;
        let r = port_rings(spec, o.plan, id);
        let enabled = o.enabled.contains(&id);
        if let Some(t) = r.tx_ring.filter(|t| enabled && o.tx_burst as u64 > u64::from(t.entries)) {
            return Err(format!(
                "--tx-burst {} is above port {id}'s tx ring ({} {}): a burst could never fit",
                o.tx_burst, t.key, t.entries
            ));
        }
        if let Some(t) = r.rx_ring.filter(|t| enabled && o.rx_burst as u64 > u64::from(t.entries)) {
            warnings.push(format!(
                "--rx-burst {} is above port {id}'s rx ring ({} {}): its bursts are never full",
                o.rx_burst, t.key, t.entries
            ));
        }
        let polled = o.plan.polled(id);
        let idle: Vec<String> =
            (0..r.rx_queues as u16).filter(|q| !polled.contains(q)).map(|q| q.to_string()).collect();
        if enabled && r.steered && !idle.is_empty() {
            warnings.push(format!(
                "port {id}: rx queue(s) {} are opened but no lcore polls them: what RSS or the kernel steers there is \
                 not forwarded (poll them with --config, or open fewer queues)",
                idle.join(",")
            ));
        }
    }
    let need = MbufNeed::of(o.specs, o.plan, o.enabled.len(), o.rx_burst, o.tx_burst);
    let lcores = o.plan.lcores.len().max(1);
    let mbufs = match o.mbufs {
        Some(n) => {
            if n > MAX_MBUFS {
                return Err(format!("--mbufs {n} must be at most {MAX_MBUFS} (2^28)"));
            }
            if u64::from(n) < need.minimum() {
                return Err(format!(
                    "--mbufs {n} is below the minimum {} these ports and lcores need: {} lent to the rx rings + \
                     {lcores} lcore(s) x (rx burst {} + {} enabled port(s) x tx burst {}) = {}",
                    need.minimum(),
                    need.rx_rings,
                    o.rx_burst,
                    o.enabled.len(),
                    o.tx_burst,
                    need.bursts
                ));
            }
            if u64::from(n) < need.dpdk() {
                warnings.push(format!(
                    "--mbufs {n} is below {}, what DPDK's l3fwd would allocate here (rx rings {} + bursts {} + tx \
                     rings {} + lcore caches {}): forwarding can stall while the tx rings are full",
                    need.dpdk(),
                    need.rx_rings,
                    need.bursts,
                    need.tx_rings,
                    need.caches
                ));
            }
            n
        }
        None => {
            let n = need.dpdk().max(u64::from(DEFAULT_MBUFS));
            u32::try_from(n).ok().filter(|&n| n <= MAX_MBUFS).ok_or_else(|| {
                format!("these ports need {n} mbufs, more than the largest pool ({MAX_MBUFS}): use fewer queues")
            })?
        }
    };
    Ok(Checked { mbufs, warnings })
}

/// `-T`/`--stats-period`: 0 to [`MAX_STATS_PERIOD`].
///
/// # Errors
/// Above the limit.
pub fn check_period(period: u64) -> Result<(), String> {
    if period > MAX_STATS_PERIOD {
        return Err(format!("--stats-period {period} must be 0 to {MAX_STATS_PERIOD} seconds (one day)"));
    }
    Ok(())
}

/// An address to listen on: `HOST:PORT` that resolves (without binding it).
///
/// # Errors
/// A message naming `--metrics-addr`.
pub fn check_listen_addr(a: &str) -> Result<(), String> {
    match a.to_socket_addrs().map(|mut it| it.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("--metrics-addr {a}: resolves to no address; expected HOST:PORT, e.g. 0.0.0.0:9100")),
        Err(e) => Err(format!("--metrics-addr {a}: {e}; expected HOST:PORT, e.g. 0.0.0.0:9100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcores::{parse_config, single};

    fn opts<'a>(specs: &'a [PortSpec], plan: &'a Plan, enabled: &'a [u16]) -> Options<'a> {
        Options {
            specs,
            plan,
            enabled,
            rx_burst: 32,
            tx_burst: 32,
            idle_sleep_us: 0,
            mbufs: None,
            period: 10,
            duration: None,
            metrics_addr: None,
        }
    }

    fn fitted(specs: &mut [PortSpec], plan: &Plan) {
        for (id, s) in specs.iter_mut().enumerate() {
            plan.fit_spec(id as u16, s, true).unwrap();
        }
    }

    #[test]
    fn data_room_is_what_a_chunk_leaves() {
        assert_eq!(DATA_ROOM, 1728);
        assert_eq!(data_room(&[PortSpec::Null { size: 64, queues: 1 }]), 1728);
        assert_eq!(data_room(&[PortSpec::Dpdk { devargs: "net_null0".into() }]), 2048);
    }

    #[test]
    fn mbuf_need_counts_rings_bursts_and_caches() {
        // Two null ports, one lcore: nothing lent, one rx burst and two tx buffers.
        let plan = single(None, &[0, 1]);
        let mut specs = vec![PortSpec::Null { size: 64, queues: 0 }; 2];
        fitted(&mut specs, &plan);
        let n = MbufNeed::of(&specs, &plan, 2, 32, 32);
        assert_eq!((n.minimum(), n.dpdk()), (96, 96));
        // Two AF_XDP ports with two queues on two lcores: fill rings 4 x 1024, tx rings 4 x
        // 2048, bursts 2 x (32 + 2 x 32), caches 2 x 384.
        let plan = parse_config("(0,0,0),(0,1,1),(1,0,0),(1,1,1)", &[0, 1], &[0, 1]).unwrap();
        let xdp = |i: &str| PortSpec::AfXdp {
            iface: i.into(),
            queues: 2,
            bind: "auto".into(),
            xdp: "auto".into(),
            busy_poll: None,
        };
        let specs = vec![xdp("a"), xdp("b")];
        let n = MbufNeed::of(&specs, &plan, 2, 32, 32);
        assert_eq!(n, MbufNeed { rx_rings: 4096, bursts: 192, tx_rings: 8192, caches: 768 });
        assert_eq!((n.minimum(), n.dpdk()), (4288, 13248));
        // The default pool grows to DPDK's count; an explicit one below the minimum is refused,
        // below DPDK's count warned about.
        let enabled = [0, 1];
        assert_eq!(check(&opts(&specs, &plan, &enabled)).unwrap().mbufs, 16384, "at least 16384");
        let e = check(&Options { mbufs: Some(4287), ..opts(&specs, &plan, &enabled) }).unwrap_err();
        assert!(e.contains("minimum 4288") && e.contains("4096 lent to the rx rings"), "{e}");
        let c = check(&Options { mbufs: Some(4288), ..opts(&specs, &plan, &enabled) }).unwrap();
        assert_eq!(c.mbufs, 4288);
        assert!(c.warnings.iter().any(|w| w.contains("below 13248")), "{:?}", c.warnings);
        // Native PCI: rxd/txd per queue, 1024 when not given.
        let pci = PortSpec::Pci { addr: vfio::PciAddr::new(0, 3, 0, 0), queues: 1, rxd: 0, txd: 256 };
        let n = MbufNeed::of(&[pci], &single(None, &[0]), 1, 32, 32);
        assert_eq!((n.rx_rings, n.tx_rings), (1024, 256));
    }

    #[test]
    fn option_limits() {
        let plan = single(None, &[0, 1]);
        let mut specs = vec![PortSpec::Null { size: 64, queues: 0 }; 2];
        fitted(&mut specs, &plan);
        let o = opts(&specs, &plan, &[0, 1]);
        assert_eq!(check(&o).unwrap(), Checked { mbufs: DEFAULT_MBUFS, warnings: vec![] });
        for (bad, want) in [
            (Options { rx_burst: 0, ..o }, "--rx-burst 0 must be 1 to 512"),
            (Options { tx_burst: 513, ..o }, "--tx-burst 513 must be 1 to 512"),
            (Options { idle_sleep_us: 1_000_001, ..o }, "--idle-sleep-us 1000001"),
            (Options { period: 86401, ..o }, "--stats-period 86401 must be 0 to 86400"),
            (Options { duration: Some(f64::INFINITY), ..o }, "--duration inf"),
            (Options { duration: Some(0.0), ..o }, "--duration 0"),
            (Options { metrics_addr: Some("bogus"), ..o }, "--metrics-addr bogus"),
            (Options { metrics_addr: Some("127.0.0.1"), ..o }, "HOST:PORT"),
            (Options { mbufs: Some(95), ..o }, "--mbufs 95 is below the minimum 96"),
            (Options { mbufs: Some(MAX_MBUFS + 1), ..o }, "at most 268435456"),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(want), "{e:?} does not say {want:?}");
        }
        assert!(check(&Options { metrics_addr: Some("127.0.0.1:0"), mbufs: Some(96), ..o }).is_ok());
    }

    #[test]
    fn bursts_against_rings_and_unpolled_queues() {
        let plan = single(None, &[0]);
        let pci = |rxd, txd| [PortSpec::Pci { addr: vfio::PciAddr::new(0, 3, 0, 0), queues: 2, rxd, txd }];
        let specs = pci(16, 64);
        let o = Options { tx_burst: 64, ..opts(&specs, &plan, &[0]) };
        let c = check(&o).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("--rx-burst 32 is above port 0's rx ring (rxd 16)")), "{c:?}");
        // queues=2 and the single lcore polls queue 0 only.
        assert!(c.warnings.iter().any(|w| w.contains("port 0: rx queue(s) 1 are opened")), "{c:?}");
        let e = check(&Options { tx_burst: 128, ..o }).unwrap_err();
        assert!(e.contains("--tx-burst 128 is above port 0's tx ring (txd 64)"), "{e}");
        // A masked-out port sends nothing: no limit on its ring.
        assert!(check(&Options { tx_burst: 128, enabled: &[], ..o }).is_ok());
    }
}
