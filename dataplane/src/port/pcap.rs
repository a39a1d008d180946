//! The pcap port: receive reads a pcap or pcapng file (then yields nothing more); transmit
//! writes a pcap file that tcpdump, tshark and Wireshark read. The output is complete and
//! valid once the transmit queue is dropped (the worker drops its queues at stop), and is
//! flushed by the worker's drain timer while running.
//!
//! File formats come from the `pcap-file` crate. Frames larger than an mbuf's data room are
//! counted as receive errors and skipped; a read error mid-file ends the input and is
//! counted and logged.
//!
//! Before any port opens a file, [`check_files`] refuses configurations that would destroy or
//! lose data: one file as a port's `rx` and any port's `tx` (creating the output truncates the
//! input), or as two ports' `tx` (each overwrites the other's frames while both count them
//! sent). Files are compared by identity, not by name: see [`check_files`].

use super::{
    BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims, RxQueue,
    TxQueue,
};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Pcap port configuration: an input file, an output file, or both.
#[derive(Debug, Clone, Default)]
pub struct PcapConfig {
    /// File to receive from (pcap or pcapng).
    pub rx: Option<PathBuf>,
    /// File to write transmitted packets to (pcap, created or truncated).
    pub tx: Option<PathBuf>,
    /// The port's MAC address.
    pub mac: Option<MacAddr>,
}

/// One file of one pcap port, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUse {
    /// The port id.
    pub port: u16,
    /// True for the port's `tx` file, false for its `rx` file.
    pub tx: bool,
    /// The path as the configuration gives it.
    pub path: PathBuf,
}

impl std::fmt::Display for FileUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port {} {}={}", self.port, if self.tx { "tx" } else { "rx" }, self.path.display())
    }
}

/// Two files of pcap ports that are one file, at least one of them written; see
/// [`check_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileClash {
    /// The use given first.
    pub first: FileUse,
    /// The use given later.
    pub second: FileUse,
}

impl std::fmt::Display for FileClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = (&self.first, &self.second);
        write!(f, "{a} and {b} are the same file: ")?;
        match (a.tx, b.tx) {
            (true, true) => {
                write!(f, "both ports would write it, each overwriting the frames the other counts as sent")?
            }
            _ => {
                let (rx, tx) = if a.tx { (b, a) } else { (a, b) };
                if rx.port == tx.port {
                    write!(f, "creating the output would truncate the input")?
                } else {
                    write!(f, "creating port {}'s output would truncate port {}'s input", tx.port, rx.port)?
                }
            }
        }
        write!(f, "; give each tx its own file")
    }
}

impl std::error::Error for FileClash {}

/// Which file a path names, to compare by identity: the device and inode of an existing
/// regular file (so `a.pcap`, `./a.pcap`, an absolute path, a symlink and a hard link are
/// one file); for a file not created yet, the canonical directory it will be created in and
/// its name (following a dangling symlink, as creating it would). `None` for what is not
/// compared: devices and FIFOs (`/dev/null` twice is fine; creating them truncates nothing),
/// or a path whose directory does not exist (opening it fails anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileId {
    Inode { dev: u64, ino: u64 },
    New(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    if let Ok(m) = std::fs::metadata(path) {
        return m.is_file().then(|| FileId::Inode { dev: m.dev(), ino: m.ino() });
    }
    let mut p = path.to_path_buf();
    // A dangling symlink: creating it creates its target (40 links: the kernel's limit).
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => p = p.parent().map_or(target.clone(), |d| d.join(&target)),
            Err(_) => break,
        }
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(FileId::New(dir.canonicalize().ok()?.join(p.file_name()?)))
}

