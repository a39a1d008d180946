//! AF_PACKET ports: memory-mapped TPACKET_V3 receive rings and TPACKET_V2 transmit rings on
//! packet sockets bound to one interface. Works on any interface and kernel (no XDP), at the
//! cost of one copy per packet each way (the rings are kernel memory, not our mbufs).
//!
//! - Receive: one socket per queue; with several queues they form one `PACKET_FANOUT_HASH`
//!   group (the kernel spreads flows over the sockets). Each socket has a TPACKET_V3 ring of
//!   blocks that the kernel hands over when full or when the retire timeout expires; the
//!   queue walks the frames of the current block, copying each into an mbuf, and returns the
//!   block when it has read all of it. Packets the host itself sends (our own tx included)
//!   are ignored: `PACKET_IGNORE_OUTGOING` on a lone socket, the fanout group's
//!   `PACKET_FANOUT_FLAG_IGNORE_OUTGOING` (Linux ≥ 6.9), and on older kernels a check of each
//!   frame's `sll_pkttype`. A VLAN tag the kernel stripped is put back.
//! - Transmit: one socket per queue with a TPACKET_V2 ring: a burst is copied into free
//!   frames marked `TP_STATUS_SEND_REQUEST`, then one non-blocking `sendto` sends them all.
//!   Frames the kernel leaves marked (its qdisc refused one, or the socket's send buffer is
//!   full of frames in flight) go out with a later kick; dropping the queue kicks until none
//!   is left (bounded; the rest are counted errors), as closing the socket would discard them.
//!   A frame longer than the interface's MTU allows (MTU + 14 bytes, MTU + 18 for an
//!   802.1Q-tagged frame, as the kernel rules) is a counted error, and `PACKET_LOSS`
//!   lets the kernel drop a frame it refuses rather than hold the ring behind it.
//!   `qdisc_bypass` sets `PACKET_QDISC_BYPASS` (straight to the driver, no traffic control).
//! - MAC address from SIOCGIFHWADDR, link state from SIOCGIFFLAGS and ethtool, promiscuous
//!   mode through a `PACKET_MR_PROMISC` membership (dropped with the port).
#![allow(unsafe_code)]

use super::af_xdp::netdev::{self, getsockopt, last_err, os_err, setsockopt};
use super::{
    BoxRx, BoxTx, FrameLimit, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims,
    RxQueue, TxQueue,
};
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const SOL_PACKET: libc::c_int = 263;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_LOSS: libc::c_int = 14;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TPACKET_V2: libc::c_int = 1;
const TPACKET_V3: libc::c_int = 2;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
/// The fanout group's own hook skips outgoing packets (Linux ≥ 6.9). Without it the group
/// sees every frame the host sends on the interface: the sockets' `PACKET_IGNORE_OUTGOING`
/// applies to their own hooks only, which fanout replaces with the group's.
const PACKET_FANOUT_FLAG_IGNORE_OUTGOING: u32 = 0x4000;
/// `sll_pkttype` of a frame the host sent.
const PACKET_OUTGOING: u8 = 4;
const ETH_P_ALL: u16 = 0x0003;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;

/// Where a TPACKET_V2 tx frame's data starts: TPACKET2_HDRLEN - sizeof(sockaddr_ll).
const TX_DATA_OFF: usize = 32;

/// AF_PACKET port configuration.
#[derive(Debug, Clone)]
pub struct AfPacketConfig {
    /// Interface name.
    pub iface: String,
    /// Receive and transmit queues (rx sockets form one fanout-hash group).
    pub queues: u16,
    /// Rx ring block size in bytes (a power of two, at least the page size).
    pub block_size: u32,
    /// Rx ring blocks per queue.
    pub block_count: u32,
    /// Rx frame size hint and tx frame size (a power of two from 2048; a packet must fit).
    pub frame_size: u32,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub retire_timeout_ms: u32,
    /// Tx ring frames per queue.
    pub tx_frames: u32,
    /// Send straight to the driver, bypassing the qdisc layer.
    pub qdisc_bypass: bool,
    /// Put the interface in promiscuous mode while the port is open.
    pub promiscuous: bool,
}

