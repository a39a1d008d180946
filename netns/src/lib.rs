//! Test support for kernel-port tests: network namespaces and veth pairs that are always torn
//! down, on drop and so also when a test panics (unwinding runs `Drop`). Namespaces left by a
//! process that died without unwinding (SIGKILL, abort) are named with its pid and removed by
//! [`Netns::cleanup_stale`], which [`Netns::new`] calls.
//!
//! Addresses are only ever taken from 198.18.0.0/15 (RFC 2544 benchmarking space): every
//! address is checked by [`check_addr`], and MACs must be locally administered unicast
//! (`02:..`). Nothing here touches the caller's own namespace other than creating and deleting
//! namespaces.
//!
//! Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip` from iproute2.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Prefix of every namespace this crate creates.
pub const PREFIX: &str = "dpt-";

/// What went wrong.
#[derive(Debug)]
pub enum Error {
    /// A command failed.
    Cmd {
        /// The command line.
        cmd: String,
        /// Its standard error.
        stderr: String,
    },
    /// An OS call failed.
    Io(io::Error),
    /// A request outside what this crate allows (address range, MAC kind, name).
    Refused(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cmd { cmd, stderr } => write!(f, "`{cmd}` failed: {}", stderr.trim()),
            Error::Io(e) => write!(f, "{e}"),
            Error::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

fn run(args: &[&str]) -> Result<Output> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if !out.status.success() {
        return Err(Error::Cmd { cmd: args.join(" "), stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
    }
    Ok(out)
}

/// Refuses any IPv4 address (with optional `/prefix`) outside 198.18.0.0/15, or a prefix
/// wider than /15.
///
/// # Errors
/// [`Error::Refused`] with the reason.
pub fn check_addr(cidr: &str) -> Result<()> {
    let (ip, prefix) = match cidr.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (cidr, None),
    };
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| Error::Refused(format!("{cidr:?} is not an IPv4 address")))?;
    let o = ip.octets();
    if o[0] != 198 || (o[1] != 18 && o[1] != 19) {
        return Err(Error::Refused(format!("{cidr} is outside 198.18.0.0/15")));
    }
    if let Some(p) = prefix {
        match p.parse::<u8>() {
            Ok(p) if (15..=32).contains(&p) => {}
            _ => return Err(Error::Refused(format!("prefix in {cidr} must be /15 to /32"))),
        }
    }
    Ok(())
}

/// Refuses a MAC that is not locally administered unicast.
///
/// # Errors
/// [`Error::Refused`].
pub fn check_mac(mac: [u8; 6]) -> Result<()> {
    if mac[0] & 0x02 == 0 || mac[0] & 0x01 != 0 {
        return Err(Error::Refused(format!("{} is not a locally administered unicast MAC", fmt_mac(mac))));
    }
    Ok(())
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

fn check_ifname(n: &str) -> Result<()> {
    if n.is_empty() || n.len() > 15 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::Refused(format!("bad interface name {n:?}")));
    }
    Ok(())
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Checks what kernel-port tests need (root, `ip`, namespaces): `Err(reason)` when missing.
pub fn prerequisites() -> std::result::Result<(), String> {
    if !is_root() {
        return Err("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("needs `ip` from iproute2".into());
    }
    Netns::new("probe").map(drop).map_err(|e| format!("cannot create a network namespace: {e}"))
}

/// For a test: with `CI=true` a missing prerequisite fails the test (panics with `reason`);
/// otherwise prints why the test is skipped and returns `false`. Returns `true` when
/// everything is there.
pub fn require_or_skip(test: &str) -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: prerequisite missing under CI=true: {reason}")
        }
        Err(reason) => {
            eprintln!("{test}: SKIPPED: {reason}");
            false
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `dpt-<tag>-<pid>-<n>` with `lo` up and IPv6 off (no router
    /// solicitations or MLD reports in the way of tests).
    ///
    /// # Errors
    /// When `ip netns add` fails (no privilege) or `tag` has odd characters.
    pub fn new(tag: &str) -> Result<Self> {
        if tag.is_empty() || tag.len() > 16 || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::Refused(format!("bad namespace tag {tag:?}")));
        }
        Self::cleanup_stale();
        let name = format!("{PREFIX}{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        run(&["ip", "netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        for k in ["all", "default"] {
            let _ = ns.exec(&["sysctl", "-qw", &format!("net.ipv6.conf.{k}.disable_ipv6=1")]);
        }
        Ok(ns)
    }

    /// Deletes namespaces of ours whose creating process is gone.
    pub fn cleanup_stale() {
        let Ok(dir) = std::fs::read_dir("/run/netns") else { return };
        for e in dir.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = n.strip_prefix(PREFIX) else { continue };
            let mut parts = rest.rsplitn(3, '-');
            let (_seq, pid) = (parts.next(), parts.next().and_then(|p| p.parse::<i32>().ok()));
            if let Some(pid) = pid {
                // SAFETY: kill with signal 0 only checks for existence.
                let alive = unsafe { libc::kill(pid, 0) } == 0
                    || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                if !alive {
                    let _ = run(&["ip", "netns", "del", &n]);
                }
            }
        }
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> args...`.
    ///
    /// # Errors
    /// When the command fails.
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    ///
    /// # Errors
    /// When the command fails.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Runs `f` on a new thread that has joined this namespace and returns its result.
    /// A panic in `f` is propagated to the caller.
    ///
    /// # Errors
    /// When the namespace cannot be entered.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let h = self.spawn(f)?;
        match h.join() {
            Ok(v) => Ok(v),
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Starts `f` on a new thread inside this namespace.
    ///
    /// # Errors
    /// When the namespace file cannot be opened (the thread itself reports a failing
    /// `setns` by panicking).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<T>> {
        spawn_in(&self.name, f)
    }

    /// Sets `ifname`'s MAC (locally administered unicast only).
    ///
    /// # Errors
    /// Refused MAC, or the command fails.
    pub fn set_mac(&self, ifname: &str, mac: [u8; 6]) -> Result<()> {
        check_ifname(ifname)?;
        check_mac(mac)?;
        self.ip(&["link", "set", "dev", ifname, "address", &fmt_mac(mac)]).map(drop)
    }

    /// Adds an address (198.18.0.0/15 only) to `ifname`.
    ///
    /// # Errors
    /// Refused address, or the command fails.
    pub fn add_addr(&self, ifname: &str, cidr: &str) -> Result<()> {
        check_ifname(ifname)?;
        check_addr(cidr)?;
        self.ip(&["addr", "add", cidr, "dev", ifname]).map(drop)
    }

    /// Brings `ifname` up.
    ///
    /// # Errors
    /// When the command fails.
    pub fn link_up(&self, ifname: &str) -> Result<()> {
        check_ifname(ifname)?;
        self.ip(&["link", "set", "dev", ifname, "up"]).map(drop)
    }

    /// Output of `ip -d link show dev <ifname>`.
    ///
    /// # Errors
    /// When the command fails.
    pub fn link_details(&self, ifname: &str) -> Result<String> {
        check_ifname(ifname)?;
        let o = self.ip(&["-d", "link", "show", "dev", ifname])?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// True when an XDP program is attached to `ifname` (any mode).
    ///
    /// # Errors
    /// When the command fails.
    pub fn xdp_attached(&self, ifname: &str) -> Result<bool> {
        Ok(self.link_details(ifname)?.contains("prog/xdp"))
    }

    /// Interface counters, read from `/proc/thread-self/net/dev` inside the namespace.
    ///
    /// # Errors
    /// When the namespace cannot be entered or the interface is not listed.
    pub fn counters(&self, ifname: &str) -> Result<IfCounters> {
        let name = ifname.to_string();
        self.run(move || -> Result<IfCounters> {
            let text = std::fs::read_to_string("/proc/thread-self/net/dev")?;
            parse_net_dev(&text, &name).ok_or_else(|| Error::Refused(format!("{name} not in /proc/net/dev")))
        })?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(&["ip", "netns", "del", &self.name]) {
            eprintln!("netns: could not delete {}: {e}", self.name);
        }
    }
}

/// Counters of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive drops.
    pub rx_dropped: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Transmit drops.
    pub tx_dropped: u64,
}

fn parse_net_dev(text: &str, ifname: &str) -> Option<IfCounters> {
    text.lines().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        if n.trim() != ifname {
            return None;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            return None;
        }
        Some(IfCounters {
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_dropped: v[11],
        })
    })
}

/// Starts `f` on a new thread inside the namespace named `name` (one a [`Netns`] made, seen
/// through its [`Netns::name`] from where the `Netns` itself is out of reach).
///
/// # Errors
/// When the namespace file cannot be opened (the thread itself reports a failing `setns` by
/// panicking).
pub fn spawn_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    let file = File::open(format!("/run/netns/{name}"))?;
    Ok(std::thread::spawn(move || {
        // SAFETY: setns on a namespace fd we opened; it only affects this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
        drop(file);
        f()
    }))
}

/// A veth pair between two namespaces; deleted on drop (deleting one end removes both).
#[derive(Debug)]
pub struct Veth {
    ns: String,
    ifname: String,
}

/// Creates veth `if_a` in `a` paired with `if_b` in `b`, both up.
///
/// # Errors
/// Bad names, or the commands fail.
pub fn veth_pair(a: &Netns, if_a: &str, b: &Netns, if_b: &str) -> Result<Veth> {
    veth_pair_mq(a, if_a, b, if_b, 1)
}

/// Like [`veth_pair`], with `queues` rx and tx queues on each end.
///
/// # Errors
/// Bad names, or the commands fail.
pub fn veth_pair_mq(a: &Netns, if_a: &str, b: &Netns, if_b: &str, queues: u16) -> Result<Veth> {
    check_ifname(if_a)?;
    check_ifname(if_b)?;
    let q = queues.max(1).to_string();
    #[rustfmt::skip]
    a.ip(&["link", "add", if_a, "numtxqueues", &q, "numrxqueues", &q, "type", "veth",
           "peer", "name", if_b, "numtxqueues", &q, "numrxqueues", &q, "netns", b.name()])?;
    let v = Veth { ns: a.name().to_string(), ifname: if_a.to_string() };
    a.link_up(if_a)?;
    b.link_up(if_b)?;
    Ok(v)
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Already gone when its namespace was deleted first: ignore.
        let _ = run(&["ip", "-n", &self.ns, "link", "del", &self.ifname]);
    }
}

/// A raw `AF_PACKET` socket bound to one interface of the calling thread's namespace, for
/// tests that send and count whole frames (every protocol; 100 ms receive timeout).
#[derive(Debug)]
pub struct RawSocket {
    fd: std::os::fd::OwnedFd,
}

impl RawSocket {
    /// Opens a socket on `ifname` (call it inside the namespace, e.g. from [`Netns::run`]).
    ///
    /// # Errors
    /// No such interface, or no CAP_NET_RAW.
    pub fn open(ifname: &str) -> Result<Self> {
        use std::os::fd::FromRawFd;
        check_ifname(ifname)?;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto as i32) };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(ifname).map_err(|_| Error::Refused(format!("bad name {ifname:?}")))?;
        // SAFETY: c is NUL-terminated.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if ifindex == 0 {
            return Err(Error::Refused(format!("no interface {ifname} in this namespace")));
        }
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto;
        sa.sll_ifindex = ifindex as i32;
        // SAFETY: sa is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error().into());
        }
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        // SAFETY: tv is a valid timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error().into());
        }
        Ok(RawSocket { fd })
    }

    /// Sends one whole frame.
    ///
    /// # Errors
    /// The kernel refused it, or sent only part of it.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is readable for its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr() as *const libc::c_void, frame.len(), 0) };
        if n != frame.len() as isize {
            return Err(io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Receives one frame into `buf`: its length, or None when nothing came within 100 ms.
    pub fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        usize::try_from(n).ok().filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_check() {
        for ok in ["198.18.0.1", "198.19.255.254/24", "198.18.0.0/15", "198.18.1.1/32"] {
            assert!(check_addr(ok).is_ok(), "{ok}");
        }
        for bad in ["10.0.0.1", "198.17.0.1", "198.20.0.1/24", "198.18.0.1/8", "198.18.0.1/33", "x", "::1"] {
            assert!(matches!(check_addr(bad), Err(Error::Refused(_))), "{bad}");
        }
    }

    #[test]
    fn mac_check() {
        assert!(check_mac([2, 0, 0, 0, 0, 1]).is_ok());
        assert!(check_mac([0, 0x1b, 0x21, 0, 0, 1]).is_err());
        assert!(check_mac([3, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn net_dev_parsing() {
        let t = "Inter-|   Receive |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 300 4 0 1 0 0 0 0\n";
        let c = parse_net_dev(t, "lo").unwrap();
        assert_eq!((c.rx_bytes, c.rx_packets, c.tx_bytes, c.tx_packets, c.tx_dropped), (100, 2, 300, 4, 1));
        assert!(parse_net_dev(t, "eth0").is_none());
    }

    #[test]
    fn namespace_and_veth_lifecycle() {
        if !require_or_skip("namespace_and_veth_lifecycle") {
            return;
        }
        let a = Netns::new("a").unwrap();
        let b = Netns::new("b").unwrap();
        let name = a.name().to_string();
        let v = veth_pair(&a, "va", &b, "vb").unwrap();
        a.set_mac("va", [2, 0, 0, 0, 0, 0xa]).unwrap();
        assert!(a.set_mac("va", [0, 1, 2, 3, 4, 5]).is_err());
        a.add_addr("va", "198.18.0.1/30").unwrap();
        assert!(a.add_addr("va", "10.1.1.1/24").is_err());
        b.add_addr("vb", "198.18.0.2/30").unwrap();
        let rx = b
            .spawn(|| {
                let s = std::net::UdpSocket::bind("198.18.0.2:9999").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(3))).unwrap();
                let mut buf = [0u8; 16];
                s.recv(&mut buf).map(|n| buf[..n].to_vec())
            })
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        a.run(|| {
            let s = std::net::UdpSocket::bind("198.18.0.1:0").unwrap();
            for _ in 0..3 {
                s.send_to(b"hello", "198.18.0.2:9999").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .unwrap();
        assert_eq!(rx.join().unwrap().unwrap(), b"hello");
        assert!(a.counters("va").unwrap().tx_packets >= 1);
        assert!(!a.xdp_attached("va").unwrap());
        let inside = a.run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap()).unwrap();
        assert!(inside.contains("va:"));
        drop(v);
        drop((a, b));
        assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
    }

    #[test]
    fn dropped_on_panic() {
        if !require_or_skip("dropped_on_panic") {
            return;
        }
        let r = std::panic::catch_unwind(|| {
            let a = Netns::new("panic").unwrap();
            let n = a.name().to_string();
            std::fs::write("/tmp/netns-panic-name", &n).unwrap();
            panic!("test panic");
        });
        assert!(r.is_err());
        let n = std::fs::read_to_string("/tmp/netns-panic-name").unwrap();
        assert!(!std::path::Path::new(&format!("/run/netns/{n}")).exists());
    }
}
