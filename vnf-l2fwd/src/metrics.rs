//! The Prometheus `/metrics` endpoint (`--metrics-addr`) and the JSON statistics lines
//! (`--stats-format json`).
//!
//! The control thread renders a snapshot of the counters a few times a second and publishes
//! it; the endpoint's one thread ([`Server`]) serves the latest snapshot to any number of
//! clients, holding at most [`MAX_CONNECTIONS`] at once. Nothing here touches the data path:
//! the lcores only write their own counters.

use crate::stats::PortLine;
use dataplane::lcore::DropReason;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Route-table reloads (l3fwd): written by the control thread's reload, read by the statistics
/// and the metrics endpoint.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads that swapped in a new table.
    pub ok: std::sync::atomic::AtomicU64,
    /// Reloads rejected (bad file); the running table stayed.
    pub rejected: std::sync::atomic::AtomicU64,
    /// Generation of the table in use.
    pub generation: std::sync::atomic::AtomicU64,
    /// IPv4 routes in the table in use.
    pub routes_v4: std::sync::atomic::AtomicU64,
    /// IPv6 routes in the table in use.
    pub routes_v6: std::sync::atomic::AtomicU64,
    /// Milliseconds the last finished reload took.
    pub last_ms: std::sync::atomic::AtomicU64,
    /// The reload in progress, if any.
    pub running: Mutex<Option<ReloadProgress>>,
}

/// A reload in progress, as the statistics show it.
#[derive(Debug, Clone)]
pub struct ReloadProgress {
    /// The reload's number.
    pub seq: u64,
    /// When it started.
    pub started: Instant,
    /// Its build's stage and routes parsed so far.
    pub build: Arc<dataplane::l3fwd::BuildProgress>,
}

impl ReloadStats {
    fn get(&self) -> [u64; 5] {
        [&self.ok, &self.rejected, &self.generation, &self.routes_v4, &self.routes_v6]
            .map(|a| a.load(Ordering::Relaxed))
    }

