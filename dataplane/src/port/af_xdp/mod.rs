//! AF_XDP ports: packets move between the NIC and the worker through UMEM frames that ARE
//! our mbufs, with no copy on our side.
//!
//! # Memory
//! The mempool's region is registered as the UMEM (`XDP_UMEM_REG`: address and length of the
//! region, `chunk_size` = the pool's chunk size, frame headroom = the 64-byte mbuf header).
//! The kernel puts a received packet at `chunk + umem headroom + XDP_PACKET_HEADROOM` =
//! `chunk + 64 + 256 = chunk + 320`, and reports that in the rx descriptor (`xp_get_handle`):
//! as `chunk + 320` for a UMEM of aligned chunks, as `320 << 48 | chunk` for one registered
//! with `XDP_UMEM_UNALIGNED_CHUNK_FLAG` (our default, see [`AfXdpConfig::unaligned_chunks`]);
//! both decode to `chunk + 320` (`xsk::desc_offset`). That is exactly where an
//! mbuf's data starts with the default 256-byte headroom, so a received frame becomes an
//! [`Mbuf`] by rewriting its header ([`Mempool::mbuf_from_offset`] takes the offset from the
//! address, so an XDP program that moved the start would still be handled). The integration
//! test checks the offset on a live socket. A transmitted mbuf's data offset goes in the tx
//! descriptor as is. Several ports opened over one pool share the UMEM (`XDP_SHARED_UMEM`,
//! each socket with its own fill and completion rings), so forwarding between them copies
//! nothing; a packet from another pool is copied into this pool on transmit. A frame longer
//! than the interface's MTU allows (MTU + 14 bytes, MTU + 18 for an 802.1Q-tagged frame, the
//! rule of the kernel's packet sockets) is a counted transmit error: the kernel would hand
//! it to the driver as it is.
//!
//! # The XDP program
//! Loaded and attached with raw `bpf(2)` calls, not libbpf/libxdp (a C -sys dependency and
//! an ELF object built with clang) nor aya (a large dependency tree for one map and one
//! program): the program is five instructions (see `bpf.rs`) assembled in Rust, so the build
//! needs no clang, BTF or C toolchain, and this works on any kernel with BPF links for XDP
//! (5.9+). It is attached through a BPF link (`BPF_LINK_CREATE`), native mode first, then
//! generic: the kernel detaches it when the link's descriptor is closed — on drop, and also
//! when the process dies, so a crash leaves nothing behind. A program of ours attached the
//! old way (netlink, e.g. by an older build or by hand) is found by name at open and removed;
//! a foreign program is an error saying how to remove it.
//!
//! # Queues
//! One socket per queue id `0..queues`; each [`RxQueue`] owns its socket's rx and fill
//! rings, each [`TxQueue`] its tx and completion rings, so rx and tx can live on different
//! workers. `XDP_USE_NEED_WAKEUP` is used by default: the rx side calls `recvfrom` only when
//! the fill ring is flagged, the tx side `sendto` only when the tx ring is flagged (always, in
//! copy mode). Busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`) is
//! optional; with it the rx side calls `recvfrom` whenever its ring is empty.
//!
//! Binding tries zero-copy where the driver supports it and falls back to copy mode
//! ([`BindMode::Auto`]); veth, for instance, is always copy mode.
#![allow(unsafe_code)]

pub(crate) mod bpf;
pub(crate) mod netdev;
mod xsk;

use super::{
    BoxRx, BoxTx, FrameLimit, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortNote, PortStats,
    QueueClaims, RxQueue, TxQueue,
};
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use netdev::os_err;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use xsk::{Ledger, Xsk, XskFd, XskRing};

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode when the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

/// How the sockets bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy where the driver supports it, else copy.
    #[default]
    Auto,
    /// Zero-copy or fail.
    ZeroCopy,
    /// Copy mode.
    Copy,
}

/// Busy-polling parameters (`SO_BUSY_POLL` microseconds and `SO_BUSY_POLL_BUDGET` packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// Busy-poll time in microseconds.
    pub usecs: u32,
    /// Packets per busy-poll call.
    pub budget: u32,
}