impl AfPacketConfig {
    /// One queue on `iface`: 32 rx blocks of 256 KiB (8 MiB: ~32 ms of a busy link at 1 ms retire, so a preempted worker loses nothing), 1 ms retire timeout, 1024 tx frames of
    /// 2048 bytes, qdisc in the path, not promiscuous.
    pub fn new(iface: &str) -> Self {
        AfPacketConfig {
            iface: iface.to_string(),
            queues: 1,
            block_size: 256 << 10,
            block_count: 32,
            frame_size: 2048,
            retire_timeout_ms: 1,
            tx_frames: 1024,
            qdisc_bypass: false,
            promiscuous: false,
        }
    }

    fn validate(&self) -> Result<(), PortError> {
        let bad = |msg: String| Err(PortError::Config { port: self.iface.clone(), msg });
        let page = 4096;
        if self.queues == 0 {
            return bad("an AF_PACKET port needs at least one queue".into());
        }
        if !self.block_size.is_power_of_two() || self.block_size < page {
            return bad(format!("block size {} must be a power of two of at least {page}", self.block_size));
        }
        if !self.frame_size.is_power_of_two() || self.frame_size < 2048 || self.frame_size > self.block_size {
            return bad(format!("frame size {} must be a power of two from 2048 to the block size", self.frame_size));
        }
        if self.block_count == 0 || self.tx_frames == 0 {
            return bad("block_count and tx_frames must be at least 1".into());
        }
        Ok(())
    }
}

/// An AF_PACKET port. See the module docs.
pub struct AfPacketPort {
    cfg: AfPacketConfig,
    id: u16,
    mac: MacAddr,
    counters: Arc<PortCounters>,
    claims: QueueClaims,
    rx: Vec<Option<PacketRx>>,
    tx: Vec<Option<PacketTx>>,
    rx_fds: Vec<Arc<OwnedFd>>,
    /// The interface the sockets are bound to.
    ifindex: u32,
    /// Kernel drops read so far (PACKET_STATISTICS resets on read).
    drops: Mutex<u64>,
    promisc: netdev::PromiscGuard,
}

impl std::fmt::Debug for AfPacketPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketPort").field("iface", &self.cfg.iface).field("id", &self.id).finish()
    }
}

fn packet_socket(name: &str) -> Result<OwnedFd, PortError> {
    // Protocol 0: the socket receives nothing until bound with a protocol.
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err(name, "opening an AF_PACKET socket", last_err(), ""));
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(name: &str, fd: &OwnedFd, ifindex: u32, proto: u16) -> Result<(), PortError> {
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sa: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto.to_be();
    sa.sll_ifindex = ifindex as i32;
    // SAFETY: sa is a valid sockaddr_ll of the given length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
            core::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        return Err(os_err(name, "binding the AF_PACKET socket", last_err(), ""));
    }
    Ok(())
}

/// A shared mapping of a packet socket's ring.
struct RingMap {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by one queue object and used by one thread at a time.
unsafe impl Send for RingMap {}

impl RingMap {
    fn new(name: &str, fd: &OwnedFd, len: usize) -> Result<Self, PortError> {
        // SAFETY: mapping the ring of our own socket; the kernel checks the length.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err(name, "mapping the packet ring", last_err(), ""));
        }
        Ok(RingMap { base: p as *mut u8, len })
    }

    #[inline(always)]
    fn u32_at(&self, off: usize) -> u32 {
        assert!(off + 4 <= self.len);
        // SAFETY: off + 4 <= len, checked above (callers also bound offsets by the block or
        // frame size, so the check never fails).
        unsafe { (self.base.add(off) as *const u32).read_volatile() }
    }

    #[inline(always)]
    fn u16_at(&self, off: usize) -> u16 {
        assert!(off + 2 <= self.len);
        // SAFETY: off + 2 <= len, checked above.
        unsafe { (self.base.add(off) as *const u16).read_volatile() }
    }

    #[inline(always)]
    fn atomic(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: an aligned u32 status word inside the mapping (checked above), shared with
        // the kernel, which only ever accesses it as a whole word.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    #[inline(always)]
    fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(off + len <= self.len);
        // SAFETY: bounds checked above; the frame belongs to user space (status USER).
        unsafe { core::slice::from_raw_parts(self.base.add(off), len) }
    }

