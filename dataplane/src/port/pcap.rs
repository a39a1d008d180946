//! The pcap port: receive replays a pcap or pcapng file once (then yields nothing more);
//! transmit writes a pcap file that tcpdump, tshark and Wireshark read. The output is complete
//! and valid once the transmit queue is dropped (the worker drops its queues at stop), and is
//! flushed by the worker's drain timer while running.
//!
//! # Files
//! The formats come from the `pcap-file` crate: its parsers read the pcap file header
//! (microsecond or nanosecond magic, either byte order), pcap records and pcapng blocks. This
//! module feeds them from its own read buffer rather than through the crate's readers, which
//! cannot step past a record they refuse, hide the byte offset, and refuse every record of a
//! capture taken with a short snap length (`orig_len` > snap length is normal there).
//!
//! Before any port opens a file, [`check_files`] refuses configurations that would destroy or
//! lose data: one file as a port's `rx` and any port's `tx` (creating the output truncates the
//! input), or as two ports' `tx` (each overwrites the other's frames while both count them
//! sent). Files are compared by identity, not by name: see [`check_files`].
//!
//! # What is replayed
//! Ethernet captures only (LINKTYPE_ETHERNET). Any other link type (LINKTYPE_RAW IP packets,
//! Linux cooked captures, 802.11) is refused when the port opens: its packets would be read as
//! Ethernet frames and a MAC rewrite would overwrite their network headers. Convert such a
//! capture first, e.g. `tcprewrite --dlt=enet --enet-smac=MAC --enet-dmac=MAC`. A frame cut to
//! the snap length (`incl_len` < `orig_len`) is replayed as captured, as tcpreplay and DPDK's
//! net_pcap do.
//!
//! # Bad records: the replay stops, with an error
//! The policy is tcpreplay's (and tcpdump's, whose `-r` exits 1 on a truncated file): a record
//! the reader cannot trust ends the replay, never silently. A pcap record's length is the only
//! framing the file has, so after a corrupt record (`incl_len` over the snap length or over
//! `orig_len`, a pcapng block the parser refuses) nothing can be trusted to start where the
//! header says, and skipping on would send whatever bytes follow as frames. The frames before
//! the bad record are replayed; the record is counted in `ierrors`, logged, and reported by
//! [`Port::notes`] as fatal, so the run can fail (the VNF exits 1). A capture that ends inside
//! its last record (cut off mid-write) is handled the same way and told apart in the message
//! ("truncated … cut off mid-write?" against "corrupt"). See [`InputFault`].
//!
//! Frames larger than an mbuf's data room are valid records the port cannot hold: they are
//! skipped and counted (`ierrors`, and a note for the final summary), and the replay goes on,
//! as a NIC drops a frame over its receive buffer size.

use super::{
    BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortNote, PortStats, QueueClaims,
    RxQueue, TxQueue,
};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool, MempoolError};
use crate::stats::Counter;
use pcap_file::pcap::{PcapPacket, PcapParser, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness, PcapError};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes read from the input at a time.
const CHUNK: usize = 256 << 10;
/// The longest record or block the reader takes (Wireshark's limit for a pcapng block); a
/// length field claiming more is corrupt, and is not read into memory.
const MAX_RECORD: usize = 16 << 20;
/// The snap length assumed when a pcap header gives 0 (libpcap's maximum).
const DEFAULT_SNAPLEN: u32 = 262_144;
/// A pcap record header: ts_sec, ts_frac, incl_len, orig_len.
const PCAP_RECORD_HEADER: usize = 16;

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

/// Why a replay ended before the end of its file: the record the reader could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFault {
    /// "record" (pcap) or "block" (pcapng).
    pub unit: &'static str,
    /// Its number in the file, from 1 (a pcap record's is its frame number in Wireshark; a
    /// pcapng file's section header is block 1).
    pub number: u64,
    /// Its byte offset in the file.
    pub offset: u64,
    /// What is wrong with it.
    pub kind: FaultKind,
}

/// What is wrong with a record; see [`InputFault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The file ends inside the record, its header in place and consistent: a capture cut off
    /// mid-write. `have` bytes of it are there, of `need` (`None` when the file ends inside
    /// the record's header).
    CutOff {
        /// Bytes of the record in the file.
        have: u64,
        /// Bytes its header claims, header included.
        need: Option<u64>,
    },
    /// The record's fields contradict each other or the file header, or the parser refuses
    /// it: the framing of the rest of the file cannot be trusted.
    Corrupt(String),
    /// A pcapng packet from an interface whose link type is not Ethernet.
    NotEthernet(String),
    /// Reading the file failed.
    Io(String),
}

