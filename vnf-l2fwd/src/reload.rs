//! l3fwd's route reload, built off the control thread.
//!
//! SIGHUP (`vnf-l2fwd ctl reload`) starts a builder thread that reads and parses the route
//! files and builds new tables ([`L3FwdTables::from_files_with_progress`]). The control loop
//! polls it every 20 ms ([`RouteReload::poll`]) and goes on meanwhile, so the periodic
//! statistics and the metrics stay live and show the reload's progress; once the tables are
//! built, the control thread swaps them in ([`TableHandle::swap`]) and the lcores pick them
//! up at their next housekeeping. The control thread keeps the old tables until every lcore
//! has let go of them, then frees them itself: freeing a big table (tens of MB) on an lcore
//! would stall its forwarding. A bad file keeps the running tables.
//!
//! - Each reload has a number. Its start, its progress every [`PROGRESS_EVERY`] and its
//!   outcome are each logged once (a rejected reload as a warning), and written to the
//!   status file `ctl reload` reads.
//! - A SIGHUP during a reload queues one more, started as soon as the running one ends;
//!   further SIGHUPs until then add nothing. The files may have changed after the running
//!   reload read them, so the queued one reads them again.
//! - Dropping [`RouteReload`] (the VNF stopping) abandons a reload in progress: it cancels
//!   the build, which stops at its next check (every few thousand lines parsed, and between
//!   stages), and does not wait for the thread. The process exits without it.

use crate::ctl::{ReloadState, ReloadStatus};
use crate::metrics::{ReloadProgress, ReloadStats};
use dataplane::l3fwd::{BuildProgress, L3FwdTables, Lookup, TableError, TableHandle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a running reload logs its progress (and updates its status).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The route files a reload reads (`--rule_ipv4`, `--rule_ipv6`) and their format.
#[derive(Debug, Clone)]
pub struct RouteFiles {
    /// IPv4 routes.
    pub ipv4: PathBuf,
    /// IPv6 routes, if any.
    pub ipv6: Option<PathBuf>,
    /// LPM or EM rules.
    pub lookup: Lookup,
    /// The ports routes may go to (bit `p`: port `p` is in use), checked as at start
    /// ([`L3FwdTables::load`]); None: not checked.
    pub ports: Option<u32>,
}

/// A reload whose builder thread runs.
struct Running {
    seq: u64,
    started: Instant,
    progress: Arc<BuildProgress>,
    result: Receiver<Result<(L3FwdTables, Vec<String>), TableError>>,
    next_report: Instant,
}

/// Route reloads on SIGHUP: see the module documentation.
pub struct RouteReload {
    files: RouteFiles,
    handle: TableHandle,
    stats: Arc<ReloadStats>,
    hup: Arc<AtomicBool>,
    /// Number of the last reload started.
    seq: u64,
    running: Option<Running>,
    queued: bool,
    /// Tables swapped out, freed here once no lcore holds them.
    retired: Vec<Arc<L3FwdTables>>,
}

impl std::fmt::Debug for RouteReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteReload")
            .field("files", &self.files)
            .field("seq", &self.seq)
            .field("running", &self.running.as_ref().map(|r| r.seq))
            .field("queued", &self.queued)
            .finish()
    }
}

impl RouteReload {
    /// Reloads `files` into `handle` whenever `hup` is set (by the SIGHUP handler), keeping
    /// `stats` up to date.
    pub fn new(files: RouteFiles, handle: TableHandle, stats: Arc<ReloadStats>, hup: Arc<AtomicBool>) -> Self {
        RouteReload { files, handle, stats, hup, seq: 0, running: None, queued: false, retired: vec![] }
    }

    /// Called by the control loop: swaps in tables that are ready, starts a reload asked for
    /// by SIGHUP (or queued), reports progress. Returns what changed for the status file;
    /// call it again until it returns None (a reload can end and a queued one start in one
    /// turn).
    pub fn poll(&mut self) -> Option<ReloadStatus> {
        self.retired.retain(|t| Arc::strong_count(t) > 1);
        if let Some(st) = self.check_running() {
            return Some(st);
        }
        if self.hup.swap(false, Ordering::Relaxed) {
            if let Some(r) = &self.running {
                if !self.queued {
                    log::info!("reload {} queued (SIGHUP): it starts when reload {} ends", r.seq + 1, r.seq);
                }
                self.queued = true;
            } else {
                return Some(self.start());
            }
        }
        if self.running.is_none() && self.queued {
            self.queued = false;
            return Some(self.start());
        }
        None
    }

