//! The routing tables of one generation ([`L3FwdTables`]: built from route files, checked
//! against the ports), the handle that swaps generations in under running lcores
//! ([`TableHandle`]) and the progress of a build ([`BuildProgress`]).

use crate::lpm::{
    rules, EmConfig, EmKey, EmTable, Ipv4FiveTuple, Ipv6FiveTuple, Lpm4, Lpm4Config, Lpm6, Lpm6Config, Route4, Route6,
    RuleFileError,
};
use crate::port::MAX_PORTS;
use arc_swap::ArcSwap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

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
    pub(super) lookup: Lookup,
    pub(super) lpm4: Option<Lpm4>,
    pub(super) lpm6: Option<Lpm6>,
    pub(super) em4: Option<EmTable<Ipv4FiveTuple>>,
    pub(super) em6: Option<EmTable<Ipv6FiveTuple>>,
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
    ///   [`DropReason::NoTxPort`](crate::stage::DropReason::NoTxPort) (DPDK l3fwd does not use routes to disabled ports either);
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
/// generation in, every [`L3Fwd`](super::L3Fwd) made from the handle picks it up at its next housekeeping.
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

#[cfg(test)]
mod tests {
    use super::*;

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