impl std::fmt::Display for InputFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (byte {}) ", self.unit, self.number, self.offset)?;
        match &self.kind {
            FaultKind::CutOff { have, need: Some(need) } => {
                write!(f, "is truncated: the file ends {have} bytes into its {need} (a capture cut off mid-write?)")
            }
            FaultKind::CutOff { have, need: None } => {
                write!(f, "is truncated: the file ends {have} bytes into its header (a capture cut off mid-write?)")
            }
            FaultKind::Corrupt(why) => write!(f, "is corrupt: {why}"),
            FaultKind::NotEthernet(why) => write!(f, "is not Ethernet: {why}"),
            FaultKind::Io(e) => write!(f, "could not be read: {e}"),
        }
    }
}

/// The link type for messages: `RAW (101)`, `link type 12`.
fn link_name(l: DataLink) -> String {
    match l {
        DataLink::Unknown(n) => format!("{n}"),
        _ => format!("{l:?} ({})", u32::from(l)),
    }
}

fn not_ethernet(path: &Path, l: DataLink, interface: Option<usize>) -> String {
    format!(
        "{}: {}link type {}, not Ethernet: its packets would be read as Ethernet frames and a MAC rewrite \
         would overwrite their network headers; convert the capture first, e.g. `tcprewrite --dlt=enet \
         --enet-smac=02:00:00:00:00:01 --enet-dmac=02:00:00:00:00:02 -i IN -o OUT`",
        path.display(),
        interface.map_or(String::new(), |i| format!("interface {i}: ")),
        link_name(l)
    )
}

/// A u32 field at `at` of `b`, in the file's byte order.
fn u32_at(b: &[u8], at: usize, e: Endianness) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(match e {
        Endianness::Big => u32::from_be_bytes(v),
        Endianness::Little => u32::from_le_bytes(v),
    })
}

/// The pcap checks of a record header: what makes it corrupt, if anything. The crate's own
/// check also refuses `orig_len` > snap length, which every capture taken with a short snap
/// length has; that one is fine.
fn pcap_record_fault(incl_len: u32, orig_len: u32, snaplen: u32) -> Option<String> {
    if incl_len > snaplen {
        Some(format!("its incl_len is over the snap length ({incl_len} > {snaplen}), or the header is garbage"))
    } else if incl_len as usize > MAX_RECORD {
        Some(format!("its incl_len {incl_len} is over {MAX_RECORD} bytes"))
    } else if incl_len > orig_len {
        Some(format!("incl_len > orig_len ({incl_len} > {orig_len}): more bytes captured than were on the wire"))
    } else {
        None
    }
}

enum Format {
    Pcap { parser: PcapParser, snaplen: u32, endianness: Endianness },
    PcapNg(PcapNgParser),
}

/// The bytes of a capture file: a window on it that the parsers read from.
struct Reader {
    file: File,
    buf: Vec<u8>,
    /// The first byte of `buf` not parsed yet.
    start: usize,
    /// The file offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl Reader {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads up to [`CHUNK`] more bytes after what is pending; sets `eof` when none came.
    fn fill(&mut self) -> std::io::Result<()> {
        self.buf.drain(..self.start);
        self.start = 0;
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
                Ok(n) => break n,
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(())
    }
}

/// An open capture: the crate's parser over a [`Reader`].
struct Capture {
    path: PathBuf,
    rd: Reader,
    format: Format,
    /// Records (pcap) or blocks (pcapng) taken so far.
    taken: u64,
}