    fn running(&self) -> Option<ReloadProgress> {
        self.running.lock().map(|r| r.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The Prometheus families.
    pub fn prometheus(&self) -> String {
        let [ok, rej, gen, r4, r6] = self.get();
        let run = self.running();
        let (busy, parsed, secs) =
            run.as_ref().map_or((0, 0, 0.0), |r| (1, r.build.routes_parsed(), r.started.elapsed().as_secs_f64()));
        let last = self.last_ms.load(Ordering::Relaxed) as f64 / 1e3;
        format!(
            "# HELP vnf_route_reloads_total Route-table reloads, by result.\n# TYPE vnf_route_reloads_total counter\n\
             vnf_route_reloads_total{{result=\"ok\"}} {ok}\nvnf_route_reloads_total{{result=\"rejected\"}} {rej}\n\
             # HELP vnf_route_table_generation Generation of the route table in use.\n# TYPE vnf_route_table_generation gauge\n\
             vnf_route_table_generation {gen}\n\
             # HELP vnf_route_table_routes Routes in the table in use.\n# TYPE vnf_route_table_routes gauge\n\
             vnf_route_table_routes{{family=\"ipv4\"}} {r4}\nvnf_route_table_routes{{family=\"ipv6\"}} {r6}\n\
             # HELP vnf_route_reload_in_progress 1 while a route reload builds its tables.\n\
             # TYPE vnf_route_reload_in_progress gauge\nvnf_route_reload_in_progress {busy}\n\
             # HELP vnf_route_reload_routes_parsed Routes the reload in progress has parsed so far.\n\
             # TYPE vnf_route_reload_routes_parsed gauge\nvnf_route_reload_routes_parsed {parsed}\n\
             # HELP vnf_route_reload_elapsed_seconds Seconds the reload in progress has run.\n\
             # TYPE vnf_route_reload_elapsed_seconds gauge\nvnf_route_reload_elapsed_seconds {secs:.3}\n\
             # HELP vnf_route_reload_last_duration_seconds Seconds the last finished reload took.\n\
             # TYPE vnf_route_reload_last_duration_seconds gauge\nvnf_route_reload_last_duration_seconds {last:.3}\n"
        )
    }

    /// The lines for the console statistics: the table, and the reload in progress.
    pub fn text(&self) -> String {
        let [ok, rej, gen, r4, r6] = self.get();
        let mut s =
            format!("Route table: generation {gen}, {r4} IPv4 / {r6} IPv6 routes; reloads {ok} ok, {rej} rejected\n");
        if let Some(r) = self.running() {
            let _ = writeln!(
                s,
                "Route reload {} in progress for {:.1} s: {}, {} routes parsed",
                r.seq,
                r.started.elapsed().as_secs_f64(),
                r.build.stage().name(),
                r.build.routes_parsed()
            );
        }
        s
    }
}

/// Counters of one port as the metrics and JSON output show them.
#[derive(Debug, Clone, Default)]
pub struct PortSample {
    /// Port name (interface, file, vdev).
    pub name: String,
    /// Backend.
    pub driver: String,
    /// l2fwd-style sent/received/dropped.
    pub line: PortLine,
    /// Backend counters (rte_eth_stats names).
    pub hw: dataplane::port::PortStats,
    /// Link state.
    pub link: dataplane::port::LinkStatus,
}

/// Renders the Prometheus text exposition format.
pub fn render_prometheus(
    ports: &[PortSample],
    drops: &[u64; DropReason::COUNT],
    workers: &dataplane::lcore::BusyTotals,
    uptime_s: f64,
) -> String {
    let mut s = String::new();
    let mut family = |name: &str, help: &str, kind: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    };
    let lbl =
        |i: usize, p: &PortSample| format!("{{port=\"{i}\",name=\"{}\",driver=\"{}\"}}", esc(&p.name), esc(&p.driver));
    family(
        "vnf_port_rx_packets_total",
        "Packets received from the port by the workers.",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.received)),
    );
    family(
        "vnf_port_tx_packets_total",
        "Packets sent on the port by the workers.",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.sent)),
    );
    family(
        "vnf_port_tx_dropped_total",
        "Packets the port's tx queue refused (freed and counted).",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.dropped)),
    );
    for (name, help, f) in [
        (
            "vnf_port_ipackets_total",
            "Backend counter: packets received.",
            (|h: &dataplane::port::PortStats| h.ipackets) as fn(&_) -> u64,
        ),
        ("vnf_port_opackets_total", "Backend counter: packets sent.", |h| h.opackets),
        ("vnf_port_ibytes_total", "Backend counter: bytes received.", |h| h.ibytes),
        ("vnf_port_obytes_total", "Backend counter: bytes sent.", |h| h.obytes),
        ("vnf_port_imissed_total", "Backend counter: packets missed on receive.", |h| h.imissed),
        ("vnf_port_ierrors_total", "Backend counter: receive errors.", |h| h.ierrors),
        ("vnf_port_oerrors_total", "Backend counter: transmit errors.", |h| h.oerrors),
        ("vnf_port_rx_nombuf_total", "Backend counter: receive attempts without a free mbuf.", |h| h.rx_nombuf),
    ] {
        family(name, help, "counter", &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), f(&p.hw))));
    }
    family(
        "vnf_port_link_up",
        "1 when the port's link is up.",
        "gauge",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), u64::from(p.link.up))),
    );
    family(
        "vnf_dropped_packets_total",
        "Packets dropped by the data path, by reason.",
        "counter",
        &mut DropReason::ALL.iter().map(|r| (format!("{{reason=\"{}\"}}", r.name()), drops[*r as usize])),
    );
    for (name, help, v) in [
        ("vnf_worker_loops_total", "Worker loop iterations, all workers.", workers.loops),
        ("vnf_worker_busy_loops_total", "Worker loop iterations that received packets.", workers.busy_loops),
        (
            "vnf_worker_busy_cycles_total",
            "Timer cycles of the busy iterations (TSC on x86_64, CNTVCT on aarch64); over rx packets: busy cycles per packet.",
            workers.busy_cycles,
        ),
        ("vnf_worker_rx_packets_total", "Packets the workers received, all ports.", workers.rx),
        (
            "vnf_worker_classified_bursts_total",
            "Received bursts the workers ran through the packet classifier.",
            workers.classified_bursts,
        ),
    ] {
        family(name, help, "counter", &mut std::iter::once((String::new(), v)));
    }
    let _ = writeln!(s, "# HELP vnf_uptime_seconds Seconds since forwarding started.\n# TYPE vnf_uptime_seconds gauge");
    let _ = writeln!(s, "vnf_uptime_seconds {uptime_s:.3}");
    s
}