/// AF_XDP port configuration.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// Interface name.
    pub iface: String,
    /// Queues: socket i is bound to NIC queue i, for i in `0..queues` (rx and tx queue counts
    /// are equal).
    pub queues: u16,
    /// Rx ring entries (power of two).
    pub rx_size: u32,
    /// Tx ring entries (power of two).
    pub tx_size: u32,
    /// Fill ring entries (power of two); this many mbufs per queue are lent to the kernel.
    ///
    /// Default 1024, half the rx ring: every frame lent is one the kernel writes into on the
    /// receiving cpu, and fewer frames in circulation keep that write cheap. Over veth (copy
    /// mode) the kernel's copy into our frames fell from ~5 % to ~1 % of the receiving cpu's
    /// time with 512 instead of 2048, and `ci/bench 3 af_xdp` went from 0.91× to 0.98×
    /// (1024) and 0.99× (512): `benches/AF_XDP_RESULTS.md`. The cost: a worker that stalls
    /// (preempted on a shared cpu) finds at most this many frames received meanwhile; raise
    /// it for such workers.
    pub fill_size: u32,
    /// Completion ring entries (power of two).
    pub comp_size: u32,
    /// Where the XDP program runs.
    pub xdp_mode: XdpMode,
    /// Zero-copy or copy binding.
    pub bind_mode: BindMode,
    /// Use XDP_USE_NEED_WAKEUP (default true).
    pub need_wakeup: bool,
    /// Busy polling, when asked.
    pub busy_poll: Option<BusyPoll>,
    /// Put the interface in promiscuous mode while the port is open.
    pub promiscuous: bool,
    /// Register the UMEM in unaligned chunk mode (`XDP_UMEM_UNALIGNED_CHUNK_FLAG`, default
    /// true, as DPDK's `net_af_xdp` does). The kernel then takes a frame's bookkeeping
    /// (`xdp_buff_xsk`) from a short LIFO of free heads instead of one head per chunk of the
    /// pool, which keeps its receive path in cache: with one head per chunk it touches a cold
    /// one per packet. Ports sharing a UMEM follow the port that registered it.
    pub unaligned_chunks: bool,
}

/// The fill ring's default size ([`AfXdpConfig::fill_size`]): the mbufs a queue lends the
/// kernel for receiving.
pub const DEFAULT_FILL_SIZE: u32 = 1024;

impl AfXdpConfig {
    /// One queue on `iface`, rx/tx/completion rings of 2048, fill ring 1024, auto modes,
    /// need_wakeup on, unaligned chunks.
    pub fn new(iface: &str) -> Self {
        AfXdpConfig {
            iface: iface.to_string(),
            queues: 1,
            rx_size: 2048,
            tx_size: 2048,
            fill_size: DEFAULT_FILL_SIZE,
            comp_size: 2048,
            xdp_mode: XdpMode::Auto,
            bind_mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            promiscuous: false,
            unaligned_chunks: true,
        }
    }

    fn validate(&self, pool: &Mempool) -> Result<(), PortError> {
        let bad = |msg: String| Err(PortError::Config { port: self.iface.clone(), msg });
        if self.queues == 0 {
            return bad("an AF_XDP port needs at least one queue".into());
        }
        for (n, v) in [
            ("rx_size", self.rx_size),
            ("tx_size", self.tx_size),
            ("fill_size", self.fill_size),
            ("comp_size", self.comp_size),
        ] {
            if !v.is_power_of_two() || !(64..=(1 << 20)).contains(&v) {
                return bad(format!("{n} {v} must be a power of two from 64 to 2^20"));
            }
        }
        let chunk = pool.config().chunk_size;
        if chunk < 2048 {
            return bad(format!("mempool chunk size {chunk} is below AF_XDP's minimum frame size 2048"));
        }
        let lent = self.fill_size as usize * self.queues as usize;
        if lent >= pool.size() {
            return bad(format!(
                "the fill rings lend {lent} mbufs ({} queues x fill_size {}) but the pool has only {}: use a bigger \
                 pool or smaller rings",
                self.queues,
                self.fill_size,
                pool.size()
            ));
        }
        Ok(())
    }
}

/// The XDP program attached to an interface through a BPF link; detached on drop.
struct Attachment {
    map: OwnedFd,
    _prog: OwnedFd,
    link: Option<OwnedFd>,
    native: bool,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // Closing the link detaches the program.
        drop(self.link.take());
    }
}

