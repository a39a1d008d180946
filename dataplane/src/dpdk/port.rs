//! [`DpdkPort`]: a DPDK ethdev port behind the [`Port`] trait.
#![allow(unsafe_code)]

use super::{ensure_registered, DpdkMempool, Eal, RteMbuf};
use crate::burst::Burst;
use crate::port::{
    BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortError, PortInfo, PortStats, QueueClaims, RxQueue, TxQueue,
};
use dpdk_sys as sys;
use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

/// Which device a [`DpdkPort`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkDevice {
    /// An ethdev port that already exists (probed at EAL init, or by someone else).
    PortId(u16),
    /// A device by its devargs: a vdev (`net_null0`, `net_ring0`, `net_af_xdp0,iface=eth1`)
    /// or a PCI address (`0000:18:02.5`; allow it with `-a` at EAL init). When no ethdev of
    /// that name exists yet it is hot-plugged (`rte_dev_probe`) and removed again when the
    /// port closes.
    Devargs(String),
}

impl DpdkDevice {
    /// The ethdev name the devargs give the port: the part before the first ',', with
    /// `0000:` added to a short PCI address (`18:02.5`).
    pub fn name(devargs: &str) -> String {
        let name = devargs.split(',').next().unwrap_or_default().trim();
        if is_pci_addr(name) && name.matches(':').count() == 1 {
            format!("0000:{name}")
        } else {
            name.to_string()
        }
    }
}

/// `DDDD:BB:DD.F` or `BB:DD.F` in hex.
pub(crate) fn is_pci_addr(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let (bus_dev, func) = match s.rsplit_once('.') {
        Some(x) => x,
        None => return false,
    };
    if func.len() != 1 || !matches!(func.as_bytes()[0], b'0'..=b'7') {
        return false;
    }
    let parts: Vec<&str> = bus_dev.split(':').collect();
    match parts.as_slice() {
        [d, b, dev] => hex(d, 4) && hex(b, 2) && hex(dev, 2),
        [b, dev] => hex(b, 2) && hex(dev, 2),
        _ => false,
    }
}

/// Settings of a [`DpdkPort`].
#[derive(Debug, Clone)]
pub struct DpdkPortConfig {
    /// The port id stamped on received mbufs (`m.port`), i.e. the application's number for
    /// this port (`None`: DPDK's port id).
    pub id: Option<u16>,
    /// Receive queues (1 default). More than one turns on RSS over IP/TCP/UDP when the
    /// device supports it.
    pub rx_queues: u16,
    /// Transmit queues (1 default).
    pub tx_queues: u16,
    /// Receive descriptors per queue (1024 default; adjusted to the device's limits).
    pub rx_desc: u16,
    /// Transmit descriptors per queue (1024 default; adjusted to the device's limits).
    pub tx_desc: u16,
    /// Promiscuous mode (on by default, as l2fwd).
    pub promiscuous: bool,
    /// The pool receive queues allocate from (`None`: [`DpdkMempool::for_socket`] of the
    /// device's NUMA socket).
    pub pool: Option<DpdkMempool>,
    /// Size of the per-socket pool when `pool` is `None` and this port is the first on its
    /// socket (16383 default).
    pub pool_size: u32,
}

impl Default for DpdkPortConfig {
    fn default() -> Self {
        DpdkPortConfig {
            id: None,
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            pool: None,
            pool_size: 16383,
        }
    }
}

/// What rx/tx queues and the port share; stops and closes the device when the last of
/// them goes, so a queue moved to a worker never outlives the device.
#[derive(Debug)]
struct Inner {
    port_id: u16,
    name: String,
    /// The rte_device to remove after close (when we hot-plugged it).
    hotplugged: Option<*mut sys::rte_device>,
    started: bool,
    /// Kept alive while the device may still hand out its mbufs.
    _pool: Option<DpdkMempool>,
}