/// Refuses pcap port files that would destroy or lose data, before any is opened: a file
/// that is one port's `rx` and any port's `tx` (the same port's included), since creating the
/// output truncates the input; or two ports' `tx`, since both would write it, each
/// overwriting the other's frames while counting them sent. Two ports reading one file is
/// fine. Files are compared by identity (see the module docs), so `./a.pcap`, `a.pcap`, a
/// symlink or a hard link to it all collide.
///
/// # Errors
/// The first clash, naming both ports and files.
///
/// # Examples
/// ```
/// use dataplane::port::pcap::{check_files, PcapConfig};
/// let dir = std::env::temp_dir();
/// let rx = PcapConfig { rx: Some(dir.join("in.pcap")), ..Default::default() };
/// let tx = PcapConfig { tx: Some(dir.join(".").join("in.pcap")), ..Default::default() };
/// let e = check_files([(0, &rx), (1, &tx)]).unwrap_err();
/// assert!(e.to_string().contains("would truncate port 0's input"));
/// ```
pub fn check_files<'a>(ports: impl IntoIterator<Item = (u16, &'a PcapConfig)>) -> Result<(), FileClash> {
    let mut seen: Vec<(FileId, FileUse)> = vec![];
    for (port, cfg) in ports {
        for (tx, path) in [(false, &cfg.rx), (true, &cfg.tx)] {
            let Some(path) = path else { continue };
            let Some(id) = file_id(path) else { continue };
            let this = FileUse { port, tx, path: path.clone() };
            if let Some((_, first)) = seen.iter().find(|(i, u)| *i == id && (u.tx || tx)) {
                return Err(FileClash { first: first.clone(), second: this });
            }
            seen.push((id, this));
        }
    }
    Ok(())
}

enum Input {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg(PcapNgReader<BufReader<File>>),
}

/// A pcap port. See the module docs.
pub struct PcapPort {
    name: String,
    id: u16,
    mac: MacAddr,
    pool: Mempool,
    input: Option<Input>,
    output: Option<PcapWriter<Sink>>,
    counters: Arc<PortCounters>,
    claims: QueueClaims,
    queues: (u16, u16),
}

impl std::fmt::Debug for PcapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapPort").field("name", &self.name).finish()
    }
}

fn os_err(port: &str, what: String, e: std::io::Error) -> PortError {
    PortError::Os { port: port.to_string(), what, source: e, hint: String::new() }
}

fn open_input(port: &str, path: &Path) -> Result<Input, PortError> {
    let mut f = File::open(path).map_err(|e| os_err(port, format!("open {}", path.display()), e))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|e| os_err(port, format!("read {}", path.display()), e))?;
    f.rewind().map_err(|e| os_err(port, format!("rewind {}", path.display()), e))?;
    let bad = |e: pcap_file::PcapError| PortError::Config {
        port: port.to_string(),
        msg: format!("{}: not a pcap/pcapng file: {e}", path.display()),
    };
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        Ok(Input::PcapNg(PcapNgReader::new(BufReader::new(f)).map_err(bad)?))
    } else {
        Ok(Input::Pcap(PcapReader::new(BufReader::new(f)).map_err(bad)?))
    }
}

impl PcapPort {
    /// Opens the files. Port id `id`; receive allocates from `pool`.
    ///
    /// # Errors
    /// When neither file is given, `rx` and `tx` are one file (see [`check_files`], which
    /// callers with several ports run first), the input cannot be opened or is not a capture
    /// file, or the output cannot be created.
    pub fn new(id: u16, cfg: PcapConfig, pool: Mempool) -> Result<Self, PortError> {
        let name = format!("pcap{id}");
        if cfg.rx.is_none() && cfg.tx.is_none() {
            return Err(PortError::Config { port: name, msg: "a pcap port needs rx=FILE, tx=FILE or both".into() });
        }
        check_files([(id, &cfg)]).map_err(|e| PortError::Config { port: name.clone(), msg: e.to_string() })?;
        let input = cfg.rx.as_deref().map(|p| open_input(&name, p)).transpose()?;
        let output = match &cfg.tx {
            Some(p) => {
                let f = File::create(p).map_err(|e| os_err(&name, format!("create {}", p.display()), e))?;
                let sink = Sink { w: BufWriter::with_capacity(1 << 16, f) };
                Some(
                    PcapWriter::new(sink)
                        .map_err(|e| PortError::Config { port: name.clone(), msg: format!("{}: {e}", p.display()) })?,
                )
            }
            None => None,
        };
        Ok(PcapPort {
            counters: PortCounters::new(input.is_some() as usize, output.is_some() as usize),
            claims: QueueClaims::new(input.is_some() as u16, output.is_some() as u16),
            queues: (input.is_some() as u16, output.is_some() as u16),
            mac: cfg.mac.unwrap_or(MacAddr::local(id as u8)),
            name,
            id,
            pool,
            input,
            output,
        })
    }
}

