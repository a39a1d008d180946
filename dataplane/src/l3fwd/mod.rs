//! DPDK l3fwd as a [`Forward`] stage: IPv4/IPv6 routing by longest-prefix match or exact
//! match, with RFC 1812 checks, TTL/hop-limit decrement and next-hop MAC rewrite.
//!
//! Per burst, in chunks of 64 packets, each packet classified by the lcore beforehand
//! (packet type and header lengths in its metadata, [`crate::classify`]):
//! 1. every packet is dispatched on its packet type (Ethernet, up to two VLAN tags which are
//!    kept, then IPv4, IPv6 or ARP). Four IPv4 packets without options in a row are checked
//!    together (`x4`: the four header checksums summed at once, with NEON on aarch64, as
//!    DPDK's `l3fwd_lpm_neon.h` steps four packets). IPv4 gets the RFC 1812 §5.2.2 checks — frame long enough, version
//!    4, IHL ≥ 5, total length between IHL·4 and the frame length ([`DropReason::Malformed`]),
//!    header checksum ([`DropReason::BadChecksum`]) — then TTL ≤ 1 is
//!    [`DropReason::TtlExpired`], else the TTL is decremented with an RFC 1624 incremental
//!    checksum update. IPv6: length, version and payload length, then hop limit ≤ 1 →
//!    `TtlExpired`, else decremented (IPv6 has no header checksum). ARP requests and IPv6
//!    neighbor solicitations for one of the addresses configured on the receiving port
//!    ([`L3Fwd::add_addr`]) are turned into the reply in place and sent back out of that port,
//!    so real neighbors can resolve the VNF. Other non-IP frames are
//!    [`DropReason::Filtered`];
//! 2. the destination addresses of the chunk go through one burst lookup
//!    ([`Lpm4::lookup_bulk`] / [`Lpm6::lookup_bulk`], or [`EmTable::lookup_bulk`] on the
//!    5-tuples); a miss goes to the default port when one is set, else
//!    [`DropReason::NoRoute`];
//! 3. routed packets get the destination MAC of their output port (`--eth-dest`, by default
//!    `02:00:00:00:00:<port>` as in DPDK) and the port's own MAC as source, and go to the
//!    port's tx buffer.
//!
//! Nothing allocates per packet or per burst: the scratch arrays live in the stage, built once.
//!
//! # Route reload without stopping
//! The tables ([`L3FwdTables`]) are immutable and shared through an `Arc`. A [`TableHandle`]
//! holds the current one in an [`ArcSwap`] slot with a generation counter; each lcore's
//! [`L3Fwd`] keeps its own `Arc` and compares generations in
//! [`Forward::housekeeping`] (every 4096 loop iterations), picking up a table that was built
//! aside and [`TableHandle::swap`]ped in. The old table is freed when the last lcore lets go
//! of it. A lookup never takes a lock or touches a shared reference count.
//!
//! Building a big table takes a while (reading and parsing a million-line file, then the
//! LPM build), so a VNF builds it on a thread of its own with
//! [`L3FwdTables::from_files_with_progress`]: a [`BuildProgress`] shows the stage and the
//! routes parsed so far to the control thread, and lets it cancel the build.

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::fwd::MacRewrite;
use crate::lcore::{DropReason, Forward, Tx};
use crate::lpm::{
    rules, EmConfig, EmKey, EmTable, Ipv4FiveTuple, Ipv6FiveTuple, Lpm4, Lpm4Config, Lpm6, Lpm6Config, Route4, Route6,
    RuleFileError, MISS,
};
use crate::port::{MacAddr, MAX_PORTS};
use crate::wire::{
    checksum, EthernetAddress, EthernetFrame, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv6Packet, NdiscNeighborFlags, UdpPacket,
};
use arc_swap::ArcSwap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon;
mod x4;

/// Packets per processing chunk (the scratch arrays' size).
const CHUNK: usize = 64;
/// How many packets ahead to prefetch.
const PREFETCH_OFFSET: usize = 4;
/// What becomes of one packet: sent on a port, or dropped for a reason.
type Outcome = Result<u16, DropReason>;

/// The lookup method (`--lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// Longest-prefix match on the destination address.
    #[default]
    Lpm,
    /// Exact match on the 5-tuple.
    Em,
}

impl fmt::Display for Lookup {
    /// The option value: `lpm` or `em`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lookup::Lpm => "lpm",
            Lookup::Em => "em",
        })
    }
}

impl std::str::FromStr for Lookup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lpm" => Ok(Lookup::Lpm),
            "em" => Ok(Lookup::Em),
            _ => Err(format!("lookup method {s:?} is not lpm or em")),
        }
    }
}

/// Why routing tables could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The route file could not be read or has a bad line (the error names the line).
    #[error(transparent)]
    File(#[from] RuleFileError),
    /// A route parsed but could not be added to the table.
    #[error("{source_name}: line {line}: {msg}")]
    Route {
        /// The file (or `<ipv4 routes>` / `<ipv6 routes>` for in-memory routes).
        source_name: String,
        /// 1-based line number in the file (or the 1-based route index).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The build was cancelled through its [`BuildProgress`].
    #[error("the table build was cancelled")]
    Cancelled,
}

/// Lines parsed between two progress updates (and cancel checks) of a route file.
const PARSE_CHUNK_LINES: usize = 1 << 14;

/// What a table build from files is doing ([`BuildProgress::stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStage {
    /// Reading the route files.
    Reading,
    /// Parsing their lines.
    Parsing,
    /// Building the lookup tables from the parsed routes.
    Building,
    /// Finished (built, failed or cancelled).
    Done,
}

impl BuildStage {
    const ALL: [BuildStage; 4] = [BuildStage::Reading, BuildStage::Parsing, BuildStage::Building, BuildStage::Done];

    /// The stage in one word: `reading`, `parsing`, `building`, `done`.
    pub fn name(self) -> &'static str {
        match self {
            BuildStage::Reading => "reading",
            BuildStage::Parsing => "parsing",
            BuildStage::Building => "building",
            BuildStage::Done => "done",
        }
    }
}

/// The progress of a table build on another thread
/// ([`L3FwdTables::from_files_with_progress`]): its stage and the routes parsed so far, read
/// with relaxed loads, and a cancel flag the build checks between chunks of lines and
/// between stages. Share it in an `Arc`.
#[derive(Debug, Default)]
pub struct BuildProgress {
    stage: AtomicU8,
    parsed: AtomicU64,
    cancel: AtomicBool,
}

impl BuildProgress {
    /// The current stage.
    pub fn stage(&self) -> BuildStage {
        BuildStage::ALL[usize::from(self.stage.load(Ordering::Relaxed)).min(BuildStage::ALL.len() - 1)]
    }

    /// Routes parsed so far (IPv4 and IPv6).
    pub fn routes_parsed(&self) -> u64 {
        self.parsed.load(Ordering::Relaxed)
    }

    /// Asks the build to stop: it returns [`TableError::Cancelled`] at its next check. The
    /// LPM build of the parsed routes is not interrupted; the check after it is.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn set_stage(&self, stage: BuildStage) -> Result<(), TableError> {
        self.stage.store(stage as u8, Ordering::Relaxed);
        match self.is_cancelled() {
            true => Err(TableError::Cancelled),
            false => Ok(()),
        }
    }
}