    fn start(&mut self) -> ReloadStatus {
        self.seq += 1;
        let seq = self.seq;
        let what = match &self.files.ipv6 {
            Some(p6) => format!("reading {} and {}", self.files.ipv4.display(), p6.display()),
            None => format!("reading {}", self.files.ipv4.display()),
        };
        let progress = Arc::new(BuildProgress::default());
        let (tx, rx) = mpsc::sync_channel(1);
        let (files, p) = (self.files.clone(), progress.clone());
        let spawned = std::thread::Builder::new().name("route-reload".into()).spawn(move || {
            let r = L3FwdTables::from_files_with_progress(
                &files.ipv4,
                files.ipv6.as_deref(),
                files.lookup,
                files.ports,
                &p,
            );
            // The control thread is gone when the VNF stopped meanwhile: nothing to do.
            let _ = tx.send(r);
        });
        if let Err(e) = spawned {
            return self.finish(seq, Instant::now(), Err(format!("cannot start the reload thread: {e}")));
        }
        let now = Instant::now();
        *self.stats.running.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(ReloadProgress { seq, started: now, build: progress.clone() });
        self.running = Some(Running { seq, started: now, progress, result: rx, next_report: now + PROGRESS_EVERY });
        log::info!("reload {seq}: started (SIGHUP): {what}");
        ReloadStatus { seq, state: ReloadState::Running, msg: what }
    }

    /// The outcome of the running reload once its thread is done, or a progress report when
    /// one is due.
    fn check_running(&mut self) -> Option<ReloadStatus> {
        let r = self.running.as_mut()?;
        let outcome = match r.result.try_recv() {
            Ok(Ok((tables, warnings))) => {
                for w in &warnings {
                    log::warn!("reload {}: {w}", r.seq);
                }
                Ok(tables)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(TryRecvError::Disconnected) => Err("the reload thread ended without a result".to_string()),
            Err(TryRecvError::Empty) => {
                if Instant::now() < r.next_report {
                    return None;
                }
                r.next_report += PROGRESS_EVERY;
                let msg = format!(
                    "{}, {} routes parsed, {:.0} s so far",
                    r.progress.stage().name(),
                    r.progress.routes_parsed(),
                    r.started.elapsed().as_secs_f64()
                );
                log::info!("reload {}: {msg}", r.seq);
                return Some(ReloadStatus { seq: r.seq, state: ReloadState::Running, msg });
            }
        };
        let (seq, started) = (r.seq, r.started);
        self.running = None;
        Some(self.finish(seq, started, outcome))
    }

    /// Swaps in built tables or keeps the running ones, and reports which.
    fn finish(&mut self, seq: u64, started: Instant, outcome: Result<L3FwdTables, String>) -> ReloadStatus {
        let st = &self.stats;
        *st.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let secs = started.elapsed().as_secs_f64();
        st.last_ms.store((secs * 1e3) as u64, Ordering::Relaxed);
        match outcome {
            Ok(t) => {
                let (r4, r6) = t.routes();
                self.retired.push(self.handle.current());
                let g = self.handle.swap(t);
                st.ok.fetch_add(1, Ordering::Relaxed);
                st.generation.store(g, Ordering::Relaxed);
                st.routes_v4.store(r4 as u64, Ordering::Relaxed);
                st.routes_v6.store(r6 as u64, Ordering::Relaxed);
                let msg =
                    format!("routes reloaded: generation {g}, {r4} IPv4 routes, {r6} IPv6 routes, in {secs:.1} s");
                log::info!("reload {seq}: {msg}");
                ReloadStatus { seq, state: ReloadState::Ok, msg }
            }
            Err(e) => {
                st.rejected.fetch_add(1, Ordering::Relaxed);
                let msg = format!("reload rejected, generation {} stays: {e}", self.handle.generation());
                log::warn!("reload {seq}: {msg}");
                ReloadStatus { seq, state: ReloadState::Rejected, msg }
            }
        }
    }
}

impl Drop for RouteReload {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.progress.cancel();
            log::warn!(
                "reload {} abandoned after {:.1} s ({}): the VNF is stopping",
                r.seq,
                r.started.elapsed().as_secs_f64(),
                r.progress.stage().name()
            );
            *self.stats.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reloader on a one-route file, and the SIGHUP flag.
    fn setup(dir: &std::path::Path) -> (RouteReload, Arc<AtomicBool>, PathBuf) {
        let f = dir.join("r.cfg");
        std::fs::write(&f, "R198.18.1.0/24 0\n").unwrap();
        let h = TableHandle::new(L3FwdTables::from_files(&f, None, Lookup::Lpm).unwrap());
        let hup = Arc::new(AtomicBool::new(false));
        let files = RouteFiles { ipv4: f.clone(), ipv6: None, lookup: Lookup::Lpm, ports: None };
        (RouteReload::new(files, h, Arc::default(), hup.clone()), hup, f)
    }

