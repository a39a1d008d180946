//! The XDP side of an AF_XDP port, with raw `bpf(2)` calls and rtnetlink: an XSKMAP, a
//! five-instruction redirect program assembled here, its attachment through a BPF link, and
//! the netlink query/detach used to find and remove a stale program of ours.
//!
//! The program is
//! ```text
//! r2 = *(u32 *)(r1 + 16)        ; ctx->rx_queue_index
//! r1 = map_fd (ld_imm64, BPF_PSEUDO_MAP_FD)
//! r3 = XDP_PASS                 ; action when the slot is empty
//! call bpf_redirect_map
//! exit
//! ```
//! i.e. `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The name the program is loaded under; a program with this name found on an interface at
/// open time is a leftover of ours.
pub(crate) const PROG_NAME: &str = "dp_xsk_redir";

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_MAP_DELETE_ELEM: i32 = 3;
const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_GET_FD_BY_ID: i32 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i32 = 15;
const BPF_LINK_CREATE: i32 = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;

/// XDP attach flags (`XDP_FLAGS_*`).
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// Native (driver) mode.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// One eBPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high nibble
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// The redirect program for XSKMAP `map_fd`.
pub(crate) fn redirect_program(map_fd: RawFd) -> [Insn; 6] {
    [
        insn(0x61, 2, 1, 16, 0),                     // BPF_LDX | BPF_MEM | BPF_W: r2 = *(u32 *)(r1 + 16)
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd), // BPF_LD | BPF_DW | BPF_IMM: r1 = map
        insn(0, 0, 0, 0, 0),                         // second half of ld_imm64
        insn(0xb7, 3, 0, 0, XDP_PASS),               // BPF_ALU64 | BPF_MOV | BPF_K: r3 = XDP_PASS
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),  // BPF_JMP | BPF_CALL
        insn(0x95, 0, 0, 0, 0),                      // BPF_JMP | BPF_EXIT
    ]
}

/// A `union bpf_attr`, zeroed, with typed writers at byte offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn name(&mut self, off: usize, name: &str) -> &mut Self {
        let n = name.len().min(15);
        self.0[off..off + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
}

fn sys_bpf(cmd: i32, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: attr is a 128-byte zero-initialised bpf_attr; the pointers stored in it (when
    // any) point to buffers that outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len() as u32) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

fn fd_from(rc: i64) -> OwnedFd {
    // SAFETY: rc is a new descriptor returned by bpf(2); we are its only owner.
    unsafe { OwnedFd::from_raw_fd(rc as RawFd) }
}

/// Creates an XSKMAP with `entries` slots.
pub(crate) fn create_xskmap(entries: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP).u32(4, 4).u32(8, 4).u32(12, entries).name(28, "dp_xsks");
    sys_bpf(BPF_MAP_CREATE, &mut a).map(fd_from)
}

/// Loads the redirect program for `map`. On failure the error carries the verifier log.
pub(crate) fn load_redirect_prog(map: &OwnedFd) -> Result<OwnedFd, (io::Error, String)> {
    load_named(map, PROG_NAME)
}

/// Loads the redirect program under `name`.
pub(crate) fn load_named(map: &OwnedFd, name: &str) -> Result<OwnedFd, (io::Error, String)> {
    let prog = redirect_program(map.as_raw_fd());
    let license = c"Dual BSD/GPL";
    let mut log = vec![0u8; 4096];
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut a = Attr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, prog.len() as u32)
            .u64(8, prog.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .name(48, name);
        if log_level > 0 {
            a.u32(24, log_level).u32(28, log.len() as u32).u64(32, log.as_mut_ptr() as u64);
        }
        sys_bpf(BPF_PROG_LOAD, &mut a)
    };
    match attempt(0, &mut log) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            let _ = attempt(1, &mut log);
            let text = CStr::from_bytes_until_nul(&log).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
            Err((e, text))
        }
    }
}

/// Puts socket `xsk` in slot `key` of XSKMAP `map`.
pub(crate) fn map_set(map: &OwnedFd, key: u32, xsk: RawFd) -> io::Result<()> {
    let k = key;
    let v = xsk as u32;
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32).u64(8, &k as *const u32 as u64).u64(16, &v as *const u32 as u64);
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

/// Empties slot `key` of `map`.
pub(crate) fn map_clear(map: &OwnedFd, key: u32) -> io::Result<()> {
    let k = key;
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32).u64(8, &k as *const u32 as u64);
    sys_bpf(BPF_MAP_DELETE_ELEM, &mut a).map(|_| ())
}

/// Attaches `prog` to `ifindex` through a BPF link (`flags`: DRV or SKB mode). The program is
/// detached when the returned descriptor is closed, also when the process dies.
pub(crate) fn link_create(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32).u32(4, ifindex).u32(8, BPF_XDP).u32(12, flags);
    sys_bpf(BPF_LINK_CREATE, &mut a).map(fd_from)
}

/// The name of loaded program `id`.
pub(crate) fn prog_name(id: u32) -> io::Result<String> {
    let mut a = Attr::new();
    a.u32(0, id);
    let fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut a).map(fd_from)?;
    // struct bpf_prog_info up to and including name[16] at offset 64.
    let mut info = [0u64; 10];
    let mut a = Attr::new();
    a.u32(0, fd.as_raw_fd() as u32).u32(4, 80).u64(8, info.as_mut_ptr() as u64);
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    let bytes: Vec<u8> = info[8..10].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(CStr::from_bytes_until_nul(&bytes).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default())
}

// ---- rtnetlink: query and detach XDP programs ----

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 1 << 15;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;