/// Immutable routing tables of one generation: IPv4 and (optionally) IPv6, LPM or EM.
#[derive(Debug)]
pub struct L3FwdTables {
    lookup: Lookup,
    lpm4: Option<Lpm4>,
    lpm6: Option<Lpm6>,
    em4: Option<EmTable<Ipv4FiveTuple>>,
    em6: Option<EmTable<Ipv6FiveTuple>>,
    routes4: usize,
    routes6: usize,
}

/// The 1-based line numbers of the route lines of a file (not blank, not a comment), so a
/// route index from a table build maps back to its line.
fn route_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn read(path: &Path) -> Result<String, TableError> {
    std::fs::read_to_string(path)
        .map_err(|source| TableError::File(RuleFileError::Io { path: path.to_path_buf(), source }))
}

fn parse_err(path: &Path, source: rules::RuleError) -> TableError {
    TableError::File(RuleFileError::Parse { path: path.to_path_buf(), source })
}

/// Runs `parse` over `text` in chunks of `chunk_lines` lines, adding each chunk's routes to
/// the progress and checking the cancel flag before each chunk. Line numbers in errors are
/// the file's, as if `parse` had seen the whole text.
fn parse_chunked<T>(
    text: &str,
    path: &Path,
    parse: fn(&str) -> Result<Vec<T>, rules::RuleError>,
    progress: &BuildProgress,
    chunk_lines: usize,
) -> Result<Vec<T>, TableError> {
    let mut out = Vec::new();
    let (mut rest, mut first_line) = (text, 0);
    while !rest.is_empty() {
        if progress.is_cancelled() {
            return Err(TableError::Cancelled);
        }
        let end = rest.match_indices('\n').nth(chunk_lines - 1).map_or(rest.len(), |(i, _)| i + 1);
        let (chunk, tail) = rest.split_at(end);
        let mut routes = parse(chunk).map_err(|mut e| {
            e.line += first_line;
            parse_err(path, e)
        })?;
        progress.parsed.fetch_add(routes.len() as u64, Ordering::Relaxed);
        out.append(&mut routes);
        (rest, first_line) = (tail, first_line + chunk_lines);
    }
    Ok(out)
}

/// Maps a build error of route `index` to the file line.
fn at_line(e: TableError, path: &Path, lines: &[usize]) -> TableError {
    match e {
        TableError::Route { line, msg, .. } => TableError::Route {
            source_name: path.display().to_string(),
            line: lines.get(line.wrapping_sub(1)).copied().unwrap_or(line),
            msg,
        },
        e => e,
    }
}

fn route_err(v6: bool, index: usize, msg: String) -> TableError {
    TableError::Route { source_name: if v6 { "<ipv6 routes>" } else { "<ipv4 routes>" }.into(), line: index + 1, msg }
}

fn check_port(v6: bool, index: usize, port: u32) -> Result<(), TableError> {
    if port as usize >= MAX_PORTS {
        return Err(route_err(v6, index, format!("output port {port} is not below {MAX_PORTS}")));
    }
    Ok(())
}

/// Most duplicate routes listed by [`L3FwdTables::load`] (then a count of the rest).
const MAX_DUPLICATES_LISTED: usize = 5;

/// [`L3FwdTables::load`]'s checks of one file's routes (`key`, output port), `lines` mapping
/// a route's index to its line: a port not in `ports` (when given) is an error; a key given
/// twice is a warning, pushed to `warnings` (shown by `show`).
fn check_routes<K: std::hash::Hash + Eq + Copy>(
    path: &Path,
    lines: &[usize],
    routes: impl ExactSizeIterator<Item = (K, u32)>,
    ports: Option<u32>,
    warnings: &mut Vec<String>,
    show: impl Fn(&K) -> String,
) -> Result<(), TableError> {
    let line = |i: usize| lines.get(i).copied().unwrap_or(i + 1);
    let mut seen: std::collections::HashMap<K, (usize, u32)> = std::collections::HashMap::with_capacity(routes.len());
    let mut duplicates = 0usize;
    for (i, (key, port)) in routes.enumerate() {
        if let Some(mask) = ports {
            if port >= 32 || mask & (1 << port) == 0 {
                let usable: Vec<String> =
                    (0..32).filter(|p| mask & (1 << p) != 0).map(|p: u32| p.to_string()).collect();
                return Err(TableError::Route {
                    source_name: path.display().to_string(),
                    line: line(i),
                    msg: format!(
                        "{} goes to port {port}, which is not a port in use (ports in use: {}); all its traffic would \
                         be dropped (no_tx_port)",
                        show(&key),
                        usable.join(",")
                    ),
                });
            }
        }
        if let Some((j, was)) = seen.insert(key, (i, port)) {
            duplicates += 1;
            if duplicates <= MAX_DUPLICATES_LISTED {
                warnings.push(format!(
                    "{}: line {}: {} repeats line {}: port {port} replaces port {was}",
                    path.display(),
                    line(i),
                    show(&key),
                    line(j)
                ));
            }
        }
    }
    if duplicates > MAX_DUPLICATES_LISTED {
        warnings.push(format!(
            "{}: {} more routes repeat an earlier line's prefix",
            path.display(),
            duplicates - MAX_DUPLICATES_LISTED
        ));
    }
    Ok(())
}

impl L3FwdTables {
    /// Builds LPM tables holding `routes4` and `routes6`, sized to them. No IPv6 table is
    /// built when `routes6` is empty (IPv6 packets then miss).
    ///
    /// # Errors
    /// [`TableError::Route`] with the 1-based index of the first route that cannot be added
    /// (output port not below [`MAX_PORTS`], a table limit).
    pub fn from_lpm_routes(routes4: &[Route4], routes6: &[Route6]) -> Result<Self, TableError> {
        let deep4 = routes4.iter().filter(|r| r.depth > 24).count() as u32;
        let cfg4 = Lpm4Config {
            max_rules: (routes4.len() as u32).saturating_add(1).max(1024),
            tbl8_groups: deep4.saturating_add(64).min(crate::lpm::lpm4::MAX_TBL8_GROUPS),
        };
        for (i, r) in routes4.iter().enumerate() {
            check_port(false, i, r.next_hop)?;
        }
        let lpm4 = Lpm4::from_routes(cfg4, routes4).map_err(|(i, e)| route_err(false, i, e.to_string()))?;
        let lpm6 = if routes6.is_empty() {
            None
        } else {
            let groups: u32 = routes6.iter().map(|r| u32::from(r.depth.saturating_sub(24)).div_ceil(8)).sum();
            let cfg6 = Lpm6Config {
                max_rules: (routes6.len() as u32).saturating_add(1).max(1024),
                tbl8_groups: groups.saturating_add(64).min(crate::lpm::lpm6::MAX_TBL8_GROUPS),
            };
            for (i, r) in routes6.iter().enumerate() {
                check_port(true, i, r.next_hop)?;
            }
            Some(Lpm6::from_routes(cfg6, routes6).map_err(|(i, e)| route_err(true, i, e.to_string()))?)
        };
        Ok(L3FwdTables {
            lookup: Lookup::Lpm,
            lpm4: Some(lpm4),
            lpm6,
            em4: None,
            em6: None,
            routes4: routes4.len(),
            routes6: routes6.len(),
        })
    }

