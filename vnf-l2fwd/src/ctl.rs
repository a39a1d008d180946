//! The running VNF's pidfile and `vnf-l2fwd ctl reload`, which sends it SIGHUP (l3fwd then
//! reloads its route files; the other modes ignore it).
#![allow(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where the VNF writes its pid when `--pidfile` is not given (skipped when not writable).
pub const DEFAULT_PIDFILE: &str = "/run/vnf-l2fwd.pid";

/// A pidfile written at start and removed on drop (only while it still holds our pid).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
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
            Ok(()) => Ok(Some(PidFile { path })),
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

    /// Records the result of a reload in [`status_path`] for `ctl reload` to report
    /// (best effort: a failure is logged).
    pub fn write_reload_status(&self, msg: &str) {
        let p = status_path(&self.path);
        let tmp = p.with_extension(format!("reload.{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, format!("{msg}\n")).and_then(|()| std::fs::rename(&tmp, &p)) {
            log::warn!("{}: {e}", p.display());
        }
    }
}

/// Where the VNF records the result of its last reload: `<pidfile>.reload`.
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
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends SIGHUP to `pid`.
///
/// # Errors
/// The OS error (no such process, not permitted).
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
}
