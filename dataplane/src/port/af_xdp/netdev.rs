//! Network-interface helpers shared by the kernel-socket ports (AF_XDP and AF_PACKET):
//! interface index, MAC address, link state, promiscuous membership, and the mapping of OS
//! errors to [`PortError`]s that tell the user what to do.
//!
//! Everything here resolves names in the network namespace of the calling thread.

use crate::port::{LinkStatus, MacAddr, PortError};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The hint for a permission error: what each kernel-socket backend needs.
pub(crate) const PRIV_HINT: &str =
    "; an AF_PACKET port needs CAP_NET_RAW; an AF_XDP port needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and \
     CAP_IPC_LOCK (its UMEM is pinned): run as root or grant them with \
     `setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep <binary>` (cap_net_raw+ep is enough for \
     AF_PACKET)";

/// Builds a [`PortError::Os`] with a hint chosen from the errno (permission, missing interface,
/// no memory lock budget) plus `extra` when no errno-specific hint applies.
pub(crate) fn os_err(port: &str, what: impl Into<String>, e: io::Error, extra: &str) -> PortError {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => PRIV_HINT.to_string(),
        Some(libc::ENODEV) | Some(libc::ENXIO) => format!(
            "; interface {port:?} does not exist in this network namespace: check `ip link` (or \
             `ip -n <ns> link`)"
        ),
        Some(libc::ENOMEM) if !extra.is_empty() => extra.to_string(),
        // XDP_UMEM_REG reports a short locked-memory budget as ENOBUFS.
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) => "; out of locked memory (the kernel pins the pages and \
                                                     charges them to RLIMIT_MEMLOCK, counting every process \
                                                     of the user): grant CAP_IPC_LOCK or raise the limit \
                                                     (`ulimit -l`, `prlimit --memlock`, LimitMEMLOCK=)"
            .to_string(),
        _ => extra.to_string(),
    };
    PortError::Os { port: port.to_string(), what: what.into(), source: e, hint }
}

/// The last OS error.
pub(crate) fn last_err() -> io::Error {
    io::Error::last_os_error()
}

/// Interface index of `name`.
pub(crate) fn ifindex(name: &str) -> Result<u32, PortError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0', ' ']) {
        return Err(PortError::Config {
            port: name.to_string(),
            msg: format!("{name:?} is not a valid interface name (1 to 15 bytes, no '/' or spaces)"),
        });
    }
    let c = CString::new(name).map_err(|_| PortError::Config { port: name.into(), msg: "NUL in name".into() })?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = last_err();
        // if_nametoindex reports a missing interface as ENODEV.
        return Err(os_err(name, "looking up the interface", e, ""));
    }
    Ok(idx)
}

/// `struct ifreq`: a name and a 24-byte union.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut r = IfReq { name: [0; libc::IFNAMSIZ], data: [0; 24] };
        for (d, s) in r.name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        r
    }
}

/// A datagram socket for interface ioctls.
fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_err());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(name: &str, req: libc::c_ulong, r: &mut IfReq) -> io::Result<()> {
    let _ = name;
    let s = ioctl_socket()?;
    // SAFETY: r is a properly sized ifreq for the interface ioctls used here.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), req as _, r as *mut IfReq) };
    if rc < 0 {
        return Err(last_err());
    }
    Ok(())
}

/// MAC address of `name` (SIOCGIFHWADDR).
pub(crate) fn mac(name: &str) -> Result<MacAddr, PortError> {
    let mut r = IfReq::new(name);
    ioctl(name, libc::SIOCGIFHWADDR, &mut r).map_err(|e| os_err(name, "reading the MAC address", e, ""))?;
    // sockaddr: sa_family (2 bytes), then the address bytes.
    let mut m = [0u8; 6];
    m.copy_from_slice(&r.data[2..8]);
    Ok(MacAddr(m))
}

/// The interface's MTU (SIOCGIFMTU).
pub(crate) fn mtu(name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name);
    ioctl(name, libc::SIOCGIFMTU, &mut r)?;
    Ok(i32::from_ne_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]).max(0) as u32)
}

/// Interface flags (SIOCGIFFLAGS).
pub(crate) fn flags(name: &str) -> io::Result<u32> {
    let mut r = IfReq::new(name);
    ioctl(name, libc::SIOCGIFFLAGS, &mut r)?;
    Ok(u16::from_ne_bytes([r.data[0], r.data[1]]) as u32)
}