    #[inline(always)]
    fn bytes_mut(&mut self, off: usize, len: usize) -> &mut [u8] {
        assert!(off + len <= self.len);
        // SAFETY: bounds checked above; the frame belongs to user space (status AVAILABLE).
        unsafe { core::slice::from_raw_parts_mut(self.base.add(off), len) }
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

impl AfPacketPort {
    /// Opens an AF_PACKET port with port id `id` on `cfg.iface` (in the calling thread's
    /// network namespace); received frames are copied into mbufs from `pool`.
    ///
    /// # Errors
    /// [`PortError::Config`] for a bad configuration, [`PortError::Os`] with a hint when the
    /// interface is missing or CAP_NET_RAW is lacking, or a ring cannot be set up.
    pub fn open(id: u16, cfg: AfPacketConfig, pool: Mempool) -> Result<Self, PortError> {
        let name = cfg.iface.clone();
        let ifindex = netdev::ifindex(&name)?;
        cfg.validate()?;
        let mac = netdev::mac(&name)?;
        let mtu = netdev::mtu(&name).map_err(|e| os_err(&name, "reading the MTU", e, ""))?;
        let mut rx = Vec::new();
        let mut rx_fds = Vec::new();
        let mut tx = Vec::new();
        let mut fanout_id = None;
        for q in 0..cfg.queues {
            let fd = packet_socket(&name)?;
            let nm = name.as_str();
            let e = |what: &'static str| move |err| os_err(nm, format!("queue {q}: {what}"), err, "");
            setsockopt(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3).map_err(e("selecting TPACKET_V3"))?;
            // Old kernels (< 4.20) lack it; outgoing packets are then seen too.
            let _ = setsockopt(&fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32);
            let frames_per_block = cfg.block_size / cfg.frame_size;
            let req: [u32; 7] = [
                cfg.block_size,
                cfg.block_count,
                cfg.frame_size,
                frames_per_block * cfg.block_count,
                cfg.retire_timeout_ms,
                0,
                0,
            ];
            setsockopt(&fd, SOL_PACKET, PACKET_RX_RING, &req).map_err(e("creating the rx ring"))?;
            let map = RingMap::new(&name, &fd, cfg.block_size as usize * cfg.block_count as usize)?;
            bind(&name, &fd, ifindex, ETH_P_ALL)?;
            if cfg.queues > 1 {
                match fanout_id {
                    None => {
                        // Ask the group to skip outgoing frames; older kernels refuse the flag
                        // (EINVAL) and the rx path drops them by `sll_pkttype` instead.
                        let mut flags = PACKET_FANOUT_FLAG_UNIQUEID | PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
                        let mut v = (PACKET_FANOUT_HASH | flags) << 16;
                        if setsockopt(&fd, SOL_PACKET, PACKET_FANOUT, &v).is_err() {
                            flags = PACKET_FANOUT_FLAG_UNIQUEID;
                            v = (PACKET_FANOUT_HASH | flags) << 16;
                            setsockopt(&fd, SOL_PACKET, PACKET_FANOUT, &v).map_err(e("creating the fanout group"))?;
                        }
                        let mut got = 0u32;
                        getsockopt(&fd, SOL_PACKET, PACKET_FANOUT, &mut got).map_err(e("reading the fanout id"))?;
                        // Joining needs the same type and flags, without UNIQUEID.
                        fanout_id = Some((got & 0xffff, flags & !PACKET_FANOUT_FLAG_UNIQUEID));
                    }
                    Some((gid, flags)) => {
                        let v = gid | (PACKET_FANOUT_HASH | flags) << 16;
                        setsockopt(&fd, SOL_PACKET, PACKET_FANOUT, &v).map_err(e("joining the fanout group"))?;
                    }
                }
            }
            let fd = Arc::new(fd);
            rx_fds.push(fd.clone());
            rx.push(Some(PacketRx {
                _fd: fd,
                map,
                block_size: cfg.block_size as usize,
                blocks: cfg.block_count as usize,
                cur: 0,
                in_block: false,
                left: 0,
                next: 0,
                pool: pool.clone(),
                counters: None,
                q,
                port: id,
            }));

            let tfd = packet_socket(&name)?;
            setsockopt(&tfd, SOL_PACKET, PACKET_VERSION, &TPACKET_V2).map_err(e("selecting TPACKET_V2"))?;
            if cfg.qdisc_bypass {
                setsockopt(&tfd, SOL_PACKET, PACKET_QDISC_BYPASS, &1i32).map_err(e("enabling qdisc bypass"))?;
            }
            // A frame the kernel refuses as malformed is let go instead of staying at the
            // ring's head, where it would hold back every later frame.
            setsockopt(&tfd, SOL_PACKET, PACKET_LOSS, &1i32).map_err(e("enabling PACKET_LOSS"))?;
            let tblock = (cfg.frame_size * 16).max(4096);
            let tframes = cfg.tx_frames.div_ceil(16) * 16;
            let treq: [u32; 4] = [tblock, tframes / 16, cfg.frame_size, tframes];
            setsockopt(&tfd, SOL_PACKET, PACKET_TX_RING, &treq).map_err(e("creating the tx ring"))?;
            let tmap = RingMap::new(&name, &tfd, tblock as usize * (tframes / 16) as usize)?;
            // Protocol 0: the tx socket receives nothing.
            bind(&name, &tfd, ifindex, 0)?;
            tx.push(Some(PacketTx {
                fd: tfd,
                map: tmap,
                limit: FrameLimit::new(mtu, cfg.frame_size as usize - TX_DATA_OFF),
                frame_size: cfg.frame_size as usize,
                frames: tframes as usize,
                cur: 0,
                counters: None,
                q,
            }));
        }
        let mut promisc = netdev::PromiscGuard::new(&name, ifindex)?;
        if cfg.promiscuous {
            promisc.set(&name, true)?;
        }
        Ok(AfPacketPort {
            counters: PortCounters::new(cfg.queues as usize, cfg.queues as usize),
            claims: QueueClaims::new(cfg.queues, cfg.queues),
            cfg,
            id,
            mac,
            rx,
            tx,
            rx_fds,
            ifindex,
            drops: Mutex::new(0),
            promisc,
        })
    }
}

impl Port for AfPacketPort {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.cfg.iface.clone(),
            driver: "af_packet".into(),
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
        let mut drops = self.drops.lock().unwrap_or_else(|e| e.into_inner());
        for fd in &self.rx_fds {
            // struct tpacket_stats_v3: packets, drops, freeze_q_cnt (reset on read).
            let mut st = [0u32; 3];
            if getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &mut st).is_ok() {
                *drops += st[1] as u64;
            }
        }
        s.imissed += *drops;
        s
    }

    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        self.promisc.set(&self.cfg.iface, on)
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        let mut r = self.claims.take(&self.cfg.iface, true, q, &mut self.rx)?;
        r.counters = Some(self.counters.clone());
        Ok(Box::new(r))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        let mut t = self.claims.take(&self.cfg.iface, false, q, &mut self.tx)?;
        t.counters = Some(self.counters.clone());
        Ok(Box::new(t))
    }
}

