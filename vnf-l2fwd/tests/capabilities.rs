//! The VNF as an unprivileged user with file capabilities, as `setcap` in the README grants
//! them (root needed to set the test up; skipped without it, failing under CI=true):
//!
//! - AF_XDP with CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF runs when the soft locked-memory limit
//!   is below the UMEM but the hard one covers it (the VNF raises the soft limit);
//! - with both limits below the UMEM it stops at once with a message naming RLIMIT_MEMLOCK and
//!   CAP_IPC_LOCK (it used to fail with a bare `XDP_UMEM_REG: No buffer space available`);
//! - with CAP_IPC_LOCK as well, the limit no longer matters;
//! - AF_PACKET runs with CAP_NET_RAW alone, promiscuous mode included.

use netns::{veth_pair, Netns};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The UMEM is 3072 mbufs of 2 KiB (6 MiB): above a 64 KiB limit, below 8 MiB (the hard
/// limit here; raising it needs CAP_SYS_RESOURCE), and above what one port's fill ring lends.
const MBUFS: &str = "3072";

fn tool(name: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success())
}

struct Bed {
    ns: Netns,
    _veth: netns::Veth,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Option<Bed> {
        if !netns::require_or_skip("capabilities") {
            return None;
        }
        for t in ["setcap", "setpriv", "prlimit"] {
            if !tool(t) {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{t} is missing (apt install libcap2-bin util-linux)"
                );
                eprintln!("skipped: {t} is missing");
                return None;
            }
        }
        let ns = Netns::new("caps").unwrap();
        let veth = veth_pair(&ns, "x0", &ns, "x1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // World-searchable and sticky-writable: the unprivileged run reads the binary and
        // writes its pidfile here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_vnf-l2fwd"), dir.path().join("vnf-l2fwd")).unwrap();
        Some(Bed { ns, _veth: veth, dir })
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("vnf-l2fwd")
    }

    fn setcap(&self, caps: &str) {
        let o = Command::new("setcap").arg(caps).arg(self.bin()).output().unwrap();
        assert!(o.status.success(), "setcap {caps}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// Runs the VNF (`io` on x0) in the namespace as uid/gid 65534 with RLIMIT_MEMLOCK `soft:hard`.
    fn run(&self, memlock: &str, backend: &str, extra: &[&str]) -> Output {
        let pidfile = self.dir.path().join("vnf.pid");
        Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "prlimit", &format!("--memlock={memlock}")])
            .args(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(self.bin())
            // testpmd's io mode on one port (paired with itself): one fill ring's worth of mbufs.
            .args(["io", "--port", &format!("{backend}:x0")])
            .args(["--duration", "1", "-T", "0", "--mbufs", MBUFS, "--pidfile"])
            .arg(&pidfile)
            .args(extra)
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("exit {}\n{}{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn assert_ran(o: &Output, what: &str) {
    assert!(o.status.success() && text(o).contains("no leak"), "{what}:\n{}", text(o));
}

#[test]
fn af_xdp_raises_the_soft_memlock_limit_itself() {
    let Some(bed) = Bed::new() else { return };
    bed.setcap("cap_net_admin,cap_net_raw,cap_bpf+ep");
    assert_ran(&bed.run("65536:8388608", "af_xdp", &[]), "soft 64 KiB, hard 8 MiB");
}

#[test]
fn af_xdp_names_the_memlock_limit_and_cap_ipc_lock() {
    let Some(bed) = Bed::new() else { return };
    bed.setcap("cap_net_admin,cap_net_raw,cap_bpf+ep");
    let o = bed.run("65536:65536", "af_xdp", &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("RLIMIT_MEMLOCK") && t.contains("CAP_IPC_LOCK") && t.contains("6 MiB"), "{t}");
    assert!(!t.contains("No buffer space"), "a bare ENOBUFS: {t}");
}

#[test]
fn af_xdp_with_cap_ipc_lock_ignores_the_limit() {
    let Some(bed) = Bed::new() else { return };
    bed.setcap("cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep");
    assert_ran(&bed.run("65536:65536", "af_xdp", &[]), "CAP_IPC_LOCK, 64 KiB limit");
}

#[test]
fn af_packet_needs_only_cap_net_raw() {
    let Some(bed) = Bed::new() else { return };
    bed.setcap("cap_net_raw+ep");
    assert_ran(&bed.run("65536:65536", "af_packet", &["-P"]), "AF_PACKET with CAP_NET_RAW");
    // And AF_XDP with it alone names what is missing.
    let t = text(&bed.run("65536:65536", "af_xdp", &[]));
    assert!(t.contains("CAP_BPF") && t.contains("CAP_NET_ADMIN") && t.contains("setcap"), "{t}");
}
