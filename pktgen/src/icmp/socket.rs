//! The ICMP socket: a datagram ("ping") socket, or a raw one, with receive timestamps.
#![allow(unsafe_code)]

use super::*;

pub(super) struct Socket {
    fd: i32,
    pub(super) kind: &'static str,
}

impl Socket {
    pub(super) fn send(&self, pkt: &[u8], to: Ipv4Addr) -> io::Result<()> {
        let sa = sockaddr(to);
        // SAFETY: pkt is a valid buffer of pkt.len() bytes; sa is a sockaddr_in of the given size.
        let n = unsafe {
            libc::sendto(
                self.fd,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// One packet into `buf`, or None when none is waiting: its length, source and receive
    /// time (CLOCK_REALTIME ns: the kernel's timestamp, else now).
    pub(super) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Ipv4Addr, u64)>> {
        let mut sa = sockaddr(Ipv4Addr::UNSPECIFIED);
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // u64s: aligned for cmsghdr; room for one timespec message and more.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header, filled in below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at buffers (name, iov over buf, control) that outlive the call.
        let n = unsafe { libc::recvmsg(self.fd, &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut at = None;
        // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !c.is_null() {
            // SAFETY: c is a valid cmsghdr inside control (checked non-null above).
            let h = unsafe { &*c };
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
                // SAFETY: an SCM_TIMESTAMPNS message carries one timespec; read_unaligned as
                // CMSG_DATA need not be aligned for it.
                let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                at = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            // SAFETY: as above.
            c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
        }
        let from = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
        Ok(Some((n as usize, from, at.unwrap_or_else(realtime_ns))))
    }

    /// The identifier the kernel gave a datagram socket (its local port, known after a send).
    pub(super) fn local_port(&self) -> io::Result<u16> {
        let mut sa = sockaddr(Ipv4Addr::UNSPECIFIED);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: sa/len describe a sockaddr_in we own.
        let r = unsafe { libc::getsockname(self.fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(u16::from_be(sa.sin_port))
        }
    }

    /// Waits until readable or `ns` elapsed.
    pub(super) fn wait(&self, ns: u64) -> Result<(), PingError> {
        let mut p = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        let ts = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as _ };
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let r = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(PingError::Poll(e));
            }
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: fd is a socket this struct opened and owns; closed once, here.
        unsafe { libc::close(self.fd) };
    }
}

pub(super) fn open(kind: i32) -> io::Result<i32> {
    // SAFETY: socket(2) with constant arguments; returns a new fd or -1.
    let fd =
        unsafe { libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // Kernel receive timestamps, as iputils asks for: the RTT then ends when the reply arrived,
    // not when this process got to run. Best effort (without it: the time recvmsg returned).
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on our fd with a valid c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// CLOCK_REALTIME in ns, the clock of SO_TIMESTAMPNS (send and receive times must share it).
pub(super) fn realtime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to a valid pointer; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(super) fn group_range() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| format!("\"{}\"", s.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

pub(super) fn open_socket(kind: SocketKind) -> Result<Socket, PingError> {
    let dgram_err = if kind == SocketKind::Raw {
        None
    } else {
        match open(libc::SOCK_DGRAM) {
            Ok(fd) => return Ok(Socket { fd, kind: "dgram" }),
            Err(e) => Some(e),
        }
    };
    // SAFETY: getegid(2) cannot fail.
    let gid = unsafe { libc::getegid() };
    let dgram_msg = |e: &io::Error| {
        format!(
            "datagram ICMP socket refused ({e}): group {gid} is not in net.ipv4.ping_group_range = {} \
             (set it to include {gid}: sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\", or in Kubernetes \
             securityContext.sysctls)",
            group_range()
        )
    };
    if kind == SocketKind::Dgram {
        return Err(PingError::Socket(dgram_msg(dgram_err.as_ref().expect("set above"))));
    }
    match open(libc::SOCK_RAW) {
        Ok(fd) => Ok(Socket { fd, kind: "raw" }),
        Err(e) => {
            let raw = format!("raw ICMP socket refused ({e}): needs CAP_NET_RAW");
            Err(PingError::Socket(match dgram_err {
                Some(d) => format!("{}; {raw}", dgram_msg(&d)),
                None => raw,
            }))
        }
    }
}

pub(super) fn sockaddr(a: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(a).to_be() },
        sin_zero: [0; 8],
    }
}