// Offsets in struct tpacket_block_desc (its hdr.bh1 starts at 8).
const BLK_STATUS: usize = 8;
const BLK_NUM_PKTS: usize = 12;
const BLK_FIRST: usize = 16;
// Offsets in struct tpacket3_hdr.
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
const H_RXHASH: usize = 28;
const H_VLAN_TCI: usize = 32;
const H_VLAN_TPID: usize = 36;
const H_SIZE: usize = 48;
/// `sll_pkttype` of the `sockaddr_ll` the kernel puts right after the 48-byte header.
const H_PKTTYPE: usize = H_SIZE + 10;
/// The header and its `sockaddr_ll`.
const H_SIZE_SLL: usize = H_SIZE + 20;

struct PacketRx {
    _fd: Arc<OwnedFd>,
    map: RingMap,
    block_size: usize,
    blocks: usize,
    /// Current block.
    cur: usize,
    /// We are walking `cur` (it belongs to us).
    in_block: bool,
    /// Frames left in the current block.
    left: u32,
    /// Offset of the next frame in the mapping.
    next: usize,
    pool: Mempool,
    counters: Option<Arc<PortCounters>>,
    q: u16,
    port: u16,
}

impl PacketRx {
    fn release_block(&mut self) {
        // Release: our reads of the block happen before the kernel refills it.
        self.map.atomic(self.cur * self.block_size + BLK_STATUS).store(TP_STATUS_KERNEL, Ordering::Release);
        self.cur = (self.cur + 1) % self.blocks;
        self.in_block = false;
    }
}