    /// Builds exact-match tables holding `routes4` and `routes6`.
    ///
    /// # Errors
    /// As [`from_lpm_routes`](Self::from_lpm_routes).
    pub fn from_em_routes(routes4: &[rules::EmRoute4], routes6: &[rules::EmRoute6]) -> Result<Self, TableError> {
        fn build<K: EmKey>(
            v6: bool,
            routes: impl Iterator<Item = (K, u32)>,
            n: usize,
        ) -> Result<EmTable<K>, TableError> {
            let cap = (n as u32).saturating_add(n as u32 / 4).max(1024);
            let mut t = EmTable::new(EmConfig { capacity: cap }).map_err(|e| route_err(v6, 0, e.to_string()))?;
            for (i, (k, port)) in routes.enumerate() {
                check_port(v6, i, port)?;
                t.insert(k, port).map_err(|e| route_err(v6, i, e.to_string()))?;
            }
            Ok(t)
        }
        let em4 = build(false, routes4.iter().map(|r| (r.key, r.port)), routes4.len())?;
        let em6 = if routes6.is_empty() {
            None
        } else {
            Some(build(true, routes6.iter().map(|r| (r.key, r.port)), routes6.len())?)
        };
        Ok(L3FwdTables {
            lookup: Lookup::Em,
            lpm4: None,
            lpm6: None,
            em4: Some(em4),
            em6,
            routes4: routes4.len(),
            routes6: routes6.len(),
        })
    }

    /// Reads DPDK l3fwd route files (`--rule_ipv4`, optional `--rule_ipv6`) in the format of
    /// `lookup` (see [`rules`]) and builds the tables.
    ///
    /// # Errors
    /// An unreadable file, or a bad line or a route the table refuses, with the file and its
    /// 1-based line number.
    pub fn from_files(rule_ipv4: &Path, rule_ipv6: Option<&Path>, lookup: Lookup) -> Result<Self, TableError> {
        Self::load_checked(rule_ipv4, rule_ipv6, lookup, None, &BuildProgress::default()).map(|(t, _)| t)
    }

    /// [`from_files`](Self::from_files) for a data plane whose usable output ports are the
    /// bits of `ports` (bit `p`: port `p` exists and is enabled), the one check of route
    /// files at start and at every reload:
    /// - a route to any other port is an error: all its traffic would be dropped as
    ///   [`DropReason::NoTxPort`] (DPDK l3fwd does not use routes to disabled ports either);
    /// - a prefix (with `--lookup em`, a flow) given twice is a warning, returned with the
    ///   file and both lines: the later line wins, as `rte_lpm_add` replaces a next hop.
    ///   At most five are listed, then how many more there are.
    ///
    /// # Errors
    /// As [`from_files`](Self::from_files), and [`TableError::Route`] naming the file, the
    /// line and the port of a route to a port not in `ports`.
    pub fn load(
        rule_ipv4: &Path,
        rule_ipv6: Option<&Path>,
        lookup: Lookup,
        ports: u32,
    ) -> Result<(Self, Vec<String>), TableError> {
        Self::load_checked(rule_ipv4, rule_ipv6, lookup, Some(ports), &BuildProgress::default())
    }

    /// [`load`](Self::load) (or, with `ports` None, [`from_files`](Self::from_files) and
    /// no port check), showing its stage and the routes parsed so far in `progress`, and
    /// stopping with [`TableError::Cancelled`] when `progress` is cancelled (checked every few
    /// thousand lines and between stages). The stage is [`BuildStage::Done`] when it returns.
    ///
    /// # Errors
    /// As [`load`](Self::load), or [`TableError::Cancelled`].
    pub fn from_files_with_progress(
        rule_ipv4: &Path,
        rule_ipv6: Option<&Path>,
        lookup: Lookup,
        ports: Option<u32>,
        progress: &BuildProgress,
    ) -> Result<(Self, Vec<String>), TableError> {
        let r = Self::load_checked(rule_ipv4, rule_ipv6, lookup, ports, progress);
        progress.stage.store(BuildStage::Done as u8, Ordering::Relaxed);
        r
    }

    fn load_checked(
        rule_ipv4: &Path,
        rule_ipv6: Option<&Path>,
        lookup: Lookup,
        ports: Option<u32>,
        progress: &BuildProgress,
    ) -> Result<(Self, Vec<String>), TableError> {
        progress.set_stage(BuildStage::Reading)?;
        let t4 = read(rule_ipv4)?;
        let t6 = rule_ipv6.map(read).transpose()?;
        progress.set_stage(BuildStage::Parsing)?;
        let (l4, l6) = (route_lines(&t4), t6.as_deref().map(route_lines).unwrap_or_default());
        let p6: PathBuf = rule_ipv6.map(Path::to_path_buf).unwrap_or_default();
        let fix = |e: TableError| match &e {
            TableError::Route { source_name, .. } if source_name.starts_with("<ipv6") => at_line(e, &p6, &l6),
            _ => at_line(e, rule_ipv4, &l4),
        };
        let n = PARSE_CHUNK_LINES;
        let mut warnings = vec![];
        let tables = match lookup {
            Lookup::Lpm => {
                let r4 = parse_chunked(&t4, rule_ipv4, rules::parse_lpm4, progress, n)?;
                let r6 = match &t6 {
                    Some(t) => parse_chunked(t, &p6, rules::parse_lpm6, progress, n)?,
                    None => vec![],
                };
                let show4 = |k: &(Ipv4Addr, u8)| format!("{}/{}", k.0, k.1);
                let show6 = |k: &(Ipv6Addr, u8)| format!("{}/{}", k.0, k.1);
                let v4 = r4.iter().map(|r| ((r.prefix, r.depth), r.next_hop));
                check_routes(rule_ipv4, &l4, v4, ports, &mut warnings, show4)?;
                check_routes(
                    &p6,
                    &l6,
                    r6.iter().map(|r| ((r.prefix, r.depth), r.next_hop)),
                    ports,
                    &mut warnings,
                    show6,
                )?;
                progress.set_stage(BuildStage::Building)?;
                let t = Self::from_lpm_routes(&r4, &r6).map_err(fix)?;
                progress.set_stage(BuildStage::Building)?;
                t
            }
            Lookup::Em => {
                let r4 = parse_chunked(&t4, rule_ipv4, rules::parse_em4, progress, n)?;
                let r6 = match &t6 {
                    Some(t) => parse_chunked(t, &p6, rules::parse_em6, progress, n)?,
                    None => vec![],
                };
                let show4 = |k: &Ipv4FiveTuple| {
                    let (d, s) = (Ipv4Addr::from(k.dst_ip), Ipv4Addr::from(k.src_ip));
                    format!("flow {d} {s} {} {} {:#x}", k.dst_port, k.src_port, k.proto)
                };
                let show6 = |k: &Ipv6FiveTuple| {
                    let (d, s) = (Ipv6Addr::from(k.dst_ip), Ipv6Addr::from(k.src_ip));
                    format!("flow {d} {s} {} {} {:#x}", k.dst_port, k.src_port, k.proto)
                };
                check_routes(rule_ipv4, &l4, r4.iter().map(|r| (r.key, r.port)), ports, &mut warnings, show4)?;
                check_routes(&p6, &l6, r6.iter().map(|r| (r.key, r.port)), ports, &mut warnings, show6)?;
                progress.set_stage(BuildStage::Building)?;
                let t = Self::from_em_routes(&r4, &r6).map_err(fix)?;
                progress.set_stage(BuildStage::Building)?;
                t
            }
        };
        Ok((tables, warnings))
    }