/// Mode the port ended up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfXdpMode {
    /// The XDP program runs in native (driver) mode (else generic).
    pub native_xdp: bool,
    /// The sockets are bound in zero-copy mode (else copy).
    pub zerocopy: bool,
    /// The UMEM is shared with an earlier port on the same mempool.
    pub shared_umem: bool,
}

/// An AF_XDP port. See the module docs.
pub struct AfXdpPort {
    cfg: AfXdpConfig,
    id: u16,
    ifindex: u32,
    mac: MacAddr,
    pool: Mempool,
    counters: Arc<PortCounters>,
    claims: QueueClaims,
    rx_parts: Vec<Option<RxParts>>,
    tx_parts: Vec<Option<TxParts>>,
    fds: Vec<Arc<XskFd>>,
    mode: AfXdpMode,
    /// The longest frames sent, from the interface's MTU when the port opened.
    limit: FrameLimit,
    promisc: netdev::PromiscGuard,
    // Dropped last: detaches the program after the sockets are out of the map.
    attach: Attachment,
}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("iface", &self.cfg.iface)
            .field("id", &self.id)
            .field("mode", &self.mode)
            .finish()
    }
}

struct RxParts {
    fd: Arc<XskFd>,
    rx: XskRing,
    fill: XskRing,
}

struct TxParts {
    fd: Arc<XskFd>,
    tx: XskRing,
    comp: XskRing,
}

