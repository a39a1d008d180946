//! The metrics endpoint under many idle connections (issue 17, item 9): it used to start a
//! thread per connection (8,000 idle connections, 8,006 threads). Now its threads stay
//! bounded, the connections it holds are capped, a normal scrape is still answered promptly,
//! and idle connections are closed after the request timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Idle connections the test opens.
const IDLE: usize = 2000;
/// Most connections the endpoint holds at once (`metrics::MAX_CONNECTIONS`).
const CAP: usize = 256;
/// How long the endpoint waits for a request (`metrics::REQUEST_TIMEOUT`).
const TIMEOUT: Duration = Duration::from_secs(5);

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Raises this process's open-file limit to what the test needs.
fn raise_nofile(n: u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit to the valid pointer given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_cur >= n {
        return;
    }
    r.rlim_cur = n.min(r.rlim_max);
    if r.rlim_max < n {
        r.rlim_max = n; // needs CAP_SYS_RESOURCE (root): the test runs as root
        r.rlim_cur = n;
    }
    // SAFETY: setrlimit reads one rlimit from the valid pointer given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0, "{}", std::io::Error::last_os_error());
}

fn scrape(addr: SocketAddr) -> (String, Duration) {
    let t0 = Instant::now();
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: vnf\r\nConnection: close\r\n\r\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    (s, t0.elapsed())
}

/// True while the server keeps `c` open (no EOF or reset on a non-blocking read).
fn open(mut c: &TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(c.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

struct Vnf(Child);

impl Drop for Vnf {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn idle_connections_do_not_make_threads_and_time_out() {
    raise_nofile(IDLE as u64 + 256);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["l2fwd", "--port", "ring", "--port", "ring", "--idle-sleep-us", "1000", "-T", "0"])
        .args(["--duration", "60", "--metrics-addr", "127.0.0.1:0", "--pidfile"])
        .arg(dir.path().join("vnf.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let pid = child.id();
    let vnf = Vnf(child);
    let addr: SocketAddr = loop {
        let mut l = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut l).unwrap() > 0, "the VNF did not start");
        if let Some((_, a)) = l.split_once("metrics on http://") {
            break a.trim().trim_end_matches("/metrics").parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    std::thread::sleep(Duration::from_millis(300));
    let (m, _) = scrape(addr);
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    let (threads0, fds0) = (threads(pid), fds(pid));

    let t0 = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    for c in &idle {
        c.set_nonblocking(true).unwrap();
    }
    eprintln!("{IDLE} idle connections opened in {:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let (threads1, fds1) = (threads(pid), fds(pid));
    eprintln!("VNF threads {threads0} -> {threads1}, fds {fds0} -> {fds1}");
    assert!(threads1 <= threads0 + 1, "{IDLE} idle connections made threads: {threads0} -> {threads1}");
    assert!(fds1 <= fds0 + CAP + 8, "the endpoint holds more than {CAP} connections: fds {fds0} -> {fds1}");

    // A scrape still gets through at once.
    let (m, took) = scrape(addr);
    eprintln!("scrape with {IDLE} idle connections: {took:?}");
    assert!(m.starts_with("HTTP/1.1 200") && m.contains("vnf_uptime_seconds"), "{m}");
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    let still = idle.iter().filter(|c| open(c)).count();
    assert!(still <= CAP, "{still} of {IDLE} idle connections held (cap {CAP})");

    // The rest are closed once the request timeout passes.
    std::thread::sleep(TIMEOUT + Duration::from_secs(2));
    let still = idle.iter().filter(|c| open(c)).count();
    assert_eq!(still, 0, "idle connections not timed out");
    assert!(fds(pid) <= fds0 + 2, "fds {fds0} -> {}", fds(pid));
    let (m, took) = scrape(addr);
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    drop(idle);
    drop(vnf);
}

#[test]
fn slow_and_bad_requests_are_answered_or_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["l2fwd", "--port", "ring", "--port", "ring", "--idle-sleep-us", "1000", "-T", "0"])
        .args(["--duration", "30", "--metrics-addr", "127.0.0.1:0", "--pidfile"])
        .arg(dir.path().join("vnf.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let vnf = Vnf(child);
    let addr: SocketAddr = loop {
        let mut l = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut l).unwrap() > 0, "the VNF did not start");
        if let Some((_, a)) = l.split_once("metrics on http://") {
            break a.trim().trim_end_matches("/metrics").parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    // Sends `req` in pieces of `piece` bytes, then reads until the server closes.
    let ask_in = |req: &[u8], piece: usize| {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(TIMEOUT + Duration::from_secs(3))).unwrap();
        for part in req.chunks(piece) {
            c.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut s = String::new();
        let _ = c.read_to_string(&mut s);
        s
    };
    let ask = |req: &[u8]| ask_in(req, usize::MAX);
    // A request in small pieces; health; unknown path; a method other than GET/HEAD.
    let r = ask_in(b"GET /metrics HTTP/1.0\r\nUser-Agent: t\r\n\r\n", 7);
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("Connection: close"), "{r}");
    assert!(ask(b"GET /healthz HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nok\n"));
    assert!(ask(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(ask(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").starts_with("HTTP/1.1 405"));
    let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "{head}");
    assert!(ask(b"\x16\x03\x01 not http\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(ask(huge.as_bytes()).starts_with("HTTP/1.1 431"));
    // Half a request, then silence: closed after the timeout, with nothing sent.
    let t0 = Instant::now();
    assert_eq!(ask(b"GET /metrics HTTP/1.1\r\n"), "");
    let took = t0.elapsed();
    assert!(took >= TIMEOUT - Duration::from_millis(500) && took < TIMEOUT + Duration::from_secs(2), "{took:?}");
    drop(vnf);
}