/// One JSON object with the same figures (for `--stats-format json`), and the workers' loop
/// counters summed (`workers`: loops, busy_loops, busy_cycles, rx, classified_bursts (received
/// bursts run through the classifier), and the timer's rate
/// `timer_hz`), from which a reader takes busy cycles per packet over a window.
pub fn render_json(
    ports: &[PortSample],
    drops: &[u64; DropReason::COUNT],
    workers: &dataplane::lcore::BusyTotals,
    uptime_s: f64,
) -> String {
    json_value(ports, drops, workers, uptime_s).to_string()
}

/// [`render_json`]'s object, for the final summary to add its `summary` member to.
pub fn json_value(
    ports: &[PortSample],
    drops: &[u64; DropReason::COUNT],
    workers: &dataplane::lcore::BusyTotals,
    uptime_s: f64,
) -> serde_json::Value {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "port": i, "name": p.name, "driver": p.driver,
                "sent": p.line.sent, "received": p.line.received, "dropped": p.line.dropped,
                "ipackets": p.hw.ipackets, "opackets": p.hw.opackets, "ibytes": p.hw.ibytes, "obytes": p.hw.obytes,
                "imissed": p.hw.imissed, "ierrors": p.hw.ierrors, "oerrors": p.hw.oerrors, "rx_nombuf": p.hw.rx_nombuf,
                "link_up": p.link.up, "link_speed_mbps": p.link.speed_mbps,
            })
        })
        .collect();
    let drops: serde_json::Map<String, serde_json::Value> =
        DropReason::ALL.iter().map(|r| (r.name().to_string(), drops[*r as usize].into())).collect();
    let workers = serde_json::json!({
        "loops": workers.loops, "busy_loops": workers.busy_loops, "busy_cycles": workers.busy_cycles,
        "rx": workers.rx, "classified_bursts": workers.classified_bursts,
        "timer_hz": dataplane::arch::cycles_per_sec(),
    });
    serde_json::json!({ "uptime_s": uptime_s, "ports": ports, "drops": drops, "workers": workers })
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Most connections the endpoint holds at once. A connection past this closes the oldest one
/// that is still waiting for its request (or is done and lingering); when every held one is
/// being answered, the new one is closed instead.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take to send its request, and then to take the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers) read; a longer one is answered 431.
const MAX_REQUEST: usize = 8192;
/// Headers parsed per request; more is answered 431.
const MAX_HEADERS: usize = 32;
/// After the response: how long the client has to close before we do (a "lingering close",
/// so that an unread byte of the request cannot turn our close into a reset that destroys
/// the response in flight).
const LINGER: Duration = Duration::from_secs(2);
/// The endpoint's poll timeout: how often it checks deadlines and the stop flag.
const TICK: Duration = Duration::from_millis(100);
const LISTENER: mio::Token = mio::Token(0);

/// The HTTP endpoint: `GET /metrics` (the latest snapshot), `/healthz` and `/readyz`; `HEAD`
/// too. One thread serves every connection from a poll loop on non-blocking sockets (mio):
/// at most [`MAX_CONNECTIONS`] at once, each closed when it has not sent its request or
/// taken its response within [`REQUEST_TIMEOUT`]. One request per connection, answered with
/// `Connection: close`. Stops on drop.
pub struct Server {
    snapshot: Arc<Mutex<Arc<str>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: std::net::SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Listens on `addr` (e.g. `0.0.0.0:9100`).
    ///
    /// # Errors
    /// When the address is invalid or cannot be bound.
    pub fn start(addr: &str) -> Result<Server, String> {
        let bad = |e: std::io::Error| format!("--metrics-addr {addr}: {e}");
        let std_listener = std::net::TcpListener::bind(addr).map_err(bad)?;
        std_listener.set_nonblocking(true).map_err(bad)?;
        let bound = std_listener.local_addr().map_err(bad)?;
        let mut listener = mio::net::TcpListener::from_std(std_listener);
        let poll = mio::Poll::new().map_err(bad)?;
        poll.registry().register(&mut listener, LISTENER, mio::Interest::READABLE).map_err(bad)?;
        let snapshot: Arc<Mutex<Arc<str>>> = Arc::new(Mutex::new(Arc::from("# no sample yet\n")));
        let stop = Arc::new(AtomicBool::new(false));
        let mut ep = Endpoint { poll, listener, conns: HashMap::new(), next: 1, snapshot: snapshot.clone() };
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || ep.run(&st))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Server { snapshot, stop, thread: Some(thread), addr: bound })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Replaces the served snapshot.
    pub fn publish(&self, text: String) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = Arc::from(text);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where a connection is in its one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the request head.
    Request,
    /// Writing the response.
    Response,
    /// Response sent and our side shut down: reading and discarding until the client closes.
    Linger,
}