impl Port for PcapPort {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo { name: self.name.clone(), driver: "pcap".into(), rx_queues: self.queues.0, tx_queues: self.queues.1 }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkStatus {
        LinkStatus { up: true, speed_mbps: 0, full_duplex: true }
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        self.claims.claim(&self.name, true, q)?;
        let input = self.input.take();
        let src = Source { input, counters: self.counters.clone(), name: self.name.clone() };
        Ok(Box::new(PcapRx {
            src,
            stash: None,
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            port: self.id,
            name: self.name.clone(),
        }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        self.claims.claim(&self.name, false, q)?;
        let writer = self.output.take();
        Ok(Box::new(PcapTx { writer, counters: self.counters.clone(), name: self.name.clone() }))
    }
}

struct PcapRx {
    src: Source,
    /// A frame read while the pool was empty, delivered first on the next call.
    stash: Option<Vec<u8>>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    port: u16,
    name: String,
}

/// The input file, apart from the rest of the queue so frames can be borrowed from it while
/// the queue places them.
struct Source {
    input: Option<Input>,
    counters: Arc<PortCounters>,
    name: String,
}

impl Source {
    /// Reads the next frame and hands it to `f`; `false` at the end of the input (or on a read
    /// error, which ends the input).
    fn next_frame(&mut self, f: &mut dyn FnMut(&[u8])) -> bool {
        let Some(input) = self.input.as_mut() else {
            return false;
        };
        let err = match input {
            Input::Pcap(r) => match r.next_packet() {
                None => None,
                Some(Ok(p)) => {
                    f(&p.data);
                    return true;
                }
                Some(Err(e)) => Some(e),
            },
            Input::PcapNg(r) => loop {
                match r.next_block() {
                    None => break None,
                    Some(Err(e)) => break Some(e),
                    Some(Ok(Block::EnhancedPacket(b))) => {
                        f(&b.data);
                        return true;
                    }
                    Some(Ok(Block::SimplePacket(b))) => {
                        f(&b.data);
                        return true;
                    }
                    Some(Ok(Block::Packet(b))) => {
                        f(&b.data);
                        return true;
                    }
                    Some(Ok(_)) => continue,
                }
            },
        };
        if let Some(e) = err {
            log::error!("{}: input ends on a read error: {e}", self.name);
            self.counters.rx(0).errors.inc();
        }
        self.input = None;
        false
    }
}

impl RxQueue for PcapRx {
    type Buf = Mbuf;

    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        let target = out.len() + max.min(out.spare());
        let start = out.len();
        let mut bytes = 0;
        while out.len() < target {
            let (pool, port, name) = (&self.pool, self.port, &self.name);
            let c = self.counters.rx(0);
            let mut stash = None;
            let mut place = |data: &[u8]| match Mbuf::from_slice(pool, data) {
                Ok(mut m) => {
                    m.set_port(port);
                    bytes += m.len();
                    let _ = out.push(m);
                }
                Err(crate::mbuf::MempoolError::Exhausted) => {
                    c.nombuf.inc();
                    stash = Some(data.to_vec());
                }
                Err(_) => {
                    log::warn!("{name}: {}-byte frame exceeds the mbuf data room; counted as an rx error", data.len());
                    c.errors.inc();
                }
            };
            if let Some(d) = self.stash.take() {
                place(&d);
            } else if !self.src.next_frame(&mut place) {
                break;
            }
            if stash.is_some() {
                self.stash = stash;
                break;
            }
        }
        let n = out.len() - start;
        let c = self.counters.rx(0);
        c.packets.add(n as u64);
        c.bytes.add(bytes as u64);
        n
    }
}

/// The file behind the pcap writer.
struct Sink {
    w: BufWriter<File>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

struct PcapTx {
    writer: Option<PcapWriter<Sink>>,
    counters: Arc<PortCounters>,
    name: String,
}

impl TxQueue for PcapTx {
    type Buf = Mbuf;

    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        let n = pkts.len();
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let c = self.counters.tx(0);
        let mut bytes = 0;
        let mut errors = 0;
        if let Some(w) = self.writer.as_mut() {
            for m in pkts.iter() {
                match w.write_packet(&PcapPacket::new(ts, m.len() as u32, m.data())) {
                    Ok(_) => bytes += m.len(),
                    Err(e) => {
                        if errors == 0 {
                            log::error!("{}: write failed: {e}", self.name);
                        }
                        errors += 1;
                    }
                }
            }
        } else {
            errors = n;
        }
        Mbuf::free_bulk(pkts);
        c.packets.add((n - errors) as u64);
        c.bytes.add(bytes as u64);
        c.errors.add(errors as u64);
        n
    }

