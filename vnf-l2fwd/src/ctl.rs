//! The running VNF's pidfile and `vnf-l2fwd ctl reload`, which sends it SIGHUP (l3fwd then
//! reloads its route files; the other modes ignore it).
//!
//! The VNF records the state of its last few reloads in `<pidfile>.reload`, one
//! [`ReloadStatus`] line each, oldest first: `reload 3 running: parsing, 500000 routes
//! parsed, 5 s so far` while one runs, then `reload 3 ok: …`, `reload 3 rejected: …` or
//! `reload 3 ignored: …`. `ctl reload` notes the last number there before it signals: its
//! SIGHUP makes the next reload (queued behind a running one if need be), whose outcome it
//! waits for. The history keeps that outcome readable when a queued reload starts at once.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the VNF writes its pid when `--pidfile` is not given (skipped when not writable).
pub const DEFAULT_PIDFILE: &str = "/run/vnf-l2fwd.pid";

/// Reloads whose latest state the status file keeps.
const STATUS_HISTORY: usize = 8;

/// A pidfile written at start and removed on drop (only while it still holds our pid).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// The latest state of the last reloads, oldest first.
    reloads: Vec<ReloadStatus>,
}

impl PidFile {
    /// Writes our pid to `path` (`explicit`: named by --pidfile, so failing is an error).
    /// The default path is skipped quietly when it cannot be written or names another live
    /// process.
    ///
    /// # Errors
    /// When an explicit pidfile cannot be written.
    pub fn create(path: Option<&Path>) -> Result<Option<PidFile>, String> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PIDFILE), false),
        };
        if !explicit {
            if let Ok(Some(pid)) = read_pid(&path) {
                if pid != std::process::id() as i32 && alive(pid) {
                    log::info!("{}: held by running pid {pid}; not writing a pidfile", path.display());
                    return Ok(None);
                }
            }
        }
        // Written aside and renamed, so a reader never sees a half-written pid.
        let tmp = path.with_extension(format!("pid.{}", std::process::id()));
        let r = std::fs::File::create(&tmp)
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        match r {
            Ok(()) => Ok(Some(PidFile { path, reloads: vec![] })),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                if explicit {
                    Err(format!("--pidfile {}: {e}", path.display()))
                } else {
                    log::debug!("{}: {e}; not writing a pidfile", path.display());
                    Ok(None)
                }
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the state of a reload in [`status_path`] for `ctl reload` to report, with
    /// the last few before it (best effort: a failure is logged).
    pub fn write_reload_status(&mut self, status: &ReloadStatus) {
        match self.reloads.iter_mut().find(|r| r.seq == status.seq) {
            Some(r) => *r = status.clone(),
            None => self.reloads.push(status.clone()),
        }
        if self.reloads.len() > STATUS_HISTORY {
            self.reloads.remove(0);
        }
        let text: String = self.reloads.iter().map(|r| r.line() + "\n").collect();
        let p = status_path(&self.path);
        let tmp = p.with_extension(format!("reload.{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &p)) {
            log::warn!("{}: {e}", p.display());
        }
    }
}

/// Where a reload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadState {
    /// Building the new tables.
    Running,
    /// New tables swapped in.
    Ok,
    /// A bad route file: the running tables stay.
    Rejected,
    /// This mode has nothing to reload.
    Ignored,
}

impl ReloadState {
    const ALL: [ReloadState; 4] = [ReloadState::Running, ReloadState::Ok, ReloadState::Rejected, ReloadState::Ignored];

    fn word(self) -> &'static str {
        match self {
            ReloadState::Running => "running",
            ReloadState::Ok => "ok",
            ReloadState::Rejected => "rejected",
            ReloadState::Ignored => "ignored",
        }
    }

    /// True for an outcome (not [`ReloadState::Running`]).
    pub fn is_final(self) -> bool {
        self != ReloadState::Running
    }
}

/// The state of reload number `seq` (counted from 1 in each run of the VNF), as the status
/// file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// The reload's number.
    pub seq: u64,
    /// Its state.
    pub state: ReloadState,
    /// What it is doing, or its outcome, for people.
    pub msg: String,
}

impl ReloadStatus {
    /// The status file's line: `reload <seq> <state>: <msg>`.
    pub fn line(&self) -> String {
        format!("reload {} {}: {}", self.seq, self.state.word(), self.msg)
    }