struct Conn {
    stream: mio::net::TcpStream,
    phase: Phase,
    accepted: Instant,
    deadline: Instant,
    /// The request head so far, then the response.
    buf: Vec<u8>,
    /// Response bytes written so far.
    written: usize,
}

/// The server thread's state.
struct Endpoint {
    poll: mio::Poll,
    listener: mio::net::TcpListener,
    conns: HashMap<mio::Token, Conn>,
    next: usize,
    snapshot: Arc<Mutex<Arc<str>>>,
}

/// What to do with a connection after an event.
enum Next {
    Keep,
    Close,
}

impl Endpoint {
    fn run(&mut self, stop: &AtomicBool) {
        let mut events = mio::Events::with_capacity(256);
        // mio is edge-triggered: connections left in the backlog (refused for lack of file
        // descriptors) are retried at the next tick without a new event.
        let mut accept_pending = false;
        let mut last_warning: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("metrics endpoint stopped: poll: {e}");
                return;
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    accept_pending = true;
                } else if let Some(c) = self.conns.get_mut(&ev.token()) {
                    if let Next::Close = c.on_ready(&self.snapshot, self.poll.registry(), ev.token()) {
                        self.conns.remove(&ev.token());
                    }
                }
            }
            if accept_pending {
                match self.accept() {
                    Ok(()) => accept_pending = false,
                    Err(e) => {
                        if !matches!(last_warning, Some(t) if t.elapsed() < Duration::from_secs(10)) {
                            log::warn!("metrics endpoint: accept: {e} ({} connections held)", self.conns.len());
                            last_warning = Some(Instant::now());
                        }
                    }
                }
            }
            let now = Instant::now();
            self.conns.retain(|_, c| c.deadline > now);
        }
    }

    /// Accepts every waiting connection. `Err` when the OS refuses (out of descriptors).
    fn accept(&mut self) -> std::io::Result<()> {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors: free one for the next try.
                    self.evict_oldest_waiting();
                    return Err(e);
                }
            };
            if self.conns.len() >= MAX_CONNECTIONS && !self.evict_oldest_waiting() {
                log::debug!("metrics endpoint: {MAX_CONNECTIONS} connections busy; closing a new one");
                continue; // dropping `stream` closes it
            }
            let token = mio::Token(self.next);
            self.next += 1;
            if self.poll.registry().register(&mut stream, token, mio::Interest::READABLE).is_err() {
                continue;
            }
            let now = Instant::now();
            let conn = Conn {
                stream,
                phase: Phase::Request,
                accepted: now,
                deadline: now + REQUEST_TIMEOUT,
                buf: Vec::new(),
                written: 0,
            };
            self.conns.insert(token, conn);
            // Data may have arrived before the registration: read now, edge or not.
            if let Some(c) = self.conns.get_mut(&token) {
                if let Next::Close = c.on_ready(&self.snapshot, self.poll.registry(), token) {
                    self.conns.remove(&token);
                }
            }
        }
    }

    /// Closes the connection that has waited longest for its request (or lingered longest
    /// after its response). False when every connection is being answered.
    fn evict_oldest_waiting(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase != Phase::Response)
            .min_by_key(|(_, c)| c.accepted)
            .map(|(t, _)| *t);
        match oldest {
            Some(t) => {
                log::debug!("metrics endpoint: {MAX_CONNECTIONS} connections held; closing the oldest idle one");
                self.conns.remove(&t);
                true
            }
            None => false,
        }
    }
}