    /// The lookup method.
    pub fn lookup(&self) -> Lookup {
        self.lookup
    }

    /// Number of IPv4 and IPv6 routes.
    pub fn routes(&self) -> (usize, usize) {
        (self.routes4, self.routes6)
    }

    /// True when IPv6 packets can be routed (an IPv6 table exists).
    pub fn has_ipv6(&self) -> bool {
        self.lpm6.is_some() || self.em6.is_some()
    }
}

struct Shared {
    slot: ArcSwap<L3FwdTables>,
    gen: AtomicU64,
}

/// The shared slot holding the current [`L3FwdTables`]: the control thread swaps a new
/// generation in, every [`L3Fwd`] made from the handle picks it up at its next housekeeping.
#[derive(Clone)]
pub struct TableHandle {
    inner: Arc<Shared>,
}

impl fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableHandle").field("generation", &self.generation()).finish()
    }
}

impl TableHandle {
    /// A handle whose generation 0 is `tables`.
    pub fn new(tables: L3FwdTables) -> Self {
        TableHandle { inner: Arc::new(Shared { slot: ArcSwap::from_pointee(tables), gen: AtomicU64::new(0) }) }
    }

    /// Makes `tables` the current generation and returns its number. Lcores switch at their
    /// next housekeeping; the previous tables are freed when the last lcore drops them.
    pub fn swap(&self, tables: L3FwdTables) -> u64 {
        self.inner.slot.store(Arc::new(tables));
        self.inner.gen.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The current generation number (0 for the tables given to [`TableHandle::new`]).
    pub fn generation(&self) -> u64 {
        self.inner.gen.load(Ordering::Acquire)
    }

    /// The current tables.
    pub fn current(&self) -> Arc<L3FwdTables> {
        self.inner.slot.load_full()
    }
}

/// Per-chunk scratch arrays, allocated once per stage.
#[derive(Clone)]
struct Scratch {
    outs: [Outcome; CHUNK],
    idx4: [u8; CHUNK],
    dst4: [u32; CHUNK],
    hash4: [u32; CHUNK],
    key4: [Ipv4FiveTuple; CHUNK],
    nh4: [u32; CHUNK],
    idx6: [u8; CHUNK],
    dst6: [[u8; 16]; CHUNK],
    hash6: [u32; CHUNK],
    key6: [Ipv6FiveTuple; CHUNK],
    nh6: [u32; CHUNK],
}

impl Scratch {
    fn boxed() -> Box<Self> {
        Box::new(Scratch {
            outs: [Err(DropReason::Filtered); CHUNK],
            idx4: [0; CHUNK],
            dst4: [0; CHUNK],
            hash4: [0; CHUNK],
            key4: [Ipv4FiveTuple::default(); CHUNK],
            nh4: [0; CHUNK],
            idx6: [0; CHUNK],
            dst6: [[0; 16]; CHUNK],
            hash6: [0; CHUNK],
            key6: [Ipv6FiveTuple::default(); CHUNK],
            nh6: [0; CHUNK],
        })
    }
}

/// Per-port configuration of the stage (MACs, own addresses, limits).
#[derive(Debug, Clone)]
struct PortConf {
    /// Destination + source MAC written per output port.
    rewrite: MacRewrite,
    /// Own addresses, answered by ARP / neighbor advertisement on that port.
    addrs4: Vec<(u16, [u8; 4])>,
    addrs6: Vec<(u16, [u8; 16])>,
    default_port: Option<u16>,
    max_pkt_len: usize,
}

impl PortConf {
    fn mac(&self, port: u16) -> [u8; 6] {
        self.rewrite.port_mac(port)
    }
}

/// What pass 1 decided for one packet.
enum Step {
    V4,
    V6,
    Out(Outcome),
}

/// DPDK l3fwd's forwarding stage. See the [module docs](self).
#[derive(Clone)]
pub struct L3Fwd {
    tables: Arc<L3FwdTables>,
    handle: Option<TableHandle>,
    gen: u64,
    conf: PortConf,
    scratch: Box<Scratch>,
}

impl fmt::Debug for L3Fwd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L3Fwd").field("tables", &self.tables).field("gen", &self.gen).field("conf", &self.conf).finish()
    }
}

impl L3Fwd {
    /// A stage routing with the current tables of `handle` and following its swaps.
    pub fn new(handle: &TableHandle) -> Self {
        let mut s = Self::with_tables(handle.current());
        s.gen = handle.generation();
        s.handle = Some(handle.clone());
        s
    }

    /// A stage routing with fixed `tables`.
    pub fn with_tables(tables: Arc<L3FwdTables>) -> Self {
        L3Fwd {
            tables,
            handle: None,
            gen: 0,
            conf: PortConf {
                rewrite: MacRewrite::new(),
                addrs4: vec![],
                addrs6: vec![],
                default_port: None,
                max_pkt_len: usize::MAX,
            },
            scratch: Scratch::boxed(),
        }
    }

    /// Sets port `port`'s own MAC (the source of routed packets and of ARP/ND replies).
    pub fn set_port_mac(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.conf.rewrite.set_port_mac(port, mac);
        self
    }

    /// Sets the next-hop MAC for packets routed out of `port` (`--eth-dest`).
    pub fn set_eth_dest(&mut self, port: u16, mac: MacAddr) -> &mut Self {
        self.conf.rewrite.set_eth_dest(port, mac);
        self
    }

    /// Sends route misses to `port` instead of dropping them as `NoRoute`.
    pub fn set_default_port(&mut self, port: Option<u16>) -> &mut Self {
        self.conf.default_port = port;
        self
    }

    /// Drops frames longer than `len` bytes as `TooLong` (`--max-pkt-len`).
    pub fn set_max_pkt_len(&mut self, len: Option<usize>) -> &mut Self {
        self.conf.max_pkt_len = len.unwrap_or(usize::MAX);
        self
    }

    /// Gives port `port` the address `addr`: ARP requests (IPv4) or neighbor solicitations
    /// (IPv6) for it arriving on that port are answered.
    pub fn add_addr(&mut self, port: u16, addr: IpAddr) -> &mut Self {
        match addr {
            IpAddr::V4(a) => self.conf.addrs4.push((port, a.octets())),
            IpAddr::V6(a) => self.conf.addrs6.push((port, a.octets())),
        }
        self
    }

    /// The generation of the tables in use.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Pass 1 for one packet: checks, TTL decrement, ARP/ND replies.
    #[inline(always)]
    fn classify_one<B: PacketBuf>(conf: &PortConf, rx_port: u16, pkt: &mut B) -> (Step, usize) {
        if pkt.len() > conf.max_pkt_len {
            return (Step::Out(Err(DropReason::TooLong)), 0);
        }
        let Some((l3, et)) = l3_of(pkt) else {
            return (Step::Out(Err(DropReason::Malformed)), 0);
        };
        let step = match et {
            0x0800 => match ipv4_check_and_decrement(&mut pkt.data_mut()[l3..]) {
                Ok(()) => Step::V4,
                Err(r) => Step::Out(Err(r)),
            },
            0x86dd => {
                let ns = if conf.addrs6.is_empty() { None } else { ndp_solicit(conf, rx_port, pkt.data(), l3) };
                match ns {
                    Some((target, src)) => Step::Out(if ndp_reply(conf, rx_port, pkt, l3, target, src) {
                        Ok(rx_port)
                    } else {
                        Err(DropReason::Malformed)
                    }),
                    None => match ipv6_check_and_decrement(&mut pkt.data_mut()[l3..]) {
                        Ok(()) => Step::V6,
                        Err(r) => Step::Out(Err(r)),
                    },
                }
            }
            0x0806 if arp_reply(ArpOwner::Addrs(&conf.addrs4), conf.mac(rx_port), rx_port, pkt.data_mut(), l3) => {
                Step::Out(Ok(rx_port))
            }
            _ => Step::Out(Err(DropReason::Filtered)),
        };
        (step, l3)
    }
}