impl AfXdpPort {
    /// Opens an AF_XDP port with port id `id` on `cfg.iface` (in the calling thread's network
    /// namespace), its frames living in `pool`.
    ///
    /// # Errors
    /// [`PortError::Config`] for a bad configuration; [`PortError::Os`] with a hint when the
    /// interface does not exist, privileges are missing (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW),
    /// the locked-memory limit cannot cover the UMEM (raised when allowed; CAP_IPC_LOCK lifts it),
    /// XDP cannot be attached (unsupported mode, a foreign program already there) or a socket
    /// cannot be bound.
    pub fn open(id: u16, cfg: AfXdpConfig, pool: Mempool) -> Result<Self, PortError> {
        let name = cfg.iface.clone();
        let ifindex = netdev::ifindex(&name)?;
        cfg.validate(&pool)?;
        let mac = netdev::mac(&name)?;
        let mtu = netdev::mtu(&name).map_err(|e| os_err(&name, "reading the MTU", e, ""))?;
        let map = bpf::create_xskmap(cfg.queues as u32)
            .map_err(|e| os_err(&name, "creating the XSKMAP", e, "; is the kernel built with CONFIG_XDP_SOCKETS?"))?;
        let prog = bpf::load_redirect_prog(&map).map_err(|(e, log)| {
            os_err(&name, "loading the XDP redirect program", e, &format!("; verifier log: {}", log.trim()))
        })?;
        // The UMEM (the whole mempool region) is pinned and charged to RLIMIT_MEMLOCK: raise
        // the limit if allowed, or say so before anything is attached.
        crate::memlock::ensure(pool.region().len() as u64)
            .map_err(|s| PortError::Config { port: name.clone(), msg: format!("the UMEM (the mempool): {s}") })?;
        remove_stale_program(&name, ifindex)?;

        // The program first (it passes packets on while the map is empty): an interface
        // that cannot take it fails before any socket is bound.
        let attach = attach_program(&name, ifindex, map, prog, cfg.xdp_mode)?;
        let mut rx_parts = Vec::new();
        let mut tx_parts = Vec::new();
        let mut fds = Vec::new();
        let params = xsk::SockParams {
            rx: cfg.rx_size,
            tx: cfg.tx_size,
            fill: cfg.fill_size,
            comp: cfg.comp_size,
            mode_flag: match cfg.bind_mode {
                BindMode::Auto => 0,
                BindMode::ZeroCopy => xsk::XDP_ZEROCOPY,
                BindMode::Copy => xsk::XDP_COPY,
            },
            need_wakeup: cfg.need_wakeup,
            unaligned: cfg.unaligned_chunks,
        };
        let mut mode = AfXdpMode { native_xdp: attach.native, zerocopy: false, shared_umem: false };
        for q in 0..cfg.queues {
            let s = open_retrying_busy(&pool, ifindex, q as u32, &params).map_err(|e| {
                let hint = match e.err.raw_os_error() {
                    Some(libc::EOPNOTSUPP) if cfg.bind_mode == BindMode::ZeroCopy => {
                        "; the driver has no zero-copy AF_XDP support: use bind mode copy or auto".to_string()
                    }
                    Some(libc::EBUSY) => "; another AF_XDP socket is already bound to this queue".to_string(),
                    Some(libc::EINVAL) => format!(
                        "; check that queue {q} exists (`ethtool -l {name}`), the ring sizes, and that the mempool's chunk \
                         size ({}) is at most the page size unless it is hugepage-backed",
                        pool.config().chunk_size
                    ),
                    _ => String::new(),
                };
                os_err(&name, format!("queue {q}: {}", e.what), e.err, &hint)
            })?;
            if let Some(b) = cfg.busy_poll {
                xsk::set_busy_poll(s.fd.raw(), b.usecs, b.budget)
                    .map_err(|e| os_err(&name, "enabling busy polling", e, "; busy polling needs Linux 5.11+"))?;
            }
            bpf::map_set(&attach.map, q as u32, s.fd.raw())
                .map_err(|e| os_err(&name, format!("queue {q}: inserting the socket in the XSKMAP"), e, ""))?;
            mode.zerocopy = s.fd.zerocopy();
            mode.shared_umem |= s.shared;
            let Xsk { fd, rx, tx, fill, comp, .. } = s;
            fds.push(fd.clone());
            rx_parts.push(Some(RxParts { fd: fd.clone(), rx, fill }));
            tx_parts.push(Some(TxParts { fd, tx, comp }));
        }

        mode.native_xdp = attach.native;
        let mut promisc = netdev::PromiscGuard::new(&name, ifindex)?;
        if cfg.promiscuous {
            promisc.set(&name, true)?;
        }
        log::info!(
            "af_xdp {name}: {} queue(s), {} XDP, {} mode{}",
            cfg.queues,
            if mode.native_xdp { "native" } else { "generic" },
            if mode.zerocopy { "zero-copy" } else { "copy" },
            if mode.shared_umem { ", shared UMEM" } else { "" }
        );
        Ok(AfXdpPort {
            counters: PortCounters::new(cfg.queues as usize, cfg.queues as usize),
            claims: QueueClaims::new(cfg.queues, cfg.queues),
            cfg,
            id,
            ifindex,
            mac,
            pool,
            rx_parts,
            tx_parts,
            fds,
            mode,
            limit: FrameLimit::new(mtu, usize::MAX),
            promisc,
            attach,
        })
    }