impl Capture {
    /// Opens `path`, reads its file header and, for pcapng, the blocks before its first packet
    /// (so the interfaces' link types are known).
    ///
    /// # Errors
    /// The file cannot be read, is not a pcap or pcapng file, or is not an Ethernet capture.
    fn open(port: &str, path: &Path) -> Result<Capture, PortError> {
        let os = |what: &str, e| PortError::Os {
            port: port.to_string(),
            what: format!("{what} {}", path.display()),
            source: e,
            hint: String::new(),
        };
        let bad = |msg: String| PortError::Config { port: port.to_string(), msg };
        let file = File::open(path).map_err(|e| os("open", e))?;
        let mut rd = Reader { file, buf: Vec::new(), start: 0, offset: 0, eof: false };
        let format = loop {
            let src = rd.pending();
            let parsed = if src.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
                PcapNgParser::new(src).map(|(rem, p)| (src.len() - rem.len(), Format::PcapNg(p)))
            } else {
                PcapParser::new(src).map(|(rem, p)| {
                    let h = p.header();
                    let snaplen = if h.snaplen == 0 { DEFAULT_SNAPLEN } else { h.snaplen };
                    (src.len() - rem.len(), Format::Pcap { parser: p, snaplen, endianness: h.endianness })
                })
            };
            match parsed {
                Ok((used, f)) => {
                    rd.advance(used);
                    break f;
                }
                Err(PcapError::IncompleteBuffer) if !rd.eof && src.len() <= MAX_RECORD => {
                    rd.fill().map_err(|e| os("read", e))?
                }
                Err(PcapError::IncompleteBuffer) => {
                    return Err(bad(format!("{}: not a pcap/pcapng file: it ends inside its header", path.display())))
                }
                Err(e) => return Err(bad(format!("{}: not a pcap/pcapng file: {e}", path.display()))),
            }
        };
        // A pcapng file's section header is its block 1; a pcap file header is no record.
        let taken = matches!(format, Format::PcapNg(_)) as u64;
        let mut c = Capture { path: path.to_path_buf(), rd, format, taken };
        if let Format::Pcap { parser, .. } = &c.format {
            let l = parser.header().datalink;
            return if l == DataLink::ETHERNET { Ok(c) } else { Err(bad(not_ethernet(path, l, None))) };
        }
        c.skip_to_first_packet();
        if let Format::PcapNg(p) = &c.format {
            if let Some((k, i)) = p.interfaces().iter().enumerate().find(|(_, i)| i.linktype != DataLink::ETHERNET) {
                return Err(bad(not_ethernet(path, i.linktype, Some(k))));
            }
        }
        Ok(c)
    }

    /// pcapng: takes the blocks before the first packet (section, interfaces, name
    /// resolution), leaving the first packet block next. A problem (a bad block, the end of
    /// the file) stops it there, for [`Capture::next_frame`] to report.
    fn skip_to_first_packet(&mut self) {
        let Format::PcapNg(p) = &mut self.format else { return };
        loop {
            let src = self.rd.pending();
            match p.next_block(src) {
                Ok((_, Block::EnhancedPacket(_) | Block::SimplePacket(_) | Block::Packet(_))) => return,
                Ok((rem, _)) => {
                    let used = src.len() - rem.len();
                    self.rd.advance(used);
                    self.taken += 1;
                }
                Err(PcapError::IncompleteBuffer) if !self.rd.eof && src.len() <= MAX_RECORD => {
                    if self.rd.fill().is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    fn fault(&self, kind: FaultKind) -> InputFault {
        let unit = if matches!(self.format, Format::Pcap { .. }) { "record" } else { "block" };
        InputFault { unit, number: self.taken + 1, offset: self.rd.offset, kind }
    }

    /// The fault of a record that is not all in the buffer, from its header (when the header
    /// is): corrupt when the header cannot be right, else cut off if the file has ended
    /// (`None` while more may come).
    fn incomplete(&self) -> Option<FaultKind> {
        let src = self.rd.pending();
        let claimed = match &self.format {
            Format::Pcap { snaplen, endianness, .. } => {
                match (u32_at(src, 8, *endianness), u32_at(src, 12, *endianness)) {
                    (Some(incl), Some(orig)) => {
                        if let Some(why) = pcap_record_fault(incl, orig, *snaplen) {
                            return Some(FaultKind::Corrupt(why));
                        }
                        Some(PCAP_RECORD_HEADER as u64 + incl as u64)
                    }
                    _ => None,
                }
            }
            Format::PcapNg(p) => match u32_at(src, 4, p.section().endianness) {
                Some(len) if len as usize > MAX_RECORD => {
                    return Some(FaultKind::Corrupt(format!("its block length {len} is over {MAX_RECORD} bytes")))
                }
                len => len.map(u64::from),
            },
        };
        if src.len() > MAX_RECORD + PCAP_RECORD_HEADER {
            return Some(FaultKind::Corrupt(format!("it is longer than {MAX_RECORD} bytes")));
        }
        self.rd.eof.then_some(FaultKind::CutOff { have: src.len() as u64, need: claimed })
    }

    /// Reads the next frame and hands it to `f`: `Ok(true)` for a frame, `Ok(false)` at the
    /// end of the file.
    ///
    /// # Errors
    /// The record the replay cannot go past (see the module docs); the capture must not be
    /// read further.
    fn next_frame(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<bool, InputFault> {
        loop {
            let src = self.rd.pending();
            if src.is_empty() && self.rd.eof {
                return Ok(false);
            }
            let parsed = match &mut self.format {
                Format::Pcap { parser, snaplen, .. } => match parser.next_raw_packet(src) {
                    Ok((rem, r)) => {
                        let RawPcapPacket { incl_len, orig_len, .. } = r;
                        if let Some(why) = pcap_record_fault(incl_len, orig_len, *snaplen) {
                            return Err(self.fault(FaultKind::Corrupt(why)));
                        }
                        f(&r.data);
                        Ok(src.len() - rem.len())
                    }
                    Err(e) => Err(e),
                },
                Format::PcapNg(p) => match p.next_block(src) {
                    Ok((rem, b)) => {
                        let used = src.len() - rem.len();
                        let (k, orig, mut data) = match &b {
                            Block::EnhancedPacket(b) => (b.interface_id as usize, b.original_len, &b.data[..]),
                            Block::Packet(b) => (b.interface_id as usize, b.original_len, &b.data[..]),
                            Block::SimplePacket(b) => (0, b.original_len, &b.data[..]),
                            _ => {
                                self.rd.advance(used);
                                self.taken += 1;
                                continue;
                            }
                        };
                        let Some(i) = p.interfaces().get(k) else {
                            let n = p.interfaces().len();
                            let why = format!("its interface id {k} is not one of the section's {n} interfaces");
                            return Err(self.fault(FaultKind::Corrupt(why)));
                        };
                        if i.linktype != DataLink::ETHERNET {
                            let why = not_ethernet(&self.path, i.linktype, Some(k));
                            return Err(self.fault(FaultKind::NotEthernet(why)));
                        }
                        let snap = if i.snaplen == 0 { u32::MAX } else { i.snaplen } as usize;
                        if matches!(b, Block::SimplePacket(_)) {
                            // Its data runs to the end of the block, padding included: the frame
                            // is the first original_len bytes, at most the snap length.
                            data = &data[..data.len().min(orig as usize).min(snap)];
                        }
                        if data.len() > snap {
                            let why = format!("its captured length is over the snap length ({} > {snap})", data.len());
                            return Err(self.fault(FaultKind::Corrupt(why)));
                        }
                        if data.len() > orig as usize {
                            let why = format!("captured length > original length ({} > {orig})", data.len());
                            return Err(self.fault(FaultKind::Corrupt(why)));
                        }
                        f(data);
                        Ok(used)
                    }
                    Err(e) => Err(e),
                },
            };
            match parsed {
                Ok(used) => {
                    self.rd.advance(used);
                    self.taken += 1;
                    return Ok(true);
                }
                Err(PcapError::IncompleteBuffer) => {
                    if let Some(kind) = self.incomplete() {
                        return Err(self.fault(kind));
                    }
                    if let Err(e) = self.rd.fill() {
                        return Err(self.fault(FaultKind::Io(e.to_string())));
                    }
                }
                Err(PcapError::IoError(e)) => return Err(self.fault(FaultKind::Io(e.to_string()))),
                Err(e) => return Err(self.fault(FaultKind::Corrupt(e.to_string()))),
            }
        }
    }

    /// The file's length, for messages (`None` for a FIFO or a device).
    fn file_len(&self) -> Option<u64> {
        self.rd.file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len())
    }
}

/// What the receive side met that the counters alone do not explain, written by the queue
/// and read by the port for [`Port::notes`].
#[derive(Debug, Default)]
struct InputReport {
    /// Frames over the mbuf data room, skipped (also in `ierrors`).
    oversize: Counter,
    /// The largest of them.
    oversize_max: Counter,
    /// What ended the replay early, as the note says it.
    fault: OnceLock<String>,
}

/// A pcap port. See the module docs.
pub struct PcapPort {
    name: String,
    id: u16,
    mac: MacAddr,
    pool: Mempool,
    input: Option<Capture>,
    output: Option<PcapWriter<Sink>>,
    counters: Arc<PortCounters>,
    report: Arc<InputReport>,
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

impl PcapPort {
    /// Opens the files: the input first, then the output. Port id `id`; receive allocates from
    /// `pool`.
    ///
    /// # Errors
    /// When neither file is given, `rx` and `tx` are one file (see [`check_files`], which
    /// callers with several ports run first), the input cannot be opened, is not a capture
    /// file or not an Ethernet capture, or the output cannot be created.
    pub fn new(id: u16, cfg: PcapConfig, pool: Mempool) -> Result<Self, PortError> {
        let name = format!("pcap{id}");
        if cfg.rx.is_none() && cfg.tx.is_none() {
            return Err(PortError::Config { port: name, msg: "a pcap port needs rx=FILE, tx=FILE or both".into() });
        }
        check_files([(id, &cfg)]).map_err(|e| PortError::Config { port: name.clone(), msg: e.to_string() })?;
        let input = cfg.rx.as_deref().map(|p| Capture::open(&name, p)).transpose()?;
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
            report: Arc::default(),
            name,
            id,
            pool,
            input,
            output,
        })
    }

    /// Checks that `path` is a capture [`PcapPort::new`] would replay (it exists and is a pcap
    /// or pcapng file of Ethernet frames), without opening anything for writing: for a caller
    /// that checks every port before opening any. Reads only the file's header (and, for
    /// pcapng, the blocks before the first packet). Port id `id` names the port in errors.
    ///
    /// # Errors
    /// As [`PcapPort::new`] for its input.
    pub fn check_input(id: u16, path: &Path) -> Result<(), PortError> {
        Capture::open(&format!("pcap{id}"), path).map(drop)
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
        let src = Source {
            input: self.input.take(),
            counters: self.counters.clone(),
            report: self.report.clone(),
            who: format!("port {} ({})", self.id, self.name),
        };
        Ok(Box::new(PcapRx {
            src,
            stash: None,
            pool: self.pool.clone(),
            counters: self.counters.clone(),
            report: self.report.clone(),
            port: self.id,
            who: format!("port {} ({})", self.id, self.name),
        }))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        self.claims.claim(&self.name, false, q)?;
        let writer = self.output.take();
        Ok(Box::new(PcapTx { writer, counters: self.counters.clone(), name: self.name.clone() }))
    }

    /// Frames skipped as larger than an mbuf's data room; a replay that ended at a bad record
    /// (fatal: the rest of the capture was not replayed).
    fn notes(&self) -> Vec<PortNote> {
        let mut v = vec![];
        let n = self.report.oversize.get();
        if n > 0 {
            v.push(PortNote {
                text: format!(
                    "port {} ({}): {n} frame{} larger than the mbuf data room ({} bytes) skipped, the largest {} \
                     bytes (counted in ierrors)",
                    self.id,
                    self.name,
                    if n == 1 { "" } else { "s" },
                    self.pool.data_room(),
                    self.report.oversize_max.get()
                ),
                fatal: false,
            });
        }
        if let Some(f) = self.report.fault.get() {
            v.push(PortNote { text: f.clone(), fatal: true });
        }
        v
    }
}

struct PcapRx {
    src: Source,
    /// A frame read while the pool was empty, delivered first on the next call.
    stash: Option<Vec<u8>>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    report: Arc<InputReport>,
    port: u16,
    /// "port 0 (pcap0)", for messages.
    who: String,
}

/// The input file, apart from the rest of the queue so frames can be borrowed from it while
/// the queue places them.
struct Source {
    input: Option<Capture>,
    counters: Arc<PortCounters>,
    report: Arc<InputReport>,
    /// "port 0 (pcap0)", for messages.
    who: String,
}

impl Source {
    /// Reads the next frame and hands it to `f`; `false` at the end of the input, or at a
    /// record the replay cannot go past, which is counted, logged and kept for the port's
    /// notes, and ends the input.
    fn next_frame(&mut self, f: &mut dyn FnMut(&[u8])) -> bool {
        let Some(input) = self.input.as_mut() else {
            return false;
        };
        match input.next_frame(f) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(fault) => {
                let unread = input.file_len().map_or(String::new(), |n| {
                    format!(", leaving {} of its {n} bytes unread", n.saturating_sub(fault.offset))
                });
                let msg = format!("{}: {}: {fault}; the replay stopped there{unread}", self.who, input.path.display());
                log::error!("{msg}");
                self.counters.rx(0).errors.inc();
                let _ = self.report.fault.set(msg);
            }
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
            let (pool, port, who, report) = (&self.pool, self.port, &self.who, &self.report);
            let c = self.counters.rx(0);
            let mut stash = None;
            let mut place = |data: &[u8]| match Mbuf::from_slice(pool, data) {
                Ok(mut m) => {
                    m.set_port(port);
                    bytes += m.len();
                    let _ = out.push(m);
                }
                Err(MempoolError::Exhausted) => {
                    c.nombuf.inc();
                    stash = Some(data.to_vec());
                }
                Err(_) => {
                    if report.oversize.get() == 0 {
                        log::warn!(
                            "{who}: a {}-byte frame exceeds the mbuf data room ({} bytes): skipped and counted \
                             (ierrors); the final summary gives the total",
                            data.len(),
                            pool.data_room()
                        );
                    }
                    report.oversize.inc();
                    report.oversize_max.set(report.oversize_max.get().max(data.len() as u64));
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
    use pcap_file::pcap::PcapHeader;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::TsResolution;
    use std::borrow::Cow;
    use std::time::Duration;

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

    fn rx_only(p: &Path) -> PcapConfig {
        PcapConfig { rx: Some(p.to_path_buf()), ..Default::default() }
    }

    /// LINKTYPE_ETHERNET and LINKTYPE_RAW.
    const ETHERNET: u32 = 1;
    const RAW: u32 = 101;

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

    /// Every frame the port's rx queue yields: (sequence number, length).
    fn drain(p: &mut PcapPort) -> Vec<(u32, usize)> {
        let mut rx = p.rx_queue(0).unwrap();
        let mut got = vec![];
        let mut held = Burst::new();
        loop {
            let n = rx.rx_burst(&mut held, 32);
            if n == 0 && held.is_empty() {
                break;
            }
            got.extend(held.iter().map(|m| (u32::from_be_bytes(m.data()[14..18].try_into().unwrap()), m.len())));
            held.clear();
        }
        got
    }

    /// The frames of a capture file, through a port.
    fn replay(path: &Path) -> Vec<(u32, usize)> {
        drain(&mut PcapPort::new(0, rx_only(path), pool(64)).unwrap())
    }

    #[test]
    fn write_then_read_back() {
        let dir = tmp("rw");
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
        assert!(p.notes().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tmp("bad");
        let junk = dir.join("junk.pcap");
        std::fs::write(&junk, b"this is not a capture file").unwrap();
        assert!(matches!(PcapPort::new(0, rx_only(&junk), pool(4)), Err(PortError::Config { .. })));
        std::fs::write(&junk, &header(65535, ETHERNET)[..20]).unwrap();
        assert!(matches!(PcapPort::new(0, rx_only(&junk), pool(4)), Err(PortError::Config { .. })));
        assert!(matches!(PcapPort::new(0, rx_only(&dir.join("missing.pcap")), pool(4)), Err(PortError::Os { .. })));
        assert!(matches!(PcapPort::new(0, PcapConfig::default(), pool(4)), Err(PortError::Config { .. })));
        // A capture of no packets is fine: it replays nothing.
        std::fs::write(&junk, header(65535, ETHERNET)).unwrap();
        assert_eq!(replay(&junk), []);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Nanosecond magic and big-endian files read as the usual microsecond little-endian ones.
    #[test]
    fn nanosecond_and_big_endian_captures_read() {
        let dir = tmp("ns");
        for (k, (ts_resolution, endianness)) in [
            (TsResolution::NanoSecond, Endianness::Little),
            (TsResolution::NanoSecond, Endianness::Big),
            (TsResolution::MicroSecond, Endianness::Big),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.join(format!("{k}.pcap"));
            let h = PcapHeader { ts_resolution, endianness, ..Default::default() };
            let mut w = PcapWriter::with_header(File::create(&path).unwrap(), h).unwrap();
            for i in 0..3 {
                w.write_packet(&PcapPacket::new(Duration::new(1, 999_999_999), 60, &frame(i, 60))).unwrap();
            }
            drop(w);
            assert_eq!(replay(&path), [(0, 60), (1, 60), (2, 60)], "{ts_resolution:?} {endianness:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A capture taken with a short snap length (`tcpdump -s 96`): every record has
    /// orig_len > snaplen, which is fine; each frame replays as captured.
    #[test]
    fn snapped_capture_replays_as_captured() {
        let dir = tmp("snap");
        let path = dir.join("snap.pcap");
        let mut c = header(96, ETHERNET);
        for i in 0..3 {
            c.extend(record(96, 1500, &frame(i, 96)));
        }
        std::fs::write(&path, &c).unwrap();
        assert_eq!(replay(&path), [(0, 96), (1, 96), (2, 96)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// pcapng: enhanced and simple packet blocks; a simple packet's padding is not part of the
    /// frame.
    #[test]
    fn pcapng_packets_read_without_padding() {
        let dir = tmp("ng");
        let path = dir.join("a.pcapng");
        let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0)).unwrap();
        for (i, len) in [(0, 60usize), (1, 61)] {
            let f = frame(i, len);
            let b = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::ZERO,
                original_len: len as u32,
                data: Cow::Borrowed(&f),
                options: vec![],
            };
            w.write_pcapng_block(b).unwrap();
        }
        let f = frame(2, 63);
        w.write_pcapng_block(SimplePacketBlock { original_len: 63, data: Cow::Borrowed(&f) }).unwrap();
        drop(w);
        assert_eq!(replay(&path), [(0, 60), (1, 61), (2, 63)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Captures whose link type is not Ethernet are refused when the port opens, naming the
    /// link type; read as Ethernet, a MAC rewrite would overwrite their IP headers.
    #[test]
    fn non_ethernet_captures_are_refused() {
        let dir = tmp("dlt");
        let raw = dir.join("raw.pcap");
        let mut c = header(65535, RAW);
        c.extend(record(20, 20, &[0x45; 20]));
        std::fs::write(&raw, &c).unwrap();
        let ng = dir.join("sll.pcapng");
        let mut w = PcapNgWriter::new(File::create(&ng).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0)).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::LINUX_SLL, 0)).unwrap();
        drop(w);
        for (path, want) in
            [(&raw, "link type RAW (101), not Ethernet"), (&ng, "interface 1: link type LINUX_SLL (113)")]
        {
            let e = PcapPort::new(0, rx_only(path), pool(4)).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("tcprewrite --dlt=enet"), "{e}");
            assert_eq!(PcapPort::check_input(0, path).unwrap_err().to_string(), e);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// pcapng: a packet on an interface described after the first packet, whose link type is
    /// not Ethernet, ends the replay there (it cannot be refused at open).
    #[test]
    fn pcapng_packet_from_a_later_non_ethernet_interface_ends_the_replay() {
        let dir = tmp("ng-late");
        let path = dir.join("late.pcapng");
        let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0)).unwrap();
        let f = frame(0, 60);
        let epb = |interface_id| EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::ZERO,
            original_len: 60,
            data: Cow::Borrowed(&f[..]),
            options: vec![],
        };
        w.write_pcapng_block(epb(0)).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 0)).unwrap();
        w.write_pcapng_block(epb(1)).unwrap();
        w.write_pcapng_block(epb(0)).unwrap();
        drop(w);
        let mut p = PcapPort::new(0, rx_only(&path), pool(8)).unwrap();
        assert_eq!(drain(&mut p), [(0, 60)]);
        let notes = p.notes();
        assert!(notes.len() == 1 && notes[0].fatal, "{notes:?}");
        assert!(notes[0].text.contains("block 5") && notes[0].text.contains("not Ethernet"), "{notes:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A bad record ends the replay at it: the frames before it are delivered, it is counted
    /// in ierrors, and the port's notes say (fatally) which record, where and why; a capture
    /// cut off mid-record is told apart from a corrupt one.
    #[test]
    fn bad_record_ends_the_replay_with_a_fatal_note() {
        let dir = tmp("rec");
        let path = dir.join("in.pcap");
        let good = |c: &mut Vec<u8>, from: u32| (from..from + 3).for_each(|i| c.extend(record(64, 64, &frame(i, 64))));
        let with = |bad: &[u8], after: bool| {
            let mut c = header(1500, ETHERNET);
            good(&mut c, 0);
            c.extend(bad);
            if after {
                good(&mut c, 10);
            }
            c
        };
        // Record 4 starts after the 24-byte file header and three 80-byte records.
        let at = 24 + 3 * 80;
        let r4 = record(64, 64, &frame(3, 64));
        let corrupt = |why: &str| Some(FaultKind::Corrupt(why.to_string()));
        let cases: [(Vec<u8>, Option<FaultKind>); 6] = [
            (
                with(&record(64, 60, &frame(3, 64)), true),
                corrupt("incl_len > orig_len (64 > 60): more bytes captured than were on the wire"),
            ),
            (
                with(&record(1600, 1600, &frame(3, 1600)), true),
                corrupt("its incl_len is over the snap length (1600 > 1500), or the header is garbage"),
            ),
            // A wild length in the middle of the file: corrupt, not "truncated", and the reader
            // does not try to read 2 GB.
            (
                with(&record(0x7fff_0000, 64, &frame(3, 64)), true),
                corrupt("its incl_len is over the snap length (2147418112 > 1500), or the header is garbage"),
            ),
            (with(&r4[..16 + 30], false), Some(FaultKind::CutOff { have: 46, need: Some(80) })),
            (with(&r4[..10], false), Some(FaultKind::CutOff { have: 10, need: None })),
            // The end of the file right after a record is the end, not a fault.
            (with(&[], false), None),
        ];
        for (capture, kind) in cases {
            std::fs::write(&path, &capture).unwrap();
            let mut c = Capture::open("pcap0", &path).unwrap();
            let mut got = vec![];
            let end = loop {
                match c.next_frame(&mut |f| got.push(f[14..18].to_vec())) {
                    Ok(true) => continue,
                    Ok(false) => break None,
                    Err(e) => break Some(e),
                }
            };
            assert_eq!(got.len(), 3, "{kind:?}: the frames before the bad record");
            assert_eq!(end, kind.clone().map(|kind| InputFault { unit: "record", number: 4, offset: at, kind }));
            // Through the port: counted, and a fatal note naming file, record and fault.
            let mut p = PcapPort::new(0, rx_only(&path), pool(8)).unwrap();
            assert_eq!(drain(&mut p).len(), 3);
            assert_eq!((p.stats().ipackets, p.stats().ierrors), (3, kind.is_some() as u64));
            let notes = p.notes();
            if kind.is_none() {
                assert_eq!(notes, []);
                continue;
            }
            assert!(notes.len() == 1 && notes[0].fatal, "{notes:?}");
            let t = &notes[0].text;
            assert!(t.starts_with("port 0 (pcap0): ") && t.contains("in.pcap: record 4 (byte 264) is "), "{t}");
            let tail = format!(
                "the replay stopped there, leaving {} of its {} bytes unread",
                capture.len() as u64 - at,
                capture.len()
            );
            assert!(t.ends_with(&tail), "{t}");
        }
        let msg = |kind| InputFault { unit: "record", number: 4, offset: 264, kind }.to_string();
        assert_eq!(
            msg(FaultKind::CutOff { have: 46, need: Some(80) }),
            "record 4 (byte 264) is truncated: the file ends 46 bytes into its 80 (a capture cut off mid-write?)"
        );
        assert_eq!(
            msg(FaultKind::CutOff { have: 10, need: None }),
            "record 4 (byte 264) is truncated: the file ends 10 bytes into its header (a capture cut off mid-write?)"
        );
        assert_eq!(msg(FaultKind::Corrupt("x".into())), "record 4 (byte 264) is corrupt: x");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// pcapng: a file cut off inside a block, and a block whose trailing length disagrees with
    /// its leading one, end the replay there, told apart as in pcap files.
    #[test]
    fn pcapng_cut_off_or_corrupt_block_ends_the_replay() {
        let dir = tmp("ng-bad");
        let path = dir.join("in.pcapng");
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0)).unwrap();
        let mut ends = vec![];
        for i in 0..3 {
            let f = frame(i, 60);
            let b = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::ZERO,
                original_len: 60,
                data: Cow::Borrowed(&f),
                options: vec![],
            };
            w.write_pcapng_block(b).unwrap();
            ends.push(w.get_ref().len());
        }
        let file = w.into_inner();
        // Blocks: 1 section header, 2 interface, 3..5 packets of 92 bytes (28 + 60 + 4).
        let (b4, b5) = (ends[0], ends[1]);
        assert_eq!(b5 - b4, 92);
        let mut corrupt = file.clone();
        corrupt[b5 - 4] ^= 0xff; // block 4's trailing length
        for (bytes, frames, fault) in [
            (file[..b5 + 50].to_vec(), 2, FaultKind::CutOff { have: 50, need: Some(92) }),
            (corrupt, 1, FaultKind::Corrupt("Invalid field value: Block: initial_length != trailer_length".into())),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let mut c = Capture::open("pcap0", &path).unwrap();
            let mut n = 0;
            let end = loop {
                match c.next_frame(&mut |_| n += 1) {
                    Ok(true) => continue,
                    Ok(false) => break None,
                    Err(e) => break Some(e),
                }
            };
            let number = 3 + frames as u64;
            let offset = if frames == 2 { b5 } else { b4 } as u64;
            assert_eq!((n, end), (frames, Some(InputFault { unit: "block", number, offset, kind: fault })));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Frames over the mbuf data room are skipped and counted, the replay goes on past them,
    /// and a note (not fatal) gives their number, the data room and the largest.
    #[test]
    fn frames_over_the_data_room_are_skipped_counted_and_noted() {
        let dir = tmp("big");
        let path = dir.join("big.pcap");
        let mut c = header(65535, ETHERNET);
        for (i, len) in [(0, 64), (1, 3000), (2, 64), (3, 4000), (4, 64)] {
            c.extend(record(len as u32, len as u32, &frame(i, len)));
        }
        std::fs::write(&path, &c).unwrap();
        let pool = pool(16);
        assert_eq!(pool.data_room(), pool.alloc().unwrap().data_room());
        let mut p = PcapPort::new(3, rx_only(&path), pool.clone()).unwrap();
        assert_eq!(drain(&mut p), [(0, 64), (2, 64), (4, 64)]);
        assert_eq!((p.stats().ipackets, p.stats().ierrors), (3, 2));
        let room = pool.data_room();
        assert_eq!(
            p.notes(),
            [PortNote {
                text: format!(
                    "port 3 (pcap3): 2 frames larger than the mbuf data room ({room} bytes) skipped, the largest \
                     4000 bytes (counted in ierrors)"
                ),
                fatal: false
            }]
        );
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