    fn flush(&mut self) {
        // PcapWriter gives no access to its writer; flushing happens as the 64 KiB buffer
        // fills and when the queue is dropped (see Drop).
    }
}

impl Drop for PcapTx {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            let mut sink = w.into_writer();
            if let Err(e) = sink.flush() {
                log::error!("{}: final flush of the pcap output failed: {e}", self.name);
                self.counters.tx(0).errors.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MemBacking, MempoolConfig};

    fn pool(n: u32) -> Mempool {
        let mut c = MempoolConfig::new("pcap-test", n);
        c.backing = MemBacking::Normal;
        c.cache_size = 4;
        Mempool::new(c).unwrap()
    }

    /// A fresh directory for one test.
    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dp-pcap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// LINKTYPE_ETHERNET.
    const ETHERNET: u32 = 1;

    /// A pcap file header, little-endian, microsecond timestamps.
    fn header(snaplen: u32, linktype: u32) -> Vec<u8> {
        let mut h = vec![];
        h.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic: microseconds
        h.extend(2u16.to_le_bytes()); // version 2.4
        h.extend(4u16.to_le_bytes());
        h.extend(0i32.to_le_bytes()); // thiszone
        h.extend(0u32.to_le_bytes()); // sigfigs
        h.extend(snaplen.to_le_bytes());
        h.extend(linktype.to_le_bytes());
        h
    }

    /// A record: ts_sec, ts_usec, incl_len, orig_len, then `data` (its length may disagree).
    fn record(incl_len: u32, orig_len: u32, data: &[u8]) -> Vec<u8> {
        let mut r = vec![];
        r.extend(1u32.to_le_bytes()); // ts_sec
        r.extend(0u32.to_le_bytes()); // ts_usec
        r.extend(incl_len.to_le_bytes());
        r.extend(orig_len.to_le_bytes());
        r.extend(data);
        r
    }

    /// Ethernet frame `n` of `len` bytes: 02::aa <- 02::bb, EtherType 0x88b5, `n` at 14..18.
    fn frame(n: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xbb]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[14..18].copy_from_slice(&n.to_be_bytes());
        f
    }