    /// The modes the port runs in.
    pub fn mode(&self) -> AfXdpMode {
        self.mode
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// Opens a socket, retrying for up to half a second while the queue is busy: the kernel
/// releases a closed socket's hold on its queue in deferred work, so a port closed just
/// before can still hold it for a moment.
fn open_retrying_busy(pool: &Mempool, ifindex: u32, q: u32, p: &xsk::SockParams) -> Result<Xsk, xsk::SockError> {
    let mut tries = 0;
    loop {
        match xsk::open(pool, ifindex, q, p) {
            Err(e) if e.err.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Removes a netlink-attached program of ours left by an earlier run; refuses a foreign one.
fn remove_stale_program(name: &str, ifindex: u32) -> Result<(), PortError> {
    let st = bpf::xdp_query(ifindex).map_err(|e| os_err(name, "querying attached XDP programs", e, ""))?;
    for (id, flags, off) in
        [(st.drv, bpf::XDP_FLAGS_DRV_MODE, "xdpdrv off"), (st.skb, bpf::XDP_FLAGS_SKB_MODE, "xdpgeneric off")]
    {
        if id == 0 {
            continue;
        }
        let pname = bpf::prog_name(id).unwrap_or_default();
        if pname != bpf::PROG_NAME {
            return Err(PortError::Os {
                port: name.into(),
                what: format!("attaching XDP: program id {id} ({pname:?}) is already attached"),
                source: std::io::Error::from_raw_os_error(libc::EBUSY),
                hint: format!("; remove it with `ip link set dev {name} {off}` if it is not in use"),
            });
        }
        match bpf::xdp_set_netlink(ifindex, None, flags) {
            Ok(()) => log::warn!("{name}: removed a stale XDP program of ours (id {id}) left by an earlier run"),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(os_err(
                    name,
                    format!("our XDP program (id {id}) is attached through a live BPF link"),
                    e,
                    "; another instance of this program is using the interface",
                ))
            }
            Err(e) => return Err(os_err(name, format!("removing stale XDP program id {id}"), e, "")),
        }
    }
    Ok(())
}

fn attach_program(
    name: &str,
    ifindex: u32,
    map: OwnedFd,
    prog: OwnedFd,
    mode: XdpMode,
) -> Result<Attachment, PortError> {
    let native = bpf::link_create(&prog, ifindex, bpf::XDP_FLAGS_DRV_MODE);
    let (link, is_native) = match (native, mode) {
        (Ok(l), _) => (Ok(l), true),
        (Err(e), XdpMode::Native) => (Err(e), true),
        (Err(e), XdpMode::Auto) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EBUSY)) => (Err(e), true),
        (Err(_), _) => (bpf::link_create(&prog, ifindex, bpf::XDP_FLAGS_SKB_MODE), false),
    };
    let link = match (link, mode) {
        (Ok(l), XdpMode::Generic) if is_native => {
            // Generic asked: native succeeded first only because we tried it; redo generic.
            drop(l);
            bpf::link_create(&prog, ifindex, bpf::XDP_FLAGS_SKB_MODE)
        }
        (r, _) => r,
    };
    let is_native = is_native && mode != XdpMode::Generic;
    let link = link.map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if mode == XdpMode::Native => {
                "; the driver has no native XDP support: use XDP mode generic or auto".to_string()
            }
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                "; XDP is unsupported here (kernel without BPF links for XDP, < 5.9, or device without XDP)".to_string()
            }
            Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
                "; another XDP program is attached (see `ip -d link show dev {name}`); stop the program that owns it"
            ),
            _ => String::new(),
        };
        os_err(name, "attaching the XDP program", e, &hint)
    })?;
    Ok(Attachment { map, _prog: prog, link: Some(link), native: is_native })
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        for q in 0..self.cfg.queues {
            let _ = bpf::map_clear(&self.attach.map, q as u32);
        }
        // Untaken queue parts park their ledgers on drop (see RxParts/TxParts).
        self.rx_parts.clear();
        self.tx_parts.clear();
    }
}

impl Port for AfXdpPort {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.cfg.iface.clone(),
            driver: "af_xdp".into(),
            rx_queues: self.cfg.queues,
            tx_queues: self.cfg.queues,
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkStatus {
        netdev::link(&self.cfg.iface, self.ifindex)
    }