impl RxQueue for PacketRx {
    type Buf = Mbuf;

    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        let want = max.min(out.spare());
        let (mut got, mut bytes, mut errors, mut nombuf) = (0usize, 0usize, 0u64, 0u64);
        // Bounded: each pass takes a packet or a block.
        let mut guard = want + self.blocks + 1;
        while got < want && guard > 0 {
            guard -= 1;
            let bstart = self.cur * self.block_size;
            if !self.in_block {
                // Acquire: the kernel's writes to the block are visible once we see USER.
                if self.map.atomic(bstart + BLK_STATUS).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                    break;
                }
                self.in_block = true;
                self.left = self.map.u32_at(bstart + BLK_NUM_PKTS);
                self.next = bstart + self.map.u32_at(bstart + BLK_FIRST) as usize;
            }
            if self.left == 0 {
                self.release_block();
                continue;
            }
            let h = self.next;
            let bend = bstart + self.block_size;
            if h + H_SIZE_SLL > bend {
                errors += 1;
                self.release_block();
                continue;
            }
            let snap = self.map.u32_at(h + H_SNAPLEN) as usize;
            let mac = self.map.u16_at(h + H_MAC) as usize;
            let status = self.map.u32_at(h + H_STATUS);
            let next_off = self.map.u32_at(h + H_NEXT) as usize;
            if h + mac + snap > bend {
                errors += 1;
                self.release_block();
                continue;
            }
            self.left -= 1;
            self.next = h + next_off;
            let vlan = status & TP_STATUS_VLAN_VALID != 0 && snap >= 12;
            let total = snap + if vlan { 4 } else { 0 };
            // A frame the host sent (kernels whose fanout groups cannot skip them): never
            // ours to forward, or two ports would echo each other's output forever.
            let outgoing = self.map.bytes(h + H_PKTTYPE, 1)[0] == PACKET_OUTGOING;
            if !outgoing {
                match self.pool.alloc() {
                    Ok(mut m) => match m.append(total) {
                        Some(d) => {
                            let src = self.map.bytes(h + mac, snap);
                            if vlan {
                                let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                                    self.map.u16_at(h + H_VLAN_TPID)
                                } else {
                                    0x8100
                                };
                                let tci = self.map.u32_at(h + H_VLAN_TCI) as u16;
                                d[..12].copy_from_slice(&src[..12]);
                                d[12..14].copy_from_slice(&tpid.to_be_bytes());
                                d[14..16].copy_from_slice(&tci.to_be_bytes());
                                d[16..].copy_from_slice(&src[12..]);
                            } else {
                                d.copy_from_slice(src);
                            }
                            let hash = self.map.u32_at(h + H_RXHASH);
                            m.set_meta(PacketMeta { port: self.port, queue: self.q, hash, ..Default::default() });
                            bytes += total;
                            got += 1;
                            let _ = out.push(m);
                        }
                        None => errors += 1,
                    },
                    Err(_) => nombuf += 1,
                }
            }
            if self.left == 0 {
                self.release_block();
            } else if next_off == 0 {
                errors += 1;
                self.release_block();
            }
        }
        if let Some(c) = &self.counters {
            let c = c.rx(self.q as usize);
            c.packets.add(got as u64);
            c.bytes.add(bytes as u64);
            if errors > 0 {
                c.errors.add(errors);
            }
            if nombuf > 0 {
                c.nombuf.add(nombuf);
            }
        }
        got
    }
}

struct PacketTx {
    fd: OwnedFd,
    map: RingMap,
    /// The longest frames sent: what a ring frame holds, within the interface's MTU when the
    /// port opened. Longer ones are counted transmit errors.
    limit: FrameLimit,
    frame_size: usize,
    frames: usize,
    cur: usize,
    counters: Option<Arc<PortCounters>>,
    q: u16,
}

impl PacketTx {
    /// A zero-length non-blocking `sendto`: the kernel takes the frames marked
    /// `SEND_REQUEST`, in ring order (marking each `SENDING`, then available once sent),
    /// until its qdisc refuses one or the socket's send buffer is full (frames still in
    /// flight are charged to it); those stay marked, for a later kick.
    fn kick(&self) {
        // SAFETY: a zero-length non-blocking sendto on our own socket; the kernel reads only
        // the mapped ring.
        let _ = unsafe {
            libc::sendto(self.fd.as_raw_fd(), core::ptr::null(), 0, libc::MSG_DONTWAIT, core::ptr::null(), 0)
        };
    }

    /// The status of the frame marked last. The kernel takes marked frames in ring order, so
    /// while any is left marked, this one is too.
    fn last_status(&self) -> u32 {
        let last = (self.cur + self.frames - 1) % self.frames;
        // Acquire: pairs with the kernel's status update.
        self.map.atomic(last * self.frame_size).load(Ordering::Acquire)
    }