/// The L3 offset and the EtherType of what follows the L2 header(s), from the classifier's
/// metadata (the lcore classified the packet before the stage ran); `None` when the frame is
/// shorter than an Ethernet header or a VLAN tag is cut short.
///
/// IPv4, IPv6 and untagged ARP come from the packet type alone. Otherwise (no valid IP
/// header, tagged ARP, other protocols) the EtherType is the last two bytes of the L2 header
/// the classifier measured, so a stage tells a malformed IP header (checked again by the
/// stage, for the reason counter) from a protocol it does not handle.
#[inline(always)]
pub(crate) fn l3_of<B: PacketBuf>(pkt: &B) -> Option<(usize, u16)> {
    use crate::classify::ptype;
    use crate::wire::EtherType;
    let m = pkt.meta();
    let l3 = usize::from(m.l2_len);
    match m.ptype & ptype::L3_MASK {
        ptype::L3_IPV4 | ptype::L3_IPV4_EXT => return Some((l3, u16::from(EtherType::Ipv4))),
        ptype::L3_IPV6 | ptype::L3_IPV6_EXT => return Some((l3, u16::from(EtherType::Ipv6))),
        _ => {}
    }
    match m.ptype & ptype::L2_MASK {
        0 => return None,
        ptype::L2_ETHER_ARP => return Some((l3, u16::from(EtherType::Arp))),
        _ => {}
    }
    let et = pkt.data().get(l3.checked_sub(2)?..l3).map(|b| u16::from_be_bytes([b[0], b[1]]))?;
    // A tag the classifier stopped at: cut short (a third tag is a protocol not handled).
    if EtherType::from(et).is_vlan_tpid() && m.ptype & ptype::MALFORMED != 0 {
        return None;
    }
    Some((l3, et))
}

/// RFC 1812 §5.2.2 checks on the IPv4 header at the start of `h` (the frame from L3 on),
/// then the TTL check and decrement with an RFC 1624 checksum update.
///
/// # Errors
/// `Malformed` (too short, version, IHL, total length), `BadChecksum`, `TtlExpired`; the
/// header is unchanged then.
#[inline(always)]
pub fn ipv4_check_and_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    ipv4_check(h)?;
    ttl_decrement(h)
}

/// The TTL check and decrement with an RFC 1624 checksum update, on an IPv4 header already
/// checked (at least 20 bytes).
///
/// # Errors
/// `TtlExpired` (TTL ≤ 1), the header unchanged then.
#[inline(always)]
pub(crate) fn ttl_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    if h.len() < 20 {
        return Err(DropReason::Malformed);
    }
    let ttl = h[8];
    if ttl <= 1 {
        return Err(DropReason::TtlExpired);
    }
    let proto = h[9];
    let c = u16::from_be_bytes([h[10], h[11]]);
    let c = checksum::update_u16(c, u16::from_be_bytes([ttl, proto]), u16::from_be_bytes([ttl - 1, proto]));
    h[8] = ttl - 1;
    h[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// RFC 1812 §5.2.2 checks on the IPv4 header at the start of `h` (the frame from L3 on):
/// at least 20 bytes, version 4, IHL ≥ 5 and within `h`, total length between IHL·4 and
/// `h.len()`, header checksum valid. Returns the header length.
///
/// # Errors
/// `Malformed` or `BadChecksum`.
#[inline(always)]
pub fn ipv4_check(h: &[u8]) -> Result<usize, DropReason> {
    if h.len() < 20 {
        return Err(DropReason::Malformed);
    }
    // 20 bytes or more: the view's fixed-header getters cannot panic.
    let ip = Ipv4Packet::new_unchecked(h);
    let ihl = ip.header_len();
    if ip.version() != 4 || ihl < 20 || h.len() < ihl {
        return Err(DropReason::Malformed);
    }
    let total = usize::from(ip.total_len());
    if total < ihl || total > h.len() {
        return Err(DropReason::Malformed);
    }
    if checksum::sum(&h[..ihl]) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    Ok(ihl)
}

/// IPv6 checks (length, version, payload length) and hop-limit decrement on the header at
/// the start of `h`.
///
/// # Errors
/// `Malformed` or `TtlExpired` (hop limit ≤ 1); the header is unchanged then.
#[inline(always)]
pub fn ipv6_check_and_decrement(h: &mut [u8]) -> Result<(), DropReason> {
    let mut ip = Ipv6Packet::new_checked(h).map_err(|_| DropReason::Malformed)?;
    let hop = ip.hop_limit();
    if hop <= 1 {
        return Err(DropReason::TtlExpired);
    }
    ip.set_hop_limit(hop - 1);
    Ok(())
}

/// Which ARP requests a port answers.
#[derive(Clone, Copy)]
pub(crate) enum ArpOwner<'a> {
    /// Requests for one of `rx_port`'s addresses (port, address pairs).
    Addrs(&'a [(u16, [u8; 4])]),
    /// Every request for an address other than the sender's own, testpmd icmpecho's way
    /// (RFC 5227 probes and announcements, from 0.0.0.0 or for the sender's address, are
    /// left alone).
    Any,
}

/// Turns an ARP request for an address `owner` claims on `rx_port` into the reply from
/// `mac`, in place (Ethernet addresses too).
pub(crate) fn arp_reply(owner: ArpOwner<'_>, mac: [u8; 6], rx_port: u16, d: &mut [u8], l3: usize) -> bool {
    use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame};
    let Some(req) = d.get(l3..).and_then(|a| ArpRepr::parse(&ArpPacket::new_unchecked(a)).ok()) else {
        return false;
    };
    // Ethernet/IPv4 (checked by the parse) request.
    if req.operation != ArpOperation::Request {
        return false;
    }
    let (spa, tpa) = (req.source_protocol_addr, req.target_protocol_addr);
    let ours = match owner {
        ArpOwner::Addrs(addrs4) => addrs4.iter().any(|&(p, ip)| p == rx_port && ip == tpa.octets()),
        ArpOwner::Any => !spa.is_unspecified() && spa != tpa,
    };
    if !ours {
        return false;
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: tpa,
        target_hardware_addr: req.source_hardware_addr,
        target_protocol_addr: spa,
    };
    // The request parsed, so the 28 bytes are there (and the Ethernet header before them).
    if reply.emit(&mut ArpPacket::new_unchecked(&mut d[l3..])).is_err() {
        return false;
    }
    let mut eth = EthernetFrame::new_unchecked(d);
    let requester = eth.src_addr();
    eth.set_dst_addr(requester);
    eth.set_src_addr(EthernetAddress(mac));
    true
}

/// Length of a neighbor advertisement with a target link-layer address option.
const NA_LEN: usize = 32;