    fn stats(&self) -> PortStats {
        let mut s = self.counters.snapshot();
        for f in &self.fds {
            if let Ok(k) = f.statistics() {
                s.imissed += k.rx_dropped + k.rx_ring_full;
                s.ierrors += k.rx_invalid_descs;
                s.oerrors += k.tx_invalid_descs;
            }
        }
        s
    }

    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        self.promisc.set(&self.cfg.iface, on)
    }

    /// Where the kernel lost received frames (`imissed` is their sum): with the rx ring full
    /// (the worker fell behind) or with no frame to copy into (`rx_dropped`: the fill ring was
    /// empty, or the frame did not fit); how often the kernel found the fill ring empty.
    fn notes(&self) -> Vec<PortNote> {
        let mut k = xsk::XdpStatistics::default();
        for f in &self.fds {
            if let Ok(s) = f.statistics() {
                k.rx_dropped += s.rx_dropped;
                k.rx_ring_full += s.rx_ring_full;
                k.rx_fill_ring_empty_descs += s.rx_fill_ring_empty_descs;
            }
        }
        if k.rx_dropped + k.rx_ring_full == 0 {
            return vec![];
        }
        vec![PortNote {
            text: format!(
                "port {} ({}): the kernel dropped {} received frames (imissed): {} with the rx ring full, {} with no \
                 fill-ring frame or too long (rx_dropped); fill ring found empty {} times",
                self.id,
                self.cfg.iface,
                k.rx_dropped + k.rx_ring_full,
                k.rx_ring_full,
                k.rx_dropped,
                k.rx_fill_ring_empty_descs
            ),
            fatal: false,
        }]
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        let parts = self.claims.take(&self.cfg.iface, true, q, &mut self.rx_parts)?;
        Ok(Box::new(XdpRx {
            ledger: Some(Ledger::new(&self.pool)),
            parts,
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            q,
            port: self.id,
            need_wakeup: self.cfg.need_wakeup,
            busy_poll: self.cfg.busy_poll.is_some(),
        }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        let parts = self.claims.take(&self.cfg.iface, false, q, &mut self.tx_parts)?;
        Ok(Box::new(XdpTx {
            ledger: Some(Ledger::new(&self.pool)),
            parts,
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            q,
            need_wakeup: self.cfg.need_wakeup,
            limit: self.limit,
        }))
    }
}

/// Fill-ring refill batch.
const FILL_BATCH: u32 = 64;

struct XdpRx {
    parts: RxParts,
    ledger: Option<Ledger>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    q: u16,
    port: u16,
    need_wakeup: bool,
    busy_poll: bool,
}

impl XdpRx {
    /// Tops up the fill ring from the pool, in bursts.
    #[inline]
    fn refill(&mut self) {
        let Some(ledger) = self.ledger.as_mut() else { return };
        let free = self.parts.fill.free(FILL_BATCH);
        if free < FILL_BATCH {
            return;
        }
        let mut b: Burst<Mbuf, { FILL_BATCH as usize }> = Burst::new();
        let mut n = FILL_BATCH as usize;
        while self.pool.alloc_bulk(&mut b, n).is_err() {
            n /= 4;
            if n == 0 {
                self.counters.rx(self.q as usize).nombuf.inc();
                return;
            }
        }
        let mut i = 0;
        let fill = &mut self.parts.fill;
        let pool = &self.pool;
        b.drain_front(n, |m| {
            // Every mbuf of this pool has a chunk offset.
            let off = pool.chunk_offset(&m).unwrap_or(0);
            m.into_raw_chunk();
            ledger.lend(off);
            fill.write_addr(i, off);
            i += 1;
        });
        fill.submit(i);
    }
}

impl RxQueue for XdpRx {
    type Buf = Mbuf;

    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        self.refill();
        let want = max.min(out.spare()) as u32;
        if want == 0 {
            return 0;
        }
        let n = self.parts.rx.ready(want);
        if n == 0 {
            if self.busy_poll || (self.need_wakeup && self.parts.fill.needs_wakeup()) {
                xsk::kick_rx(self.parts.fd.raw());
            }
            return 0;
        }
        let Some(ledger) = self.ledger.as_mut() else { return 0 };
        let meta = PacketMeta { port: self.port, queue: self.q, ..Default::default() };
        let mut got = 0usize;
        let mut bytes = 0usize;
        let mut bad = 0u64;
        for i in 0..n {
            let d = self.parts.rx.read_desc(i);
            let addr = xsk::desc_offset(d.addr);
            if !ledger.take_back(addr) {
                bad += 1;
                continue;
            }
            // SAFETY: the ledger says this chunk was lent by this queue and the kernel has
            // given it back in the rx ring: we own it and no Mbuf refers to it.
            match unsafe { self.pool.mbuf_from_offset(addr, d.len) } {
                Some(mut m) => {
                    m.set_meta(meta);
                    bytes += d.len as usize;
                    got += 1;
                    // Room was checked (want <= spare).
                    let _ = out.push(m);
                }
                None => {
                    bad += 1;
                    // Return the chunk itself: its data area start is always valid.
                    let chunk = addr & !(self.pool.config().chunk_size as u64 - 1);
                    // SAFETY: as above, we own the chunk.
                    drop(unsafe { self.pool.mbuf_from_offset(chunk + crate::mbuf::MBUF_HEADER as u64, 0) });
                }
            }
        }
        self.parts.rx.release(n);
        let c = self.counters.rx(self.q as usize);
        c.packets.add(got as u64);
        c.bytes.add(bytes as u64);
        if bad > 0 {
            c.errors.add(bad);
        }
        got
    }
}

