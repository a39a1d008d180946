//! The locked-memory budget (`RLIMIT_MEMLOCK`) that pinned buffer memory is charged to.
//!
//! The kernel pins an AF_XDP UMEM (`XDP_UMEM_REG`) and every VFIO DMA mapping, and charges the
//! pages to the user's locked memory unless the process has `CAP_IPC_LOCK`. Over the limit,
//! `XDP_UMEM_REG` fails with a bare `ENOBUFS` ("No buffer space available") and VFIO with
//! `ENOMEM`. [`ensure`] runs before either: it raises the soft limit as far as it may (up to
//! the hard limit, or without bound with `CAP_SYS_RESOURCE`), as libbpf does for BPF maps, and
//! otherwise says which limit is short and what to grant.
//!
//! The kernel counts every process of the user together, so a budget that fits here can still
//! be short once other processes of the same uid hold pinned memory; the callers' own error
//! hints name the limit too.

use std::fmt;

/// `CAP_IPC_LOCK`'s bit in the capability sets.
const CAP_IPC_LOCK: u32 = 14;

/// The locked-memory budget is smaller than what must be pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    /// Bytes that must be pinned.
    pub need: u64,
    /// The soft limit after raising it as far as allowed (bytes).
    pub soft: u64,
    /// The hard limit (bytes).
    pub hard: u64,
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} MiB must be locked in memory but RLIMIT_MEMLOCK allows {} KiB (hard limit {} KiB); grant \
             CAP_IPC_LOCK (`setcap cap_ipc_lock+ep` along with the other capabilities, IPC_LOCK in a pod's \
             securityContext) or raise the limit (`ulimit -l`, `prlimit --memlock`, LimitMEMLOCK= in a systemd \
             unit, the container runtime's memlock ulimit)",
            self.need.div_ceil(1 << 20),
            self.soft / 1024,
            self.hard / 1024
        )
    }
}

impl std::error::Error for Short {}

/// True when the process has `CAP_IPC_LOCK` in its effective set (pinned pages are then not
/// charged to any limit).
pub fn has_ipc_lock() -> bool {
    effective_caps().is_some_and(|c| c & (1 << CAP_IPC_LOCK) != 0)
}

fn effective_caps() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

#[allow(unsafe_code)]
fn get() -> Option<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid rlimit for getrlimit to fill.
    (unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

#[allow(unsafe_code)]
fn set(soft: u64, hard: u64) -> bool {
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: r is a valid rlimit; setrlimit only reads it.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) == 0 }
}

/// Makes room for `need` more bytes of pinned memory: nothing to do with `CAP_IPC_LOCK` or a
/// large enough soft limit; otherwise raises the soft limit to the hard one, and both without
/// bound when the process may (`CAP_SYS_RESOURCE`).
///
/// # Errors
/// [`Short`] when the limit stays below `need` (pages already locked by this process count
/// against it too).
pub fn ensure(need: u64) -> Result<(), Short> {
    if has_ipc_lock() {
        return Ok(());
    }
    let Some((soft, hard)) = get() else { return Ok(()) };
    // Pages this process already pinned count against the same limit.
    let need_total = need.saturating_add(locked_now());
    if soft == libc::RLIM_INFINITY || soft >= need_total {
        return Ok(());
    }
    if !set(libc::RLIM_INFINITY, libc::RLIM_INFINITY) && hard > soft {
        set(hard, hard);
    }
    let (soft, hard) = get().unwrap_or((soft, hard));
    if soft == libc::RLIM_INFINITY || soft >= need_total {
        return Ok(());
    }
    Err(Short { need, soft, hard })
}

/// Bytes this process has locked (`VmLck` in /proc/self/status; 0 when unknown).
fn locked_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let kb = s
                .lines()
                .find_map(|l| l.strip_prefix("VmLck:"))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_limit_and_the_capability() {
        let m = Short { need: 32 << 20, soft: 64 << 10, hard: 64 << 10 }.to_string();
        assert!(m.contains("32 MiB") && m.contains("64 KiB") && m.contains("RLIMIT_MEMLOCK"), "{m}");
        assert!(m.contains("CAP_IPC_LOCK"), "{m}");
    }

    #[test]
    fn a_budget_within_the_limit_is_granted() {
        // Zero bytes always fit, whatever the limit.
        assert_eq!(ensure(0), Ok(()));
        assert!(effective_caps().is_some());
    }
}