    /// Polls until a final status comes, collecting every status on the way.
    fn until_final(r: &mut RouteReload) -> Vec<ReloadStatus> {
        let t0 = Instant::now();
        let mut seen = vec![];
        while t0.elapsed() < Duration::from_secs(20) {
            while let Some(st) = r.poll() {
                let done = st.state.is_final();
                seen.push(st);
                if done {
                    return seen;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no outcome: {seen:?}");
    }

    #[test]
    fn reloads_on_sighup_and_keeps_the_table_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, hup, f) = setup(dir.path());
        assert_eq!(r.poll(), None, "nothing asked");
        let lcore_holds = r.handle.current();
        std::fs::write(&f, "R198.18.1.0/24 0\nR198.18.2.0/24 1\n").unwrap();
        hup.store(true, Ordering::Relaxed);
        let seen = until_final(&mut r);
        assert_eq!(seen[0].state, ReloadState::Running);
        assert!(seen[0].msg.starts_with("reading "), "{seen:?}");
        let last = seen.last().unwrap();
        assert_eq!((last.seq, last.state), (1, ReloadState::Ok));
        assert!(last.msg.starts_with("routes reloaded: generation 1, 2 IPv4 routes, 0 IPv6 routes, in "), "{last:?}");
        assert_eq!(r.handle.current().routes(), (2, 0));
        assert!(r.stats.running.lock().unwrap().is_none());
        // The old table is freed by the control thread once no lcore holds it.
        assert_eq!(r.retired.len(), 1);
        assert_eq!(r.poll(), None);
        assert_eq!(r.retired.len(), 1);
        drop(lcore_holds);
        assert_eq!(r.poll(), None);
        assert!(r.retired.is_empty());

        std::fs::write(&f, "R198.18.1.0/24 0\nR198.18.1.0/33 0\n").unwrap();
        hup.store(true, Ordering::Relaxed);
        let last = until_final(&mut r).pop().unwrap();
        assert_eq!((last.seq, last.state), (2, ReloadState::Rejected));
        assert!(
            last.msg.starts_with("reload rejected, generation 1 stays: ") && last.msg.contains("line 2"),
            "{last:?}"
        );
        assert_eq!((r.handle.generation(), r.handle.current().routes()), (1, (2, 0)));
        let s = &r.stats;
        assert_eq!((s.ok.load(Ordering::Relaxed), s.rejected.load(Ordering::Relaxed)), (1, 1));
        assert_eq!(r.poll(), None);
    }

    #[test]
    fn sighups_during_a_reload_queue_one_more() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, hup, f) = setup(dir.path());
        // A file big enough that the first reload is still running at the next two polls.
        let big: String =
            (0..200_000u32).map(|i| format!("R10.{}.{}.0/24 {}\n", i >> 8 & 255, i & 255, i % 2)).collect();
        std::fs::write(&f, big).unwrap();
        hup.store(true, Ordering::Relaxed);
        let first = r.poll().unwrap();
        assert_eq!((first.seq, first.state), (1, ReloadState::Running));
        for _ in 0..2 {
            hup.store(true, Ordering::Relaxed);
            assert_eq!(r.poll(), None, "queued, not started");
        }
        assert!(r.queued);
        // Replaced whole (renamed), so the first reload reads the big file or this one.
        let tmp = dir.path().join("r.new");
        std::fs::write(&tmp, "R198.18.1.0/24 0\nR198.18.2.0/24 1\nR198.18.3.0/24 1\n").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        let mut all = until_final(&mut r);
        while r.running.is_some() || r.queued {
            all.extend(until_final(&mut r));
        }
        let outcomes: Vec<u64> = all.iter().filter(|s| s.state.is_final()).map(|s| s.seq).collect();
        assert_eq!(outcomes, [1, 2], "one reload queued behind the first, not two: {all:?}");
        assert_eq!(r.handle.current().routes(), (3, 0), "the queued reload read the file again");
        assert_eq!(r.stats.ok.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn dropping_abandons_a_running_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, hup, _) = setup(dir.path());
        hup.store(true, Ordering::Relaxed);
        assert_eq!(r.poll().unwrap().state, ReloadState::Running);
        let progress = r.running.as_ref().unwrap().progress.clone();
        let stats = r.stats.clone();
        drop(r);
        assert!(progress.is_cancelled());
        assert!(stats.running.lock().unwrap().is_none());
        assert_eq!(stats.ok.load(Ordering::Relaxed), 0);
    }
}