impl Drop for XdpRx {
    fn drop(&mut self) {
        if let Some(l) = self.ledger.take() {
            self.parts.fd.park(l);
        }
    }
}

struct XdpTx {
    parts: TxParts,
    ledger: Option<Ledger>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    q: u16,
    need_wakeup: bool,
    /// Longer frames are counted transmit errors (the kernel would leave them to the driver).
    limit: FrameLimit,
}

impl XdpTx {
    /// Drains the completion ring, returning finished chunks to the pool in bursts.
    #[inline]
    fn complete(&mut self) {
        let Some(ledger) = self.ledger.as_mut() else { return };
        let mut b: Burst<Mbuf, 64> = Burst::new();
        let mut bad = 0;
        // Bounded: at most the ring size per call.
        for _ in 0..(self.parts.comp.size() / 64 + 1) {
            let n = self.parts.comp.ready(64);
            if n == 0 {
                break;
            }
            for i in 0..n {
                let addr = xsk::desc_offset(self.parts.comp.read_addr(i));
                if !ledger.take_back(addr) {
                    bad += 1;
                    continue;
                }
                let chunk = addr & !(self.pool.config().chunk_size as u64 - 1);
                // SAFETY: the ledger says the chunk was lent by this queue and the kernel has
                // returned it in the completion ring: we own it.
                if let Some(m) = unsafe { self.pool.mbuf_from_offset(chunk + crate::mbuf::MBUF_HEADER as u64, 0) } {
                    let _ = b.push(m);
                }
            }
            self.parts.comp.release(n);
            Mbuf::free_bulk(&mut b);
        }
        if bad > 0 {
            self.counters.tx(self.q as usize).errors.add(bad);
        }
    }

    #[inline]
    fn kick(&mut self) {
        if self.need_wakeup && !self.parts.tx.needs_wakeup() {
            return;
        }
        // Copy mode sends a bounded batch per call and says EAGAIN when more is left.
        for _ in 0..4 {
            match xsk::kick_tx(self.parts.fd.raw()) {
                Err(libc::EAGAIN) if self.parts.tx.outstanding() > 0 => continue,
                _ => break,
            }
        }
    }
}

impl TxQueue for XdpTx {
    type Buf = Mbuf;

    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        self.complete();
        let free = self.parts.tx.free(pkts.len() as u32);
        let n = (pkts.len() as u32).min(free) as usize;
        if n == 0 {
            if !pkts.is_empty() {
                self.kick();
            }
            return 0;
        }
        let Some(ledger) = self.ledger.as_mut() else { return 0 };
        let mut i = 0u32;
        let mut bytes = 0usize;
        let mut dropped = 0u64;
        let tx = &mut self.parts.tx;
        let pool = &self.pool;
        let limit = self.limit;
        pkts.drain_front(n, |m| {
            // A packet from another pool is copied into ours (counted as a drop if ours is
            // empty); ours goes out as is.
            let m = if pool.owns(&m) {
                m
            } else {
                match Mbuf::from_slice(pool, m.data()) {
                    Ok(c) => c,
                    Err(_) => {
                        dropped += 1;
                        return;
                    }
                }
            };
            if m.is_empty() || !limit.allows(m.data()) {
                dropped += 1;
                return;
            }
            let addr = pool.data_offset(&m).unwrap_or(0);
            let len = m.len();
            m.into_raw_chunk();
            ledger.lend(addr);
            tx.write_desc(i, xsk::XdpDesc { addr, len: len as u32, options: 0 });
            bytes += len;
            i += 1;
        });
        self.parts.tx.submit(i);
        self.kick();
        let c = self.counters.tx(self.q as usize);
        c.packets.add(i as u64);
        c.bytes.add(bytes as u64);
        if dropped > 0 {
            c.errors.add(dropped);
        }
        n
    }

    fn flush(&mut self) {
        self.complete();
        if self.parts.tx.outstanding() > 0 {
            self.kick();
        }
    }
}

