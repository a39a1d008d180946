//! EAL initialisation (once per process) and lcore registration of other threads.
#![allow(unsafe_code)]

use super::DpdkError;
use std::sync::atomic::{AtomicU8, Ordering};

/// EAL state of the process: 0 never initialised, 1 initialising, 2 up, 3 init failed.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Proof that the DPDK EAL is initialised in this process (a zero-sized token).
///
/// EAL cannot be initialised twice, nor re-initialised after `rte_eal_cleanup`, so it is
/// never cleaned up: it lives until the process exits.
#[derive(Debug, Clone, Copy)]
pub struct Eal(());

impl Eal {
    /// Initialises the EAL with `args` (EAL options only, without a program name:
    /// `--no-huge`, `--in-memory`, `--file-prefix NAME`, `-a PCI`, `--vdev SPEC`, `-l LIST`,
    /// `-m MB`, ...). See [`eal_args`] for defaults that work without hugepages.
    ///
    /// # Errors
    /// [`DpdkError::AlreadyInitialised`] on a second call (even after a failed first one:
    /// EAL refuses a second `rte_eal_init`), [`DpdkError::InvalidArg`] for an argument with
    /// a NUL byte, [`DpdkError::Call`] when `rte_eal_init` fails (bad option, no memory,
    /// a device that cannot be probed).
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if let Some(a) = args.iter().find(|a| a.contains('\0')) {
            return Err(DpdkError::InvalidArg { arg: a.clone(), msg: "contains a NUL byte".into() });
        }
        if STATE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(DpdkError::AlreadyInitialised);
        }
        let mut argv: Vec<&str> = Vec::with_capacity(args.len() + 1);
        argv.push("dataplane");
        argv.extend(args.iter().map(String::as_str));
        log::info!("DPDK {}: rte_eal_init {:?}", dpdk_sys::DPDK_VERSION, &argv[1..]);
        let affinity = get_affinity();
        match dpdk_sys::eal_init(&argv) {
            Ok(_) => {
                // rte_eal_init pins the calling thread to the main lcore's cpu. That thread is
                // the application's control thread, and threads it spawns inherit its mask:
                // give it back the mask it had (it keeps lcore id of the main lcore).
                if let Some(set) = affinity {
                    set_affinity(&set);
                }
                STATE.store(2, Ordering::Release);
                Ok(Eal(()))
            }
            Err(e) => {
                STATE.store(3, Ordering::Release);
                Err(DpdkError::call(format!("rte_eal_init {:?}", &argv[1..]), e))
            }
        }
    }

    /// The token, when the EAL is up.
    pub fn get() -> Option<Eal> {
        (STATE.load(Ordering::Acquire) == 2).then_some(Eal(()))
    }

    /// The token, or [`DpdkError::NotInitialised`].
    ///
    /// # Errors
    /// When [`Eal::init`] has not succeeded.
    pub fn require() -> Result<Eal, DpdkError> {
        Self::get().ok_or(DpdkError::NotInitialised)
    }

    /// The NUMA socket of the calling thread (`rte_socket_id`).
    pub fn socket_id(self) -> u32 {
        // SAFETY: EAL is up (self is the proof); a plain query.
        unsafe { dpdk_sys::rte_socket_id() }
    }

    /// The TSC frequency EAL measured (`rte_get_tsc_hz`).
    pub fn tsc_hz(self) -> u64 {
        // SAFETY: EAL is up; a plain query.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// Whether EAL's memory is on hugepages (`rte_eal_has_hugepages`; false under
    /// `--no-huge`).
    pub fn has_hugepages(self) -> bool {
        // SAFETY: EAL is up; a plain query.
        unsafe { dpdk_sys::rte_eal_has_hugepages() != 0 }
    }
}

fn get_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data (all zeroes is an empty set); sched_getaffinity
    // writes at most sizeof(cpu_set_t) bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0).then_some(set)
    }
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: set is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        log::warn!("cannot restore the CPU affinity after rte_eal_init: {}", std::io::Error::last_os_error());
    }
}

/// Free hugepages of the default size, from `/proc/meminfo` (`HugePages_Free`); `None` when
/// it cannot be read.
pub fn hugepages_free() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_hugepages_free(&s)
}

fn parse_hugepages_free(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| l.strip_prefix("HugePages_Free:")).and_then(|v| v.trim().parse().ok())
}

/// Options that say how EAL gets its memory: when the user gives one, [`eal_args`] adds none.
const MEMORY_OPTS: &[&str] =
    &["--no-huge", "-m", "--socket-mem", "--in-memory", "--huge-dir", "--legacy-mem", "--socket-limit"];