impl Conn {
    /// Advances the exchange as far as the socket allows.
    fn on_ready(&mut self, snapshot: &Mutex<Arc<str>>, reg: &mio::Registry, token: mio::Token) -> Next {
        use std::io::{ErrorKind, Read, Write};
        let mut chunk = [0u8; 4096];
        if self.phase == Phase::Request {
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return Next::Close,
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        if let Some(resp) = respond(&self.buf, snapshot) {
                            self.buf = resp;
                            self.phase = Phase::Response;
                            self.deadline = Instant::now() + REQUEST_TIMEOUT;
                            if reg.reregister(&mut self.stream, token, mio::Interest::WRITABLE).is_err() {
                                return Next::Close;
                            }
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
        }
        if self.phase == Phase::Response {
            while self.written < self.buf.len() {
                match self.stream.write(&self.buf[self.written..]) {
                    Ok(0) => return Next::Close,
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Next::Close,
                }
            }
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
            self.phase = Phase::Linger;
            self.buf = Vec::new();
            self.deadline = Instant::now() + LINGER;
            if reg.reregister(&mut self.stream, token, mio::Interest::READABLE).is_err() {
                return Next::Close;
            }
        }
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Close,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
    }
}

/// The response to the request head in `req`, or None while it is incomplete.
fn respond(req: &[u8], snapshot: &Mutex<Arc<str>>) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let (status, extra, body): (&str, &str, Arc<str>) = match r.parse(req) {
        Ok(httparse::Status::Partial) if req.len() < MAX_REQUEST => return None,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            ("431 Request Header Fields Too Large", "", Arc::from("request header too large\n"))
        }
        Err(_) => ("400 Bad Request", "", Arc::from("bad request\n")),
        Ok(httparse::Status::Complete(_)) => {
            let path = r.path.unwrap_or("").split('?').next().unwrap_or("");
            match (r.method.unwrap_or(""), path) {
                ("GET" | "HEAD", "/metrics") => (
                    "200 OK",
                    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
                    snapshot.lock().map(|s| s.clone()).unwrap_or_else(|_| Arc::from("")),
                ),
                ("GET" | "HEAD", "/healthz" | "/readyz") => ("200 OK", "", Arc::from("ok\n")),
                ("GET" | "HEAD", _) => ("404 Not Found", "", Arc::from("not found\n")),
                _ => ("405 Method Not Allowed", "Allow: GET, HEAD\r\n", Arc::from("method not allowed\n")),
            }
        }
    };
    let head_only = r.method == Some("HEAD");
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{extra}{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        if extra.starts_with("Content-Type") { "" } else { "Content-Type: text/plain; charset=utf-8\r\n" },
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_families_and_labels() {
        let p = PortSample {
            name: "net\"1".into(),
            driver: "af_xdp".into(),
            line: PortLine { sent: 5, received: 7, dropped: 1 },
            hw: Default::default(),
            link: dataplane::port::LinkStatus { up: true, speed_mbps: 1000, full_duplex: true },
        };
        let mut d = [0u64; DropReason::COUNT];
        d[DropReason::NoRoute as usize] = 3;
        let w =
            dataplane::lcore::BusyTotals { loops: 10, busy_loops: 4, busy_cycles: 900, rx: 9, classified_bursts: 3 };
        let t = render_prometheus(std::slice::from_ref(&p), &d, &w, 1.5);
        assert!(
            t.contains("# TYPE vnf_worker_classified_bursts_total counter\nvnf_worker_classified_bursts_total 3\n"),
            "{t}"
        );
        assert!(t.contains("\nvnf_worker_busy_cycles_total 900\n"), "{t}");
        assert!(t.contains("vnf_port_rx_packets_total{port=\"0\",name=\"net\\\"1\",driver=\"af_xdp\"} 7"));
        assert!(t.contains("vnf_dropped_packets_total{reason=\"no_route\"} 3"));
        assert!(t.contains("# TYPE vnf_port_tx_packets_total counter"));
        assert!(t.contains("vnf_port_link_up{port=\"0\",name=\"net\\\"1\",driver=\"af_xdp\"} 1"), "{t}");
        let w =
            dataplane::lcore::BusyTotals { loops: 10, busy_loops: 4, busy_cycles: 900, rx: 9, classified_bursts: 3 };
        let json = render_json(&[p], &d, &w, 1.5);
        // ci/vm/lib.sh finds the statistics lines by their start.
        assert!(json.starts_with("{\"drops\""), "{json}");
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["workers"]["busy_cycles"], 900);
        assert_eq!(j["workers"]["busy_loops"], 4);
        assert_eq!(j["workers"]["classified_bursts"], 3);
        assert_eq!(j["ports"][0]["sent"], 5);
        assert_eq!(j["ports"][0]["link_up"], true);
        assert_eq!(j["ports"][0]["link_speed_mbps"], 1000);
        assert_eq!(j["drops"]["no_route"], 3);
    }

    #[test]
    fn reload_stats_render() {
        let r = ReloadStats::default();
        r.ok.store(2, Ordering::Relaxed);
        r.generation.store(2, Ordering::Relaxed);
        r.routes_v4.store(7, Ordering::Relaxed);
        let t = r.prometheus();
        assert!(t.contains("vnf_route_reloads_total{result=\"ok\"} 2"), "{t}");
        assert!(t.contains("vnf_route_table_routes{family=\"ipv4\"} 7"), "{t}");
        assert!(r.text().contains("generation 2, 7 IPv4"));
        assert!(t.contains("vnf_route_reload_in_progress 0\n"), "{t}");
        let build = Arc::new(dataplane::l3fwd::BuildProgress::default());
        *r.running.lock().unwrap() = Some(ReloadProgress { seq: 3, started: Instant::now(), build });
        r.last_ms.store(1500, Ordering::Relaxed);
        let t = r.prometheus();
        assert!(t.contains("vnf_route_reload_in_progress 1\n"), "{t}");
        assert!(t.contains("vnf_route_reload_routes_parsed 0\n"), "{t}");
        assert!(t.contains("vnf_route_reload_last_duration_seconds 1.500\n"), "{t}");
        let text = r.text();
        assert!(text.lines().nth(1).unwrap().starts_with("Route reload 3 in progress for 0."), "{text}");
        assert!(text.ends_with(" s: reading, 0 routes parsed\n"), "{text}");
    }

    #[test]
    fn serves_metrics_over_http() {
        let s = Server::start("127.0.0.1:0").unwrap();
        s.publish("vnf_test 1\n".into());
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        use std::io::{Read, Write};
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{out}");
        assert!(out.ends_with("vnf_test 1\n"));
    }

    #[test]
    fn requests_and_their_answers() {
        let snap = Mutex::new(Arc::from("m 1\n"));
        let ans = |r: &str| respond(r.as_bytes(), &snap).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(ans("GET /metrics HTTP/1.1\r\nHost: x\r\n"), None, "incomplete");
        let ok = ans("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4"), "{ok}");
        assert!(ok.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"), "{ok}");
        assert!(ans("HEAD /metrics HTTP/1.0\r\n\r\n")
            .unwrap()
            .ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        assert!(ans("GET /readyz HTTP/1.1\r\n\r\n").unwrap().ends_with("\r\n\r\nok\n"));
        assert!(ans("GET / HTTP/1.1\r\n\r\n").unwrap().starts_with("HTTP/1.1 404"));
        let post = ans("POST /metrics HTTP/1.1\r\n\r\n").unwrap();
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD\r\n"), "{post}");
        assert!(ans("\x16\x03\x01\x02\r\n\r\n").unwrap().starts_with("HTTP/1.1 400"));
        let long = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(MAX_REQUEST));
        assert!(ans(&long).unwrap().starts_with("HTTP/1.1 431"));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: 1\r\n")).collect();
        assert!(ans(&format!("GET /metrics HTTP/1.1\r\n{many}\r\n")).unwrap().starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn connections_past_the_cap_close_the_oldest_idle_ones() {
        use std::io::{Read, Write};
        let s = Server::start("127.0.0.1:0").unwrap();
        s.publish("vnf_test 2\n".into());
        let idle: Vec<std::net::TcpStream> =
            (0..MAX_CONNECTIONS + 20).map(|_| std::net::TcpStream::connect(s.addr()).unwrap()).collect();
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.ends_with("vnf_test 2\n"), "{out}");
        // The first ones were closed to make room.
        let open = |mut c: &std::net::TcpStream| {
            c.set_nonblocking(true).unwrap();
            matches!(c.read(&mut [0u8; 8]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        };
        let closed: Vec<usize> = (0..idle.len()).filter(|&i| !open(&idle[i])).collect();
        assert_eq!(closed, (0..21).collect::<Vec<_>>(), "the oldest closed, to hold {MAX_CONNECTIONS}");
        drop(s);
    }
}