/// Checks for a valid neighbor solicitation (RFC 4861 §7.1.1) for one of `rx_port`'s
/// addresses; returns the target and the solicitation's source address.
fn ndp_solicit(conf: &PortConf, rx_port: u16, d: &[u8], l3: usize) -> Option<([u8; 16], [u8; 16])> {
    let ip = Ipv6Packet::new_checked(d.get(l3..)?).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != 255 || ip.payload_len() < 24 {
        return None;
    }
    // At least 24 bytes: the solicitation's fixed part.
    let icmp = Icmpv6Packet::new_unchecked(ip.payload());
    if icmp.msg_type() != Icmpv6Message::NeighborSolicit || icmp.msg_code() != 0 {
        return None;
    }
    let target = icmp.target_addr().octets();
    if !conf.addrs6.iter().any(|&(p, a)| p == rx_port && a == target) {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    icmp.verify_checksum(&src, &dst).then_some((target, src.octets()))
}

/// Turns a neighbor solicitation for `target` from `src` (one of `rx_port`'s addresses,
/// checked by [`ndp_solicit`]) into a neighbor advertisement, in place: router, solicited
/// and override flags, target link-layer address = the port's MAC, sent to the solicitor (to
/// all nodes, not solicited, when the solicitor is the unspecified address: duplicate address
/// detection). `false` when the buffer cannot be resized.
fn ndp_reply<B: PacketBuf>(
    conf: &PortConf,
    rx_port: u16,
    pkt: &mut B,
    l3: usize,
    target: [u8; 16],
    src: [u8; 16],
) -> bool {
    let need = l3 + 40 + NA_LEN;
    let len = pkt.len();
    let resized = if len > need { pkt.trim(len - need) } else { len == need || pkt.append(need - len).is_some() };
    if !resized {
        return false;
    }
    let mac = EthernetAddress(conf.mac(rx_port));
    let dad = src == [0u8; 16];
    let dst6: [u8; 16] = if dad { [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] } else { src };
    let d = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut *d);
    let eth_dst = if dad { EthernetAddress([0x33, 0x33, 0, 0, 0, 1]) } else { eth.src_addr() };
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(mac);
    // Version, traffic class and flow label stay the solicitation's.
    let mut ip = Ipv6Packet::new_unchecked(&mut d[l3..need]);
    ip.set_payload_len(NA_LEN as u16);
    ip.set_next_header(IpProtocol::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_src_addr(target.into());
    ip.set_dst_addr(dst6.into());
    let flags = if dad {
        NdiscNeighborFlags(NdiscNeighborFlags::ROUTER.0 | NdiscNeighborFlags::OVERRIDE.0)
    } else {
        NdiscNeighborFlags(
            NdiscNeighborFlags::ROUTER.0 | NdiscNeighborFlags::SOLICITED.0 | NdiscNeighborFlags::OVERRIDE.0,
        )
    };
    let na = Icmpv6Repr::NeighborAdvert { flags, target_addr: target.into(), target_lladdr: Some(mac) };
    // `need` left exactly NA_LEN bytes after the IPv6 header, what the advertisement takes.
    na.emit(&target.into(), &dst6.into(), &mut Icmpv6Packet::new_unchecked(&mut d[l3 + 40..need])).is_ok()
}

/// The EM key of an IPv4 packet (`h` from L3 on, already checked): ports for TCP, UDP and
/// SCTP when not a fragment, else zero.
#[inline(always)]
fn key4(h: &[u8]) -> Ipv4FiveTuple {
    let ip = Ipv4Packet::new_unchecked(h);
    let proto = u8::from(ip.next_header());
    let (sp, dp) = match h.get(ip.header_len()..) {
        Some(l4) if l4.len() >= 4 && matches!(proto, 6 | 17 | 132) && !ip.is_fragment() => {
            // TCP, UDP and SCTP all start with the two ports.
            let p = UdpPacket::new_unchecked(l4);
            (p.src_port(), p.dst_port())
        }
        _ => (0, 0),
    };
    Ipv4FiveTuple {
        src_ip: u32::from(ip.src_addr()),
        dst_ip: u32::from(ip.dst_addr()),
        src_port: sp,
        dst_port: dp,
        proto,
    }
}

/// The EM key of an IPv6 packet (`h` from L3 on, already checked).
#[inline(always)]
fn key6(h: &[u8]) -> Ipv6FiveTuple {
    let ip = Ipv6Packet::new_unchecked(h);
    let proto = u8::from(ip.next_header());
    let (sp, dp) = match h.get(40..) {
        Some(l4) if l4.len() >= 4 && matches!(proto, 6 | 17 | 132) => {
            let p = UdpPacket::new_unchecked(l4);
            (p.src_port(), p.dst_port())
        }
        _ => (0, 0),
    };
    Ipv6FiveTuple { src_port: sp, dst_port: dp, proto, src_ip: ip.src_addr().octets(), dst_ip: ip.dst_addr().octets() }
}

impl<B: PacketBuf> Forward<B> for L3Fwd {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::Lengths
    }
    #[inline]
    fn forward(&mut self, rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let t: &L3FwdTables = &self.tables;
        let conf = &self.conf;
        let s = &mut *self.scratch;
        let em = t.lookup == Lookup::Em;
        for p in pkts.iter().take(PREFETCH_OFFSET) {
            p.prefetch();
        }
        while !pkts.is_empty() {
            let n = pkts.len().min(CHUNK);
            let (mut n4, mut n6) = (0usize, 0usize);
            // Pass 1: check, decrement, answer ARP/ND; collect the lookup keys. Four IPv4
            // packets without options at a time when the classifier says so, else one.
            let mut i = 0;
            while i < n {
                if i + 4 <= n && x4::eligible(&pkts[i..n], conf.max_pkt_len) {
                    for p in pkts[..n].iter().skip(i + PREFETCH_OFFSET).take(4) {
                        p.prefetch();
                    }
                    if let Some(r) = x4::step(&mut pkts[i..n]) {
                        for (k, r) in r.into_iter().enumerate() {
                            match r {
                                Err(e) => s.outs[i + k] = Err(e),
                                Ok((dst, l3)) => {
                                    s.idx4[n4] = (i + k) as u8;
                                    if em {
                                        let key = key4(&pkts[i + k].data()[l3..]);
                                        s.hash4[n4] = key.flow_hash();
                                        s.key4[n4] = key;
                                    } else {
                                        s.dst4[n4] = dst;
                                    }
                                    n4 += 1;
                                }
                            }
                        }
                        i += 4;
                        continue;
                    }
                }
                if let Some(p) = pkts.get(i + PREFETCH_OFFSET) {
                    p.prefetch();
                }
                let m = &mut pkts[i];
                let (step, l3) = Self::classify_one(conf, rx_port, m);
                match step {
                    Step::Out(o) => s.outs[i] = o,
                    Step::V4 => {
                        let h = &m.data()[l3..];
                        s.idx4[n4] = i as u8;
                        if em {
                            let k = key4(h);
                            s.hash4[n4] = k.flow_hash();
                            s.key4[n4] = k;
                        } else {
                            s.dst4[n4] = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
                        }
                        n4 += 1;
                    }
                    Step::V6 => {
                        let h = &m.data()[l3..];
                        s.idx6[n6] = i as u8;
                        if em {
                            let k = key6(h);
                            s.hash6[n6] = k.flow_hash();
                            s.key6[n6] = k;
                        } else {
                            s.dst6[n6].copy_from_slice(&h[24..40]);
                        }
                        n6 += 1;
                    }
                }
                i += 1;
            }
            // Pass 2: burst lookups.
            let nh4 = &mut s.nh4[..n4];
            let nh6 = &mut s.nh6[..n6];
            match (em, &t.lpm4, &t.em4) {
                (false, Some(l), _) => {
                    l.lookup_bulk(&s.dst4[..n4], nh4);
                }
                (true, _, Some(e)) => {
                    e.lookup_bulk(&s.hash4[..n4], &s.key4[..n4], nh4);
                }
                _ => nh4.fill(MISS),
            }
            match (em, &t.lpm6, &t.em6) {
                (false, Some(l), _) => {
                    l.lookup_bulk(&s.dst6[..n6], nh6);
                }
                (true, _, Some(e)) => {
                    e.lookup_bulk(&s.hash6[..n6], &s.key6[..n6], nh6);
                }
                _ => nh6.fill(MISS),
            }
            // Pass 3: output port and MAC rewrite of the routed packets.
            let resolve = |nh: u32| -> Outcome {
                match (nh, conf.default_port) {
                    (MISS, Some(p)) => Ok(p),
                    (MISS, None) => Err(DropReason::NoRoute),
                    (p, _) => u16::try_from(p).map_err(|_| DropReason::NoTxPort),
                }
            };
            for (&i, &nh) in
                s.idx4[..n4].iter().zip(s.nh4[..n4].iter()).chain(s.idx6[..n6].iter().zip(s.nh6[..n6].iter()))
            {
                let i = usize::from(i);
                s.outs[i] = resolve(nh).and_then(|out| match conf.rewrite.get(out) {
                    Some(r) => {
                        pkts[i].data_mut()[..12].copy_from_slice(r);
                        Ok(out)
                    }
                    None => Err(DropReason::NoTxPort),
                });
            }
            // Pass 4: hand each packet to its tx buffer or drop it.
            let mut i = 0;
            let outs = &s.outs;
            pkts.drain_front(n, |m| {
                let o = outs[i];
                i += 1;
                match o {
                    Ok(port) => tx.send(port, m),
                    Err(r) => tx.drop_pkt(m, r),
                }
            });
        }
    }

    fn housekeeping(&mut self) {
        if let Some(h) = &self.handle {
            let g = h.generation();
            if g != self.gen {
                self.tables = h.current();
                self.gen = g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 20-byte IPv4 header (UDP, 10.0.0.1 -> 10.0.0.2) with a valid checksum, followed
    /// by `payload` bytes, total length covering both.
    fn ipv4(ttl: u8, payload: usize) -> Vec<u8> {
        let total = (20 + payload) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.resize(20 + payload, 0xab);
        h
    }

    #[test]
    fn rfc1812_checks() {
        let good = ipv4(64, 8);
        let mut p = good.clone();
        assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
        assert_eq!(p[8], 63);
        assert_eq!(checksum::sum(&p[..20]), 0xffff, "checksum still valid after the decrement");
        // Each broken field, alone.
        type Case = (&'static str, fn(&mut Vec<u8>), DropReason);
        let cases: [Case; 7] = [
            ("truncated below 20", |p| p.truncate(19), DropReason::Malformed),
            ("version 6", |p| p[0] = 0x65, DropReason::Malformed),
            ("ihl 4", |p| p[0] = 0x44, DropReason::Malformed),
            ("ihl beyond the frame", |p| p[0] = 0x4f, DropReason::Malformed),
            ("total length < ihl", |p| p[2..4].copy_from_slice(&19u16.to_be_bytes()), DropReason::Malformed),
            ("total length > frame", |p| p[2..4].copy_from_slice(&29u16.to_be_bytes()), DropReason::Malformed),
            ("checksum", |p| p[10] ^= 1, DropReason::BadChecksum),
        ];
        for (what, f, want) in cases {
            let mut p = good.clone();
            f(&mut p);
            let before = p.clone();
            assert_eq!(ipv4_check_and_decrement(&mut p), Err(want), "{what}");
            assert_eq!(p, before, "{what}: unchanged");
        }
        for ttl in [0, 1] {
            let mut p = ipv4(ttl, 0);
            assert_eq!(ipv4_check_and_decrement(&mut p), Err(DropReason::TtlExpired));
        }
        // Options (IHL 6) are accepted and covered by the checksum.
        let mut p = ipv4(9, 4);
        p[0] = 0x46;
        p[10..12].fill(0);
        let c = checksum::checksum(&p[..24]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
        assert_eq!(checksum::sum(&p[..24]), 0xffff);
    }

    proptest! {
        /// The incremental update equals a full recompute for any header.
        #[test]
        fn ttl_decrement_matches_full_recompute(mut h in proptest::collection::vec(any::<u8>(), 20), ttl in 2u8..=255) {
            h[0] = 0x45;
            h[2..4].copy_from_slice(&20u16.to_be_bytes());
            h[8] = ttl;
            h[10..12].fill(0);
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let mut p = h.clone();
            prop_assert_eq!(ipv4_check_and_decrement(&mut p), Ok(()));
            let mut q = h.clone();
            q[8] = ttl - 1;
            q[10..12].fill(0);
            let full = checksum::checksum(&q);
            prop_assert_eq!(checksum::sum(&p[..20]), 0xffff);
            // Equal up to the two representations of zero in one's complement.
            let inc = u16::from_be_bytes([p[10], p[11]]);
            prop_assert!(inc == full || (inc ^ full) == 0xffff && (inc == 0 || full == 0));
        }
    }

    #[test]
    fn ipv6_checks() {
        let mut h = vec![0u8; 48];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[7] = 2;
        assert_eq!(ipv6_check_and_decrement(&mut h), Ok(()));
        assert_eq!(h[7], 1);
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::TtlExpired));
        h[7] = 64;
        h[4..6].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::Malformed));
        h[4..6].copy_from_slice(&8u16.to_be_bytes());
        h[0] = 0x40;
        assert_eq!(ipv6_check_and_decrement(&mut h), Err(DropReason::Malformed));
        assert_eq!(ipv6_check_and_decrement(&mut h[..39]), Err(DropReason::Malformed));
    }

    /// The L3 offset and EtherType come from the classifier's metadata, VLAN tags skipped;
    /// a frame shorter than Ethernet or a tag cut short is `None`.
    #[test]
    fn l3_of_reads_the_classifier_metadata() {
        use crate::classify::{classify_burst_lengths, Classified};
        use crate::mbuf::{MemBacking, Mempool, MempoolConfig};
        let mut c = MempoolConfig::new("l3-of", 64);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let l3 = |f: &[u8]| {
            let mut m = [crate::mbuf::Mbuf::from_slice(&pool, f).unwrap()];
            classify_burst_lengths(&mut m, &mut [Classified::default()]);
            l3_of(&m[0])
        };
        let mut f = vec![0u8; 34];
        f[12..16].copy_from_slice(&[0x08, 0x00, 0x45, 0]);
        f[16..18].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(l3(&f), Some((14, 0x0800)));
        let mut f = vec![0u8; 30];
        f[12..18].copy_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd]);
        assert_eq!(l3(&f), Some((18, 0x86dd)), "a bad IPv6 header still says IPv6");
        f[12..22].copy_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x06]);
        assert_eq!(l3(&f), Some((22, 0x0806)));
        f[12..14].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(l3(&f), Some((14, 0x1234)));
        f[12..22].copy_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x06]);
        assert_eq!(l3(&f[..13]), None);
        assert_eq!(l3(&f[..20]), None);
    }

    #[test]
    fn from_files_reports_line_numbers_and_handle_swaps() {
        let dir = std::env::temp_dir().join(format!("l3fwd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r4.cfg");
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/16 1\n").unwrap();
        let t = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap();
        assert_eq!(t.routes(), (2, 0));
        assert!(!t.has_ipv6());
        let h = TableHandle::new(t);
        assert_eq!(h.generation(), 0);
        // A syntax error, and a port the table refuses: both name line 4.
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/33 1\n").unwrap();
        let e = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        std::fs::write(&f, "# routes\nR10.0.0.0/8 0\n\nR10.1.0.0/16 40\n").unwrap();
        let e = L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("40"), "{e}");
        // EM file.
        std::fs::write(&f, "R10.0.0.2 10.0.0.1 9 9 0x11 1\n").unwrap();
        let t = L3FwdTables::from_files(&f, None, Lookup::Em).unwrap();
        assert_eq!(t.lookup(), Lookup::Em);
        let fwd = L3Fwd::new(&h);
        assert_eq!(h.swap(t), 1);
        assert_eq!(h.generation(), 1);
        let mut fwd2 = fwd.clone();
        <L3Fwd as Forward<crate::mbuf::Mbuf>>::housekeeping(&mut fwd2);
        assert_eq!(fwd2.generation(), 1);
        assert_eq!(fwd2.tables.lookup(), Lookup::Em);
        assert_eq!(fwd.generation(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_checks_ports_and_duplicates() {
        let dir = std::env::temp_dir().join(format!("l3fwd-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (f4, f6) = (dir.join("r4.cfg"), dir.join("r6.cfg"));
        let ports01 = 0b11;
        std::fs::write(&f4, "# routes\nR10.0.0.0/8 0\nR10.1.0.0/16 1\n").unwrap();
        std::fs::write(&f6, "R2001:db8::/32 1\n\nR2001:db8:1::/48 2\n").unwrap();
        let (t, w) = L3FwdTables::load(&f4, None, Lookup::Lpm, ports01).unwrap();
        assert_eq!((t.routes(), w.len()), ((2, 0), 0));
        // A route to a port not in use, IPv6 too: the file, the line and the port.
        let e = L3FwdTables::load(&f4, Some(&f6), Lookup::Lpm, ports01).unwrap_err().to_string();
        assert!(e.contains("r6.cfg: line 3: 2001:db8:1::/48 goes to port 2") && e.contains("in use: 0,1"), "{e}");
        let e = L3FwdTables::load(&f4, None, Lookup::Lpm, 0b01).unwrap_err().to_string();
        assert!(e.contains("r4.cfg: line 3") && e.contains("port 1"), "{e}");
        // from_files does not know the ports.
        assert!(L3FwdTables::from_files(&f4, Some(&f6), Lookup::Lpm).is_ok());
        // The same prefix twice (host bits masked): a warning naming both lines; it counts once.
        std::fs::write(&f4, "R10.0.0.0/8 0\nR10.1.0.0/16 1\nR10.9.9.9/8 1\n").unwrap();
        let (_, w) = L3FwdTables::load(&f4, None, Lookup::Lpm, ports01).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].ends_with("r4.cfg: line 3: 10.0.0.0/8 repeats line 1: port 1 replaces port 0"), "{w:?}");
        // Many: five listed, then a count.
        let many: String = (0..9).map(|i| format!("R10.0.0.0/8 {}\n", i % 2)).collect();
        std::fs::write(&f4, many).unwrap();
        let (_, w) = L3FwdTables::load(&f4, None, Lookup::Lpm, ports01).unwrap();
        assert_eq!(w.len(), 6, "{w:?}");
        assert!(w[5].ends_with("3 more routes repeat an earlier line's prefix"), "{w:?}");
        // EM: the flow twice, and a port not in use.
        std::fs::write(&f4, "R10.0.0.2 10.0.0.1 9 9 0x11 1\nR10.0.0.2 10.0.0.1 9 9 0x11 0\n").unwrap();
        let (_, w) = L3FwdTables::load(&f4, None, Lookup::Em, ports01).unwrap();
        assert!(w[0].contains("line 2: flow 10.0.0.2 10.0.0.1 9 9 0x11 repeats line 1"), "{w:?}");
        std::fs::write(&f4, "R10.0.0.2 10.0.0.1 9 9 0x11 31\n").unwrap();
        assert!(L3FwdTables::load(&f4, None, Lookup::Em, ports01).unwrap_err().to_string().contains("port 31"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lookup_displays_as_the_option_value() {
        assert_eq!(format!("{} {}", Lookup::Lpm, Lookup::Em), "lpm em");
    }

    #[test]
    fn chunked_parse_matches_whole_parse_and_reports_progress() {
        let path = Path::new("r.cfg");
        let mut text = String::from("# header\r\n\n");
        for i in 0..20u32 {
            text.push_str(&format!("R10.{i}.0.0/16 {}\r\n", i % 2));
            if i % 7 == 0 {
                text.push_str("  # comment\n\n");
            }
        }
        let whole = rules::parse_lpm4(&text).unwrap();
        for chunk in [1, 2, 3, 5, 64] {
            let p = BuildProgress::default();
            let r = parse_chunked(&text, path, rules::parse_lpm4, &p, chunk).unwrap();
            assert_eq!(r, whole, "chunk {chunk}");
            assert_eq!(p.routes_parsed(), 20);
        }
        // No trailing newline, and a bad line in a later chunk: the file's line number.
        let bad = format!("{text}R10.99.0.0/16 0\nR10.1.0.0/40 1");
        let line = bad.lines().count();
        for chunk in [1, 4, 1000] {
            let e = parse_chunked(&bad, path, rules::parse_lpm4, &BuildProgress::default(), chunk).unwrap_err();
            let want = rules::parse_lpm4(&bad).unwrap_err();
            assert_eq!(want.line, line);
            assert!(e.to_string().contains(&format!("line {line}:")), "chunk {chunk}: {e}");
        }
        // Cancelled: stops at the next chunk.
        let p = BuildProgress::default();
        p.cancel();
        assert!(matches!(parse_chunked(&text, path, rules::parse_lpm4, &p, 4), Err(TableError::Cancelled)));
        assert_eq!(p.routes_parsed(), 0);
    }

    #[test]
    fn build_with_progress_reaches_done_and_can_be_cancelled() {
        let dir = std::env::temp_dir().join(format!("l3fwd-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r4.cfg");
        let text: String = (0..40_000u32).map(|i| format!("R10.{}.{}.0/24 {}\n", i >> 8, i & 255, i % 2)).collect();
        std::fs::write(&f, text).unwrap();
        let p = BuildProgress::default();
        assert_eq!(p.stage(), BuildStage::Reading);
        let t = L3FwdTables::from_files_with_progress(&f, None, Lookup::Lpm, None, &p).unwrap().0;
        assert_eq!(t.routes(), (40_000, 0));
        assert_eq!((p.stage(), p.routes_parsed()), (BuildStage::Done, 40_000));
        let p = BuildProgress::default();
        p.cancel();
        let e = L3FwdTables::from_files_with_progress(&f, None, Lookup::Lpm, None, &p).unwrap_err();
        assert!(matches!(e, TableError::Cancelled), "{e}");
        assert_eq!(p.stage(), BuildStage::Done);
        assert_eq!(BuildStage::Building.name(), "building");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