/// Link state of the interface a port's sockets are bound to (`ifindex`): up when IFF_UP and
/// IFF_RUNNING are set; speed and duplex from ethtool when the driver reports them (0 / false
/// otherwise). Once that interface is deleted, the port's sockets are dead: the link stays
/// down, also when an interface of the same name comes back (a new index).
pub(crate) fn link(name: &str, ifindex: u32) -> LinkStatus {
    let Ok(c) = CString::new(name) else { return LinkStatus::default() };
    // SAFETY: c is a valid NUL-terminated string.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } != ifindex {
        return LinkStatus::default();
    }
    let f = flags(name).unwrap_or(0);
    let up = f & libc::IFF_UP as u32 != 0 && f & libc::IFF_RUNNING as u32 != 0;
    let (speed_mbps, full_duplex) = ethtool_speed(name).unwrap_or((0, false));
    LinkStatus { up, speed_mbps, full_duplex }
}

/// ETHTOOL_GSET through SIOCETHTOOL: (speed in Mbit/s, full duplex).
fn ethtool_speed(name: &str) -> io::Result<(u32, bool)> {
    // struct ethtool_cmd (44 bytes): cmd u32, supported u32, advertising u32, speed u16,
    // duplex u8, ..., speed_hi u16 at offset 28.
    let mut cmd = [0u8; 44];
    cmd[..4].copy_from_slice(&1u32.to_ne_bytes()); // ETHTOOL_GSET
    let mut r = IfReq::new(name);
    r.data[..8].copy_from_slice(&(cmd.as_mut_ptr() as usize as u64).to_ne_bytes());
    ioctl(name, 0x8946, &mut r)?; // SIOCETHTOOL
    let speed = u16::from_ne_bytes([cmd[12], cmd[13]]) as u32 | (u16::from_ne_bytes([cmd[28], cmd[29]]) as u32) << 16;
    let speed = if speed == u32::MAX || speed == u16::MAX as u32 { 0 } else { speed };
    Ok((speed, cmd[14] == 1))
}

/// An AF_PACKET socket that holds a promiscuous-mode membership on an interface; the
/// membership (and so promiscuous mode, reference counted by the kernel) ends when it is
/// dropped.
#[derive(Debug)]
pub(crate) struct PromiscGuard {
    fd: OwnedFd,
    ifindex: u32,
    on: bool,
}

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_DROP_MEMBERSHIP: libc::c_int = 2;
const PACKET_MR_PROMISC: u16 = 1;

impl PromiscGuard {
    /// A control socket for `ifindex` (protocol 0: it receives nothing).
    pub(crate) fn new(port: &str, ifindex: u32) -> Result<Self, PortError> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(os_err(port, "opening an AF_PACKET control socket", last_err(), ""));
        }
        // SAFETY: fresh descriptor we own.
        Ok(PromiscGuard { fd: unsafe { OwnedFd::from_raw_fd(fd) }, ifindex, on: false })
    }

    /// Adds or drops the promiscuous membership.
    pub(crate) fn set(&mut self, port: &str, on: bool) -> Result<(), PortError> {
        if on == self.on {
            return Ok(());
        }
        let mreq = libc::packet_mreq {
            mr_ifindex: self.ifindex as i32,
            mr_type: PACKET_MR_PROMISC,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        let opt = if on { PACKET_ADD_MEMBERSHIP } else { PACKET_DROP_MEMBERSHIP };
        setsockopt(&self.fd, SOL_PACKET, opt, &mreq).map_err(|e| os_err(port, "setting promiscuous mode", e, ""))?;
        self.on = on;
        Ok(())
    }
}

/// setsockopt with a value of type T.
pub(crate) fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to size_of::<T>() readable bytes for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            v as *const T as *const libc::c_void,
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(last_err());
    }
    Ok(())
}

/// getsockopt into a value of type T (zeroed first); returns the length the kernel wrote.
pub(crate) fn getsockopt<T: Copy>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, v: &mut T) -> io::Result<usize> {
    let mut len = core::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: v points to size_of::<T>() writable bytes; T is Copy plain data.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), level, opt, v as *mut T as *mut libc::c_void, &mut len) };
    if rc < 0 {
        return Err(last_err());
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_a_clear_error() {
        match ifindex("dp-nonexist0") {
            Err(PortError::Os { hint, source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENODEV));
                assert!(hint.contains("does not exist"), "{hint}");
            }
            other => panic!("expected an OS error, got {other:?}"),
        }
        assert!(matches!(ifindex("a/b"), Err(PortError::Config { .. })));
        assert!(matches!(ifindex(""), Err(PortError::Config { .. })));
        assert!(matches!(ifindex("0123456789abcdefg"), Err(PortError::Config { .. })));
    }

    #[test]
    fn loopback_facts() {
        assert_eq!(mac("lo").unwrap(), MacAddr([0; 6]));
        assert!(ifindex("lo").unwrap() >= 1);
        assert!(flags("lo").unwrap() & libc::IFF_LOOPBACK as u32 != 0);
    }

    #[test]
    fn eperm_hint_names_capabilities() {
        let e = os_err("x", "doing", io::Error::from_raw_os_error(libc::EPERM), "");
        assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
    }
}