fn has_opt(args: &[String], names: &[&str]) -> bool {
    args.iter().any(|a| {
        names.iter().any(|n| {
            a == n
                || a.strip_prefix(n).is_some_and(|r| r.starts_with('='))
                // "-m512" as getopt allows for short options
                || (n.len() == 2 && !n.starts_with("--") && a.starts_with(n) && a.len() > 2 && !a.starts_with("--"))
        })
    })
}

/// EAL arguments: `user`'s, plus `--no-huge -m 512` (with a logged warning) when no
/// hugepages are free and `user` has no memory option (`--no-huge`, `-m`, `--socket-mem`,
/// `--in-memory`, `--huge-dir`, `--legacy-mem`, `--socket-limit`).
pub fn eal_args(user: &[String]) -> Vec<String> {
    eal_args_with(user, hugepages_free())
}

fn eal_args_with(user: &[String], free: Option<u64>) -> Vec<String> {
    let mut v = user.to_vec();
    if !has_opt(user, MEMORY_OPTS) && free.unwrap_or(0) == 0 {
        log::warn!(
            "no free hugepages (HugePages_Free is {}): running DPDK with --no-huge -m 512 \
             (slower: 4 KiB pages, and no physical addresses for real NICs); reserve hugepages \
             with `echo 1024 > /proc/sys/vm/nr_hugepages` or pass memory options with --eal",
            free.map_or_else(|| "unreadable".to_string(), |f| f.to_string())
        );
        v.extend(["--no-huge", "-m", "512"].map(String::from));
    }
    v
}

/// A thread's registration as a (non-EAL) lcore; unregisters when the thread exits.
struct Registration {
    registered: bool,
    has_lcore: bool,
}

impl Registration {
    fn new() -> Self {
        if Eal::get().is_none() {
            return Registration { registered: false, has_lcore: false };
        }
        // SAFETY: EAL is up; reads a thread-local.
        if unsafe { dpdk_sys::dpdk_shim_lcore_id() } != dpdk_sys::LCORE_ID_ANY {
            return Registration { registered: false, has_lcore: true };
        }
        // SAFETY: EAL is up; registers the calling thread (undone in Drop on this thread).
        let rc = unsafe { dpdk_sys::rte_thread_register() };
        if rc != 0 {
            log::warn!(
                "rte_thread_register failed ({}): this thread runs without mempool caches",
                dpdk_sys::strerror(dpdk_sys::rte_errno())
            );
            return Registration { registered: false, has_lcore: false };
        }
        Registration { registered: true, has_lcore: true }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: this thread registered itself in `new` (thread-locals are dropped on
            // their own thread).
            unsafe { dpdk_sys::rte_thread_unregister() };
        }
    }
}

thread_local! {
    static REGISTRATION: Registration = Registration::new();
}

/// Makes sure the calling thread has a DPDK lcore id (so mempool per-lcore caches work):
/// EAL threads have one; any other thread is registered with `rte_thread_register` the
/// first time (and unregistered when it exits). Returns whether the thread has an lcore id.
/// Cheap after the first call (a thread-local read).
#[inline]
pub fn ensure_registered() -> bool {
    REGISTRATION.try_with(|r| r.has_lcore).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn meminfo_parse() {
        assert_eq!(parse_hugepages_free("HugePages_Total: 4\nHugePages_Free:       3\n"), Some(3));
        assert_eq!(parse_hugepages_free("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_hugepages_free("HugePages_Free: x\n"), None);
    }

    #[test]
    fn no_huge_fallback_only_without_memory_options() {
        let base = s(&["-l", "0", "--vdev=net_null0"]);
        let v = eal_args_with(&base, Some(0));
        assert_eq!(&v[3..], &s(&["--no-huge", "-m", "512"])[..]);
        assert_eq!(eal_args_with(&base, None).len(), 6, "unreadable meminfo counts as none");
        assert_eq!(eal_args_with(&base, Some(512)), base, "hugepages free: nothing added");
        for mem in [&["--no-huge"][..], &["-m", "256"], &["-m256"], &["--socket-mem=1024"], &["--in-memory"]] {
            let mut u = base.clone();
            u.extend(s(mem));
            assert_eq!(eal_args_with(&u, Some(0)), u, "{mem:?}");
        }
        // "-l" is not "-m", and "--match" is not "-m".
        let u = s(&["--main-lcore", "0"]);
        assert_eq!(eal_args_with(&u, Some(0)).len(), 5);
    }
}