    #[test]
    fn write_then_read_back() {
        let dir = std::env::temp_dir().join(format!("dp-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("a.pcap");
        let pool64 = pool(64);
        {
            let mut p =
                PcapPort::new(0, PcapConfig { rx: None, tx: Some(out.clone()), mac: None }, pool64.clone()).unwrap();
            let mut tx = p.tx_queue(0).unwrap();
            let mut b = Burst::new();
            for i in 0..20u8 {
                b.push(Mbuf::from_slice(&pool64, &[i; 60]).unwrap()).unwrap();
            }
            assert_eq!(tx.tx_burst(&mut b), 20);
            assert_eq!(p.stats().opackets, 20);
        }
        let mut p = PcapPort::new(1, PcapConfig { rx: Some(out.clone()), tx: None, mac: None }, pool(8)).unwrap();
        let mut rx = p.rx_queue(0).unwrap();
        let mut got: Vec<u8> = vec![];
        let mut held = Burst::new();
        // The pool holds 8 mbufs: the port must stash, not lose, what does not fit.
        loop {
            let n = rx.rx_burst(&mut held, 32);
            if n == 0 && held.is_empty() {
                break;
            }
            got.extend(held.iter().map(|m| m.data()[0]));
            assert!(held.iter().all(|m| m.len() == 60 && m.port() == 1));
            held.clear();
        }
        assert_eq!(got, (0..20).collect::<Vec<u8>>());
        assert_eq!(p.stats().ipackets, 20);
        assert!(p.stats().rx_nombuf >= 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("dp-pcap-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pcap");
        std::fs::write(&junk, b"this is not a capture file").unwrap();
        let cfg = |rx: PathBuf| PcapConfig { rx: Some(rx), tx: None, mac: None };
        assert!(matches!(PcapPort::new(0, cfg(junk), pool(4)), Err(PortError::Config { .. })));
        assert!(matches!(PcapPort::new(0, cfg(dir.join("missing.pcap")), pool(4)), Err(PortError::Os { .. })));
        assert!(matches!(PcapPort::new(0, PcapConfig::default(), pool(4)), Err(PortError::Config { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One file as an rx and a tx, or as two tx, is refused however it is named; the input is
    /// not touched. Two ports reading one file, devices, and distinct files are fine.
    #[test]
    fn one_file_for_rx_and_tx_or_two_tx_is_refused() {
        let dir = tmp("same");
        let input = {
            let mut c = header(65535, ETHERNET);
            c.extend(record(60, 60, &frame(0, 60)));
            c
        };
        let a = dir.join("a.pcap");
        std::fs::write(&a, &input).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("a.pcap", dir.join("link.pcap")).unwrap();
        std::os::unix::fs::symlink("new.pcap", dir.join("dangling.pcap")).unwrap();
        std::fs::hard_link(&a, dir.join("hard.pcap")).unwrap();
        let cfg = |rx: Option<&str>, tx: Option<&str>| PcapConfig {
            rx: rx.map(|p| dir.join(p)),
            tx: tx.map(|p| dir.join(p)),
            mac: None,
        };
        let clash = |ports: &[PcapConfig]| check_files(ports.iter().enumerate().map(|(i, c)| (i as u16, c)));
        for ports in [
            vec![cfg(Some("a.pcap"), None), cfg(None, Some("./a.pcap"))],
            vec![cfg(Some("a.pcap"), None), cfg(None, Some("sub/../a.pcap"))],
            vec![cfg(Some("link.pcap"), None), cfg(None, Some("a.pcap"))],
            vec![cfg(None, Some("hard.pcap")), cfg(Some("a.pcap"), None)],
            vec![cfg(Some("a.pcap"), Some("link.pcap"))],
            vec![cfg(None, Some("out.pcap")), cfg(None, Some("./out.pcap"))],
            vec![cfg(None, Some("new.pcap")), cfg(None, Some("dangling.pcap"))],
        ] {
            assert!(clash(&ports).is_err(), "{ports:?}");
        }
        for ports in [
            vec![cfg(Some("a.pcap"), Some("o0.pcap")), cfg(Some("./a.pcap"), Some("o1.pcap"))],
            vec![cfg(Some("a.pcap"), Some("sub/a.pcap"))],
            vec![PcapConfig { tx: Some("/dev/null".into()), ..Default::default() }; 2],
        ] {
            assert_eq!(clash(&ports), Ok(()), "{ports:?}");
        }
        let e = clash(&[cfg(Some("a.pcap"), None), cfg(None, Some("./a.pcap"))]).unwrap_err();
        assert_eq!(e.first, FileUse { port: 0, tx: false, path: dir.join("a.pcap") });
        let d = dir.display();
        assert_eq!(
            e.to_string(),
            format!(
                "port 0 rx={d}/a.pcap and port 1 tx={d}/./a.pcap are the same file: creating port 1's output would \
                 truncate port 0's input; give each tx its own file"
            )
        );
        let e = clash(&[cfg(None, Some("o.pcap")), cfg(None, Some("o.pcap"))]).unwrap_err().to_string();
        assert!(e.ends_with("both ports would write it, each overwriting the frames the other counts as sent; give each tx its own file"), "{e}");
        // One port: refused by the port itself, before the output is created.
        let e = PcapPort::new(0, cfg(Some("a.pcap"), Some("./a.pcap")), pool(4)).unwrap_err().to_string();
        assert!(e.contains("creating the output would truncate the input"), "{e}");
        assert_eq!(std::fs::read(&a).unwrap(), input);
        assert!(!dir.join("new.pcap").exists() && !dir.join("out.pcap").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