    /// Parses [`line`](Self::line)'s format; None for anything else.
    pub fn parse(s: &str) -> Option<ReloadStatus> {
        let (head, msg) = s.trim().split_once(": ")?;
        let mut w = head.split(' ');
        let (Some("reload"), Some(seq), Some(state), None) = (w.next(), w.next(), w.next(), w.next()) else {
            return None;
        };
        let state = *ReloadState::ALL.iter().find(|st| st.word() == state)?;
        Some(ReloadStatus { seq: seq.parse().ok()?, state, msg: msg.to_string() })
    }
}

/// The reload states recorded beside a pidfile, oldest first (none when there is no file).
pub fn read_reload_statuses(status_file: &Path) -> Vec<ReloadStatus> {
    std::fs::read_to_string(status_file)
        .map(|t| t.lines().filter_map(ReloadStatus::parse).collect())
        .unwrap_or_default()
}

/// Where the VNF records the state of its last reloads: `<pidfile>.reload`.
pub fn status_path(pidfile: &Path) -> PathBuf {
    let mut s = pidfile.as_os_str().to_owned();
    s.push(".reload");
    PathBuf::from(s)
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if matches!(read_pid(&self.path), Ok(Some(p)) if p == std::process::id() as i32) {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(status_path(&self.path));
        }
    }
}

/// Reads a pid from a pidfile: `Ok(None)` when the file does not exist.
///
/// # Errors
/// When the file cannot be read or holds no positive number.
pub fn read_pid(path: &Path) -> Result<Option<i32>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => match s.trim().parse::<i32>() {
            Ok(p) if p > 0 => Ok(Some(p)),
            _ => Err(format!("{}: {:?} is not a pid", path.display(), s.trim())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// True when process `pid` exists.
#[allow(unsafe_code)]
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends SIGHUP to `pid`.
///
/// # Errors
/// The OS error (no such process, not permitted).
#[allow(unsafe_code)]
pub fn sighup(pid: i32) -> std::io::Result<()> {
    if pid <= 0 {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: kill has no memory-safety preconditions; pid > 0 names one process (never a
    // process group or every process).
    match unsafe { libc::kill(pid, libc::SIGHUP) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The command name of process `pid` (`/proc/PID/comm`), if readable.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_written_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pid");
        let f = PidFile::create(Some(&p)).unwrap().unwrap();
        assert_eq!(read_pid(&p).unwrap(), Some(std::process::id() as i32));
        assert!(alive(std::process::id() as i32));
        drop(f);
        assert!(!p.exists());
        assert_eq!(read_pid(&p).unwrap(), None);
        std::fs::write(&p, "zz\n").unwrap();
        assert!(read_pid(&p).is_err());
        assert!(PidFile::create(Some(&dir.path().join("no/such/dir.pid"))).is_err());
        assert!(sighup(0).is_err());
    }

    #[test]
    fn reload_status_lines_round_trip() {
        for (state, word) in [
            (ReloadState::Running, "running"),
            (ReloadState::Ok, "ok"),
            (ReloadState::Rejected, "rejected"),
            (ReloadState::Ignored, "ignored"),
        ] {
            let st = ReloadStatus { seq: 12, state, msg: "a: b, c".into() };
            assert_eq!(st.line(), format!("reload 12 {word}: a: b, c"));
            assert_eq!(ReloadStatus::parse(&format!("{}\n", st.line())), Some(st));
        }
        assert!(!ReloadState::Running.is_final() && ReloadState::Ignored.is_final());
        for bad in ["", "reload 1: routes reloaded", "reload x ok: m", "reload 1 done: m", "reload 1 ok m", "r 1 ok: m"]
        {
            assert_eq!(ReloadStatus::parse(bad), None, "{bad}");
        }
        // The file keeps the latest state of the last STATUS_HISTORY reloads.
        let dir = tempfile::tempdir().unwrap();
        let mut f = PidFile::create(Some(&dir.path().join("v.pid"))).unwrap().unwrap();
        let sp = status_path(f.path());
        assert_eq!(read_reload_statuses(&sp), vec![]);
        let st = |seq, state| ReloadStatus { seq, state, msg: format!("m{seq}") };
        f.write_reload_status(&st(1, ReloadState::Running));
        f.write_reload_status(&st(1, ReloadState::Rejected));
        f.write_reload_status(&st(2, ReloadState::Running));
        assert_eq!(read_reload_statuses(&sp), vec![st(1, ReloadState::Rejected), st(2, ReloadState::Running)]);
        for seq in 2..=20 {
            f.write_reload_status(&st(seq, ReloadState::Ok));
        }
        let kept = read_reload_statuses(&sp);
        assert_eq!(kept.iter().map(|s| s.seq).collect::<Vec<_>>(), (13..=20).collect::<Vec<_>>());
        drop(f);
        assert!(!sp.exists());
    }
}
