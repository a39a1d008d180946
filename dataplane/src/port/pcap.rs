//! The pcap port: receive reads a pcap or pcapng file (then yields nothing more); transmit
//! writes a pcap file that tcpdump, tshark and Wireshark read. The output is complete and
//! valid once the transmit queue is dropped (the worker drops its queues at stop), and is
//! flushed by the worker's drain timer while running.
//!
//! File formats come from the `pcap-file` crate. Frames larger than an mbuf's data room are
//! counted as receive errors and skipped; a read error mid-file ends the input and is
//! counted and logged.

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
    /// When neither file is given, the input cannot be opened or is not a capture file, or
    /// the output cannot be created.
    pub fn new(id: u16, cfg: PcapConfig, pool: Mempool) -> Result<Self, PortError> {
        let name = format!("pcap{id}");
        if cfg.rx.is_none() && cfg.tx.is_none() {
            return Err(PortError::Config { port: name, msg: "a pcap port needs rx=FILE, tx=FILE or both".into() });
        }
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
}