// SAFETY: the raw device pointer is only used once, in Drop, through DPDK's thread-safe
// hotplug API; everything else is plain data.
unsafe impl Send for Inner {}
// SAFETY: see Send; &Inner gives access to plain data only.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: port_id is a port we configured; every queue handle is gone (this is the
        // last reference), so no burst runs concurrently.
        unsafe {
            if self.started {
                let rc = sys::rte_eth_dev_stop(self.port_id);
                if rc != 0 {
                    log::warn!("DPDK port {}: rte_eth_dev_stop: {}", self.name, sys::strerror(-rc));
                }
            }
            let rc = sys::rte_eth_dev_close(self.port_id);
            if rc != 0 {
                log::warn!("DPDK port {}: rte_eth_dev_close: {}", self.name, sys::strerror(-rc));
            }
            if let Some(dev) = self.hotplugged {
                let rc = sys::rte_dev_remove(dev);
                if rc != 0 {
                    log::warn!("DPDK port {}: rte_dev_remove: {}", self.name, sys::strerror(-rc));
                }
            }
        }
    }
}

/// A DPDK ethdev port, configured and started. Its queues carry [`RteMbuf`]s straight
/// from `rte_eth_rx_burst` to `rte_eth_tx_burst`. The device is stopped and closed (and
/// removed, if this port hot-plugged it) when the port and all its queues are dropped.
#[derive(Debug)]
pub struct DpdkPort {
    inner: Arc<Inner>,
    claims: QueueClaims,
    driver: String,
    rx_queues: u16,
    tx_queues: u16,
    logical_id: u16,
    pool: DpdkMempool,
    socket: u32,
}

fn os_err(port: &str, what: impl Into<String>, rc: i32, hint: &str) -> PortError {
    PortError::Os {
        port: port.to_string(),
        what: what.into(),
        source: std::io::Error::other(sys::strerror(rc.abs())),
        hint: hint.to_string(),
    }
}

fn cfg_err(port: &str, msg: impl Into<String>) -> PortError {
    PortError::Config { port: port.to_string(), msg: msg.into() }
}

fn port_by_name(name: &str) -> Option<u16> {
    let c = CString::new(name).ok()?;
    let mut id = 0u16;
    // SAFETY: EAL is up (callers check); c is a valid C string; id is a valid out pointer.
    (unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) } == 0).then_some(id)
}