    /// Frames the kernel has not taken yet (still `SEND_REQUEST`), and frames it refused as
    /// malformed that no burst has counted yet.
    fn unsent(&self) -> (u64, u64) {
        let (mut marked, mut wrong) = (0, 0);
        for i in 0..self.frames {
            // Acquire: pairs with the kernel's status update.
            match self.map.atomic(i * self.frame_size).load(Ordering::Acquire) {
                TP_STATUS_SEND_REQUEST => marked += 1,
                TP_STATUS_WRONG_FORMAT => wrong += 1,
                _ => {}
            }
        }
        (marked, wrong)
    }
}

impl Drop for PacketTx {
    /// Closing the socket would discard the frames still marked (the kernel left them for a
    /// later kick): kicks until it has taken them all (bounded, [`super::drain_at_close`]),
    /// then counts what it never took, or refused as malformed, as transmit errors.
    fn drop(&mut self) {
        let left = super::drain_at_close(self, |q| q.unsent().0, |q| q.kick());
        let wrong = self.unsent().1;
        if left + wrong > 0 {
            log::warn!(
                "af_packet tx queue {}: {left} frame(s) never taken by the kernel, {wrong} refused as malformed; counted as tx errors",
                self.q
            );
            if let Some(c) = &self.counters {
                c.tx(self.q as usize).errors.add(left + wrong);
            }
        }
    }
}

impl TxQueue for PacketTx {
    type Buf = Mbuf;

    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        let mut n = 0;
        let (mut sent, mut bytes, mut errors) = (0u64, 0usize, 0u64);
        while n < pkts.len() {
            let f = self.cur * self.frame_size;
            let st = self.map.atomic(f);
            // Acquire: the kernel is done with the frame's bytes once it marks it available.
            let s = st.load(Ordering::Acquire);
            if s == TP_STATUS_WRONG_FORMAT {
                errors += 1;
            } else if s != TP_STATUS_AVAILABLE {
                break;
            }
            let m = &pkts[n];
            n += 1;
            let len = m.len();
            if len == 0 || !self.limit.allows(m.data()) {
                errors += 1;
                st.store(TP_STATUS_AVAILABLE, Ordering::Relaxed);
                continue;
            }
            self.map.bytes_mut(f + TX_DATA_OFF, len).copy_from_slice(m.data());
            // tp_len and tp_snaplen.
            self.map.bytes_mut(f + 4, 4).copy_from_slice(&(len as u32).to_ne_bytes());
            self.map.bytes_mut(f + 8, 4).copy_from_slice(&(len as u32).to_ne_bytes());
            // Release: the frame's bytes are visible before the kernel sees SEND_REQUEST.
            self.map.atomic(f).store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.cur = (self.cur + 1) % self.frames;
            sent += 1;
            bytes += len;
        }
        pkts.truncate_front(n);
        if sent > 0 {
            // Frames the kernel leaves marked go out with a later kick (flush, or the next
            // burst's).
            self.kick();
        }
        if let Some(c) = &self.counters {
            let c = c.tx(self.q as usize);
            c.packets.add(sent);
            c.bytes.add(bytes as u64);
            if errors > 0 {
                c.errors.add(errors);
            }
        }
        n
    }

    fn flush(&mut self) {
        // A kick only when a frame is left marked: an idle queue makes no system call.
        if self.last_status() == TP_STATUS_SEND_REQUEST {
            self.kick();
        }
    }
}

trait TruncateFront {
    fn truncate_front(&mut self, n: usize);
}

impl TruncateFront for Burst<Mbuf> {
    /// Drops (frees) the first n packets.
    fn truncate_front(&mut self, n: usize) {
        let mut gone: Burst<Mbuf, { crate::burst::MAX_BURST }> = Burst::new();
        self.drain_front(n, |m| {
            let _ = gone.push(m);
        });
        Mbuf::free_bulk(&mut gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_are_refused() {
        for f in [
            |c: &mut AfPacketConfig| c.queues = 0,
            |c: &mut AfPacketConfig| c.block_size = 3000,
            |c: &mut AfPacketConfig| c.frame_size = 1024,
            |c: &mut AfPacketConfig| c.block_count = 0,
        ] {
            let mut c = AfPacketConfig::new("lo");
            f(&mut c);
            assert!(matches!(c.validate(), Err(PortError::Config { .. })));
        }
        assert!(AfPacketConfig::new("lo").validate().is_ok());
    }
}