/// XDP programs attached to an interface.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct XdpState {
    /// Native-mode program id (0 = none).
    pub drv: u32,
    /// Generic-mode program id (0 = none).
    pub skb: u32,
    /// Any other attachment (offload), by id.
    pub other: u32,
}

fn nl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval { tv_sec: 2, tv_usec: 0 };
    super::netdev::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
    Ok(fd)
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// nlmsghdr + ifinfomsg for `ifindex`.
fn link_msg(ty: u16, flags: u16, ifindex: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in send
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]); // family, pad, type
    m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // change
    m
}

/// Sends `msg` and returns the first reply message (header included).
fn nl_request(mut msg: Vec<u8>) -> io::Result<Vec<u8>> {
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    let fd = nl_socket()?;
    // SAFETY: zeroed sockaddr_nl is valid (pid 0 = the kernel).
    let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: msg and sa are valid for the call.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
            core::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32768];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    if buf.len() < 16 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink reply"));
    }
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    if ty == NLMSG_ERROR {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err < 0 {
            return Err(io::Error::from_raw_os_error(-err));
        }
    }
    Ok(buf)
}

/// Walks the attributes in `b`, calling `f(type, payload)`.
fn attrs(mut b: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & !NLA_F_NESTED;
        if len < 4 || len > b.len() {
            return;
        }
        f(ty, &b[4..len]);
        let adv = len.div_ceil(4) * 4;
        b = &b[adv.min(b.len())..];
    }
}

fn u32_of(p: &[u8]) -> u32 {
    p.get(..4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]])).unwrap_or(0)
}

/// The XDP programs attached to `ifindex` (in the calling thread's network namespace).
pub(crate) fn xdp_query(ifindex: u32) -> io::Result<XdpState> {
    let reply = nl_request(link_msg(RTM_GETLINK, NLM_F_REQUEST, ifindex))?;
    let ty = u16::from_ne_bytes([reply[4], reply[5]]);
    if ty != RTM_NEWLINK || reply.len() < 32 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected netlink reply"));
    }
    let mlen = (u32_of(&reply[..4]) as usize).min(reply.len());
    let mut st = XdpState::default();
    attrs(&reply[32..mlen], |ty, p| {
        if ty != IFLA_XDP {
            return;
        }
        let mut attached = 0u8;
        let mut single = 0u32;
        attrs(p, |t, v| match t {
            IFLA_XDP_ATTACHED => attached = v.first().copied().unwrap_or(0),
            IFLA_XDP_PROG_ID => single = u32_of(v),
            IFLA_XDP_DRV_PROG_ID => st.drv = u32_of(v),
            IFLA_XDP_SKB_PROG_ID => st.skb = u32_of(v),
            _ => {}
        });
        // With one program attached, only IFLA_XDP_PROG_ID is reported.
        match attached {
            1 if st.drv == 0 => st.drv = single,
            2 if st.skb == 0 => st.skb = single,
            3 => st.other = single,
            _ => {}
        }
    });
    Ok(st)
}

/// Sets (`prog` = Some) or removes (None) the netlink-attached XDP program of `ifindex` in
/// mode `flags`. Fails with EBUSY when the program is held by a live BPF link.
pub(crate) fn xdp_set_netlink(ifindex: u32, prog: Option<&OwnedFd>, flags: u32) -> io::Result<()> {
    let mut m = link_msg(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
    let mut nest = Vec::new();
    push_attr(&mut nest, IFLA_XDP_FD, &prog.map_or(-1, |p| p.as_raw_fd()).to_ne_bytes());
    push_attr(&mut nest, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    push_attr(&mut m, IFLA_XDP | NLA_F_NESTED, &nest);
    nl_request(m).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_encoding() {
        let p = redirect_program(7);
        // SAFETY: Insn is 8 bytes of plain data.
        let bytes: &[u8] = unsafe { core::slice::from_raw_parts(p.as_ptr() as *const u8, 48) };
        #[rustfmt::skip]
        let expect: [u8; 48] = [
            0x61, 0x12, 16, 0, 0, 0, 0, 0,      // r2 = *(u32 *)(r1 + 16)
            0x18, 0x11, 0, 0, 7, 0, 0, 0,       // r1 = map fd 7 (src = PSEUDO_MAP_FD)
            0, 0, 0, 0, 0, 0, 0, 0,
            0xb7, 0x03, 0, 0, 2, 0, 0, 0,       // r3 = 2
            0x85, 0, 0, 0, 51, 0, 0, 0,         // call 51
            0x95, 0, 0, 0, 0, 0, 0, 0,          // exit
        ];
        if cfg!(target_endian = "little") {
            assert_eq!(bytes, &expect);
        }
        assert_eq!(core::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn attr_walk_stops_on_garbage() {
        let mut b = Vec::new();
        push_attr(&mut b, 4, &9u32.to_ne_bytes());
        push_attr(&mut b, 2, &[1]);
        b.extend_from_slice(&[0xff, 0xff, 1, 0]);
        let mut seen = vec![];
        attrs(&b, |t, p| seen.push((t, p.len())));
        assert_eq!(seen, vec![(4, 4), (2, 1)]);
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn program_loads_when_privileged() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let map = create_xskmap(4).unwrap();
        let prog = load_redirect_prog(&map).map_err(|(e, log)| format!("{e}: {log}")).unwrap();
        // Query an interface without programs: lo.
        let lo = super::super::netdev::ifindex("lo").unwrap();
        assert_eq!(xdp_query(lo).unwrap(), XdpState::default());
        drop(prog);
    }
}