fn port_name(port_id: u16) -> String {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
    if unsafe { sys::rte_eth_dev_get_name_by_port(port_id, buf.as_mut_ptr()) } != 0 {
        return format!("port{port_id}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

impl DpdkPort {
    /// Opens, configures and starts a port. See [`DpdkDevice`] and [`DpdkPortConfig`].
    ///
    /// # Errors
    /// EAL not initialised, no such device (a PCI device not allowed at EAL init or not
    /// bound to a DPDK-capable driver), more queues than the device has, or a DPDK call
    /// failing (the message names it and gives DPDK's error text).
    pub fn open(dev: DpdkDevice, cfg: DpdkPortConfig) -> Result<DpdkPort, PortError> {
        let label = match &dev {
            DpdkDevice::PortId(p) => format!("dpdk port {p}"),
            DpdkDevice::Devargs(d) => d.clone(),
        };
        let eal = Eal::require().map_err(|e| cfg_err(&label, e.to_string()))?;
        if cfg.rx_queues == 0 && cfg.tx_queues == 0 {
            return Err(cfg_err(&label, "a port needs at least one queue"));
        }
        let (port_id, probed) = match &dev {
            DpdkDevice::PortId(p) => {
                // SAFETY: EAL is up; a plain query.
                if unsafe { sys::rte_eth_dev_is_valid_port(*p) } == 0 {
                    return Err(cfg_err(&label, format!("no DPDK port {p}")));
                }
                (*p, false)
            }
            DpdkDevice::Devargs(d) => {
                let name = DpdkDevice::name(d);
                match port_by_name(&name) {
                    Some(p) => (p, false),
                    None => {
                        let c = CString::new(d.as_str()).map_err(|_| cfg_err(&label, "devargs contain a NUL byte"))?;
                        // SAFETY: EAL is up; c is a valid C string.
                        let rc = unsafe { sys::rte_dev_probe(c.as_ptr()) };
                        let hint = if is_pci_addr(&name) {
                            "; a PCI device must be bound to vfio-pci (`vnf-l2fwd devbind -b vfio-pci ADDR`) \
                             and allowed at EAL init with `-a ADDR`"
                        } else {
                            "; a vdev name starts with its driver (net_null0, net_ring0, net_af_xdp0,iface=IF) \
                             and the driver must be in the DPDK PMD directory"
                        };
                        if rc != 0 {
                            return Err(os_err(&label, "rte_dev_probe", rc, hint));
                        }
                        match port_by_name(&name) {
                            Some(p) => (p, true),
                            None => {
                                return Err(cfg_err(
                                    &label,
                                    format!("probed, but no ethdev named {name:?} appeared{hint}"),
                                ))
                            }
                        }
                    }
                }
            }
        };
        let name = port_name(port_id);
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port; info is a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) };
        let mut inner = Inner {
            port_id,
            name: name.clone(),
            hotplugged: probed.then_some(info.device),
            started: false,
            _pool: None,
        };
        if rc != 0 {
            return Err(os_err(&name, "rte_eth_dev_info_get", rc, ""));
        }
        let driver = if info.driver_name.is_null() {
            "unknown".to_string()
        } else {
            // SAFETY: driver_name is a NUL-terminated static string of the PMD.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(cfg_err(
                &name,
                format!(
                    "{} rx / {} tx queues asked, the device ({driver}) has at most {} / {}",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        let rss_hf = (sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
        if cfg.rx_queues > 1 {
            if rss_hf != 0 {
                conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            } else {
                log::warn!("DPDK port {name} ({driver}): no RSS support; {} rx queues without RSS", cfg.rx_queues);
            }
        }
        // SAFETY: valid port, not started; conf is a valid configuration.
        let rc = unsafe { sys::rte_eth_dev_configure(port_id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if rc != 0 {
            return Err(os_err(&name, "rte_eth_dev_configure", rc, ""));
        }
        let (mut nrx, mut ntx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid, configured port; valid out pointers.
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut nrx, &mut ntx) };
        if rc != 0 {
            return Err(os_err(&name, "rte_eth_dev_adjust_nb_rx_tx_desc", rc, ""));
        }
        // SAFETY: valid port; a plain query (-1 when unknown).
        let dev_socket = unsafe { sys::rte_eth_dev_socket_id(port_id) };
        let socket = u32::try_from(dev_socket).unwrap_or_else(|_| eal.socket_id());
        let pool = match cfg.pool.clone() {
            Some(p) => p,
            None => DpdkMempool::for_socket(socket, cfg.pool_size).map_err(|e| cfg_err(&name, e.to_string()))?,
        };
        inner._pool = Some(pool.clone());
        for q in 0..cfg.rx_queues {
            // SAFETY: valid configured port and queue index; NULL rxconf = device defaults;
            // the pool outlives the device (held by Inner).
            let rc = unsafe { sys::rte_eth_rx_queue_setup(port_id, q, nrx, socket, std::ptr::null(), pool.as_ptr()) };
            if rc != 0 {
                return Err(os_err(&name, format!("rte_eth_rx_queue_setup(queue {q}, {nrx} descriptors)"), rc, ""));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid configured port and queue index; NULL txconf = device defaults.
            let rc = unsafe { sys::rte_eth_tx_queue_setup(port_id, q, ntx, socket, std::ptr::null()) };
            if rc != 0 {
                return Err(os_err(&name, format!("rte_eth_tx_queue_setup(queue {q}, {ntx} descriptors)"), rc, ""));
            }
        }
        // SAFETY: valid configured port with every queue set up.
        let rc = unsafe { sys::rte_eth_dev_start(port_id) };
        if rc != 0 {
            return Err(os_err(&name, "rte_eth_dev_start", rc, ""));
        }
        inner.started = true;
        let mut port = DpdkPort {
            inner: Arc::new(inner),
            claims: QueueClaims::new(cfg.rx_queues, cfg.tx_queues),
            driver,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            logical_id: cfg.id.unwrap_or(port_id),
            pool,
            socket,
        };
        if cfg.promiscuous {
            if let Err(e) = port.set_promiscuous(true) {
                log::warn!("{e} (continuing without promiscuous mode)");
            }
        }
        log::info!(
            "DPDK port {port_id} {name} ({}): {} rx / {} tx queues, {nrx}/{ntx} descriptors, socket {socket}, MAC {}",
            port.driver,
            cfg.rx_queues,
            cfg.tx_queues,
            port.mac()
        );
        Ok(port)
    }

    /// DPDK's port id.
    pub fn port_id(&self) -> u16 {
        self.inner.port_id
    }

    /// The pool the receive queues allocate from.
    pub fn pool(&self) -> &DpdkMempool {
        &self.pool
    }

    /// The NUMA socket the queues were set up on.
    pub fn socket(&self) -> u32 {
        self.socket
    }

    /// Extended statistics, `(name, value)` pairs as `rte_eth_xstats_get` gives them.
    ///
    /// # Errors
    /// When the device fails the query.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, PortError> {
        let p = self.inner.port_id;
        // SAFETY: valid port; a NULL array with size 0 asks for the count.
        let n = unsafe { sys::rte_eth_xstats_get_names(p, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(os_err(&self.inner.name, "rte_eth_xstats_get_names", n, ""));
        }
        let mut names = vec![sys::rte_eth_xstat_name::default(); n as usize];
        let mut vals = vec![sys::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays have n entries, as passed.
        let (rn, rv) = unsafe {
            (
                sys::rte_eth_xstats_get_names(p, names.as_mut_ptr(), n as u32),
                sys::rte_eth_xstats_get(p, vals.as_mut_ptr(), n as u32),
            )
        };
        if rn < 0 || rv < 0 || rn > n || rv > n {
            return Err(os_err(&self.inner.name, "rte_eth_xstats_get", rn.min(rv).min(-1), ""));
        }
        Ok(vals[..rv as usize]
            .iter()
            .filter_map(|v| {
                let nm = names.get(v.id as usize)?;
                // SAFETY: xstat names are NUL-terminated within their 64 bytes.
                let s = unsafe { CStr::from_ptr(nm.name.as_ptr()) }.to_string_lossy().into_owned();
                Some((s, v.value))
            })
            .collect())
    }
}

impl Port for DpdkPort {
    type Buf = RteMbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.inner.name.clone(),
            driver: format!("dpdk:{}", self.driver),
            rx_queues: self.rx_queues,
            tx_queues: self.tx_queues,
        }
    }

    fn mac(&self) -> MacAddr {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: valid port; a is a valid out pointer.
        if unsafe { sys::rte_eth_macaddr_get(self.inner.port_id, &mut a) } != 0 {
            return MacAddr([0; 6]);
        }
        MacAddr(a.addr_bytes)
    }

    fn link(&self) -> LinkStatus {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid port; l is a valid out pointer; never blocks.
        if unsafe { sys::rte_eth_link_get_nowait(self.inner.port_id, &mut l) } != 0 {
            return LinkStatus::default();
        }
        LinkStatus {
            up: u32::from(l.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: if l.link_speed == sys::RTE_ETH_SPEED_NUM_UNKNOWN { 0 } else { l.link_speed },
            full_duplex: u32::from(l.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
        }
    }

    fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out pointer.
        if unsafe { sys::rte_eth_stats_get(self.inner.port_id, &mut s) } != 0 {
            return PortStats::default();
        }
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        let p = self.inner.port_id;
        // SAFETY: valid port.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(p)
            } else {
                sys::rte_eth_promiscuous_disable(p)
            }
        };
        if rc != 0 {
            return Err(os_err(&self.inner.name, "rte_eth_promiscuous_enable/disable", rc, ""));
        }
        Ok(())
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<RteMbuf>, PortError> {
        self.claims.claim(&self.inner.name, true, q)?;
        // Stamp m.port only where the PMD leaves it wrong for us: a driver that does not set
        // it, or an application id other than DPDK's port id.
        let stamp = (self.logical_id != self.inner.port_id || !sets_mbuf_port(&self.driver)).then_some(self.logical_id);
        Ok(Box::new(DpdkRx { port: self.inner.port_id, q, stamp, _inner: self.inner.clone() }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<RteMbuf>, PortError> {
        self.claims.claim(&self.inner.name, false, q)?;
        Ok(Box::new(DpdkTx { port: self.inner.port_id, q, _inner: self.inner.clone() }))
    }
}

/// A receive queue: `rte_eth_rx_burst` (its Rust twin [`sys::ethdev::rx_burst`]) straight
/// into the burst's spare room.
struct DpdkRx {
    port: u16,
    q: u16,
    /// The port id stamped on each mbuf, when the PMD's own `m.port` is not it (see
    /// [`sets_mbuf_port`]).
    stamp: Option<u16>,
    _inner: Arc<Inner>,
}

/// Whether PMD `driver` writes its ethdev port id into `m.port` of every received mbuf (as
/// their rx paths do: `mb->port = rxq->port_id` and the like). net_ring does not (it passes
/// mbufs through as they were enqueued), nor may drivers not listed here: those get their
/// mbufs stamped. Skipping the stamp matters: it touches every mbuf's header once more
/// (figures: benches/DPDK_RESULTS.md).
pub fn sets_mbuf_port(driver: &str) -> bool {
    matches!(
        driver,
        "net_null"
            | "net_af_packet"
            | "net_af_xdp"
            | "net_tap"
            | "net_pcap"
            | "net_memif"
            | "net_vhost"
            | "net_virtio"
            | "net_virtio_user"
            | "net_ixgbe"
            | "net_ixgbe_vf"
            | "net_i40e"
            | "net_i40e_vf"
            | "net_iavf"
            | "net_ice"
            | "net_ice_dcf"
            | "mlx5_pci"
    )
}

impl RxQueue for DpdkRx {
    type Buf = RteMbuf;

    #[inline]
    fn rx_burst(&mut self, out: &mut Burst<RteMbuf>, max: usize) -> usize {
        let n = max.min(out.spare()).min(u16::MAX as usize) as u16;
        if n == 0 {
            return 0;
        }
        ensure_registered();
        let len = out.len();
        // SAFETY: the device is started and alive (we hold Inner); this queue is owned by
        // one thread (claimed once); the spare room has n slots of a transparent mbuf
        // pointer; DPDK writes `got <= n` owned mbufs there, which the burst then owns.
        let got = unsafe {
            let got = sys::ethdev::rx_burst(self.port, self.q, out.as_mut_ptr().add(len).cast(), n);
            out.set_len(len + got as usize);
            got as usize
        };
        match self.stamp {
            // Read first and store only when it differs: a store per mbuf costs more than
            // the read (benches/DPDK_RESULTS.md).
            Some(id) => {
                for m in out[len..].iter_mut() {
                    if crate::buf::PacketBuf::port(m) != id {
                        crate::buf::PacketBuf::set_port(m, id);
                    }
                }
            }
            // The PMD set it (debug builds check that it did).
            None => debug_assert!(out[len..].iter().all(|m| crate::buf::PacketBuf::port(m) == self.port)),
        }
        got
    }
}

/// A transmit queue: `rte_eth_tx_burst` (its Rust twin [`sys::ethdev::tx_burst`]) from the
/// front of the burst; unsent mbufs stay.
struct DpdkTx {
    port: u16,
    q: u16,
    _inner: Arc<Inner>,
}

impl TxQueue for DpdkTx {
    type Buf = RteMbuf;

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst<RteMbuf>) -> usize {
        let n = pkts.len().min(u16::MAX as usize) as u16;
        if n == 0 {
            return 0;
        }
        ensure_registered();
        // SAFETY: the device is started and alive; this queue is owned by one thread; the
        // burst's first n values are owned mbuf pointers (transparent). DPDK takes the first
        // `sent`, which the burst then forgets; the rest move to the front.
        unsafe {
            let sent = sys::ethdev::tx_burst(self.port, self.q, pkts.as_mut_ptr().cast(), n) as usize;
            pkts.forget_front(sent);
            sent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_and_names() {
        for ok in ["0000:18:02.5", "18:02.5", "abcd:ef:1f.7"] {
            assert!(is_pci_addr(ok), "{ok}");
        }
        for bad in ["net_null0", "0000:18:02", "18:02.8", "0000:18:2.5", "x000:18:02.5", "", "18.02.5"] {
            assert!(!is_pci_addr(bad), "{bad}");
        }
        assert_eq!(DpdkDevice::name("18:02.5"), "0000:18:02.5");
        assert_eq!(DpdkDevice::name("net_null0,size=128"), "net_null0");
        assert_eq!(DpdkDevice::name("0000:18:02.5,foo=1"), "0000:18:02.5");
    }
}