impl Drop for XdpTx {
    /// Closing the socket would discard the frames still in the transmit ring (a copy-mode
    /// kick sends a bounded batch): kicks until the kernel has taken them all (bounded,
    /// [`super::drain_at_close`]), then counts what it never took as transmit errors.
    fn drop(&mut self) {
        let left = super::drain_at_close(
            self,
            |q| u64::from(q.parts.tx.outstanding()),
            |q| {
                q.kick();
                q.complete();
            },
        );
        if left > 0 {
            log::warn!("af_xdp tx queue {}: {left} frame(s) never taken by the kernel; counted as tx errors", self.q);
            self.counters.tx(self.q as usize).errors.add(left);
        }
        self.complete();
        if let Some(l) = self.ledger.take() {
            self.parts.fd.park(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MemBacking, MempoolConfig};

    fn pool() -> Mempool {
        let mut c = MempoolConfig::new("xdp-unit", 1024);
        c.backing = MemBacking::Normal;
        Mempool::new(c).unwrap()
    }

    #[test]
    fn config_checks() {
        let p = pool();
        let mut c = AfXdpConfig::new("lo");
        assert!(matches!(c.validate(&p), Err(PortError::Config { .. })), "fill 1024 lent = all 1024 mbufs");
        c.fill_size = 256;
        assert!(c.validate(&p).is_ok());
        c.rx_size = 1000;
        assert!(matches!(c.validate(&p), Err(PortError::Config { .. })));
        c.rx_size = 256;
        c.queues = 0;
        assert!(matches!(c.validate(&p), Err(PortError::Config { .. })));
        c.queues = 8;
        assert!(matches!(c.validate(&p), Err(PortError::Config { .. })), "8 x 256 lent > 1024 mbufs");
        let mut small = MempoolConfig::new("xdp-1k", 64);
        small.chunk_size = 1024;
        small.headroom = 128;
        small.backing = MemBacking::Normal;
        let c = AfXdpConfig { fill_size: 64, ..AfXdpConfig::new("lo") };
        assert!(matches!(c.validate(&Mempool::new(small).unwrap()), Err(PortError::Config { .. })));
    }

    /// A program of ours left attached through netlink (as by a crashed older run) is
    /// replaced; a foreign one is refused with the command that removes it.
    #[test]
    fn stale_program_is_replaced_foreign_one_refused() {
        if !netns::require_or_skip("stale_program_is_replaced_foreign_one_refused") {
            return;
        }
        let ns = netns::Netns::new("stale").unwrap();
        let (stale, foreign) = ns
            .run(|| {
                let lo = netdev::ifindex("lo").unwrap();
                let leave = |name: &str| {
                    let map = bpf::create_xskmap(1).unwrap();
                    let prog = bpf::load_named(&map, name).map_err(|(e, l)| format!("{e}: {l}")).unwrap();
                    bpf::xdp_set_netlink(lo, Some(&prog), bpf::XDP_FLAGS_SKB_MODE).unwrap();
                    // The descriptors close here; the netlink attachment stays.
                };
                let pool = pool();
                let cfg = AfXdpConfig { fill_size: 256, xdp_mode: XdpMode::Generic, ..AfXdpConfig::new("lo") };
                leave(bpf::PROG_NAME);
                assert_ne!(bpf::xdp_query(lo).unwrap().skb, 0);
                let stale = AfXdpPort::open(0, cfg.clone(), pool.clone()).map(|p| p.mode());
                let after_stale = bpf::xdp_query(lo).unwrap();
                leave("other_prog");
                let foreign = AfXdpPort::open(0, cfg, pool.clone()).map(drop);
                let left = bpf::xdp_query(lo).unwrap().skb;
                bpf::xdp_set_netlink(lo, None, bpf::XDP_FLAGS_SKB_MODE).unwrap();
                assert_eq!(bpf::xdp_query(lo).unwrap(), bpf::XdpState::default());
                assert_eq!(pool.in_use(), 0);
                assert_eq!(after_stale, bpf::XdpState::default(), "nothing left after the port closed");
                assert_ne!(left, 0, "a foreign program is not touched");
                (stale, foreign)
            })
            .unwrap();
        assert!(stale.is_ok(), "{stale:?}");
        match foreign {
            Err(PortError::Os { hint, .. }) => assert!(hint.contains("xdpgeneric off"), "{hint}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!ns.xdp_attached("lo").unwrap());
    }
}
