//! The VNF binary end to end on pcap ports: l2fwd output, the metrics endpoint against the
//! final summary, JSON statistics, and bad options.

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

fn write_pcap(path: &Path, n: u32) {
    write_frames(path, (0..n).map(|i| frame(64, i)));
}

/// A `len`-byte frame 02:..:bb → 02:..:aa, EtherType 0x88b5, `i` after the header as far as
/// it fits.
fn frame(len: usize, i: u32) -> Vec<u8> {
    let mut f = [[2, 0, 0, 0, 0, 0xaa], [2, 0, 0, 0, 0, 0xbb]].concat();
    f.extend([0x88, 0xb5]);
    f.extend(i.to_be_bytes());
    f.resize(len.max(64), 0);
    f.truncate(len);
    f
}

fn write_frames(path: &Path, frames: impl Iterator<Item = Vec<u8>>) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for f in frames {
        w.write_packet(&PcapPacket::new(Duration::ZERO, f.len() as u32, &f)).unwrap();
    }
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = vec![];
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

fn http_get(addr: &str, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str, port: u32) -> u64 {
    let prefix = format!("{name}{{port=\"{port}\"");
    text.lines().find(|l| l.starts_with(&prefix)).and_then(|l| l.rsplit(' ').next()).unwrap().parse().unwrap()
}

#[test]
fn l2fwd_pcap_rewrites_and_metrics_match_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    write_pcap(&inp, 100);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin())
        .args(["l2fwd", "--port", &format!("pcap:rx={}", inp.display())])
        .args(["--port", &format!("pcap:tx={}", out.display())])
        .args(["--portmap", "(0,1)", "--duration", "3", "-T", "0", "--metrics-addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let m = http_get(&addr, "/metrics");
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(metric(&m, "vnf_port_rx_packets_total", 0), 100, "{m}");
    assert_eq!(metric(&m, "vnf_port_tx_packets_total", 1), 100, "{m}");
    // The final summary says the same.
    let port1 = stdout.split("Statistics for port 1").nth(1).unwrap();
    assert!(port1.lines().any(|l| l.starts_with("Packets sent:") && l.ends_with(" 100")), "{stdout}");
    let frames = read_pcap(&out);
    assert_eq!(frames.len(), 100);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(&f[..6], &[2, 0, 0, 0, 0, 1], "dst = 02:00:00:00:00:<tx port>");
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1], "src = tx port MAC");
        assert_eq!(u32::from_be_bytes(f[14..18].try_into().unwrap()), i as u32, "order kept");
    }
}

#[test]
fn json_stats_lines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    write_pcap(&inp, 10);
    let o = Command::new(bin())
        .args(["l2fwd", "--port", &format!("pcap:rx={}", inp.display()), "--port", "null"])
        .args(["--portmap", "(0,1)", "--duration", "1.5", "-T", "1", "--stats-format", "json", "--no-mac-updating"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    let objs: Vec<serde_json::Value> =
        stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!objs.is_empty(), "{stdout}");
    assert_eq!(objs.last().unwrap()["ports"][0]["received"], 10);
}

#[test]
fn bad_options_exit_2_with_a_message() {
    for args in [
        vec!["l2fwd", "--port", "bogus"],
        vec!["l2fwd", "--port", "null", "--port", "null", "-p", "zz"],
        vec!["l2fwd", "--port", "null"],
        vec!["l2fwd", "--port", "null", "--port", "null", "--portmap", "(0,5)"],
        vec!["l2fwd", "--port", "null", "--port", "null", "--eth-dest", "0,zz:zz"],
        vec!["l2fwd", "--port", "null", "--port", "null", "--rx-burst", "0", "--duration", "1"],
        vec!["demo", "--duration", "-1"],
    ] {
        let o = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!o.stderr.is_empty(), "{args:?} printed no message");
    }
}

#[test]
fn missing_interface_is_a_setup_error() {
    let o = Command::new(bin()).args(["l2fwd", "--port", "af_packet:nosuchif0", "--port", "null"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchif0"));
}

#[test]
fn txonly_sends_valid_frames_per_flow() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let o = Command::new(bin())
        .args(["txonly", "--port", &format!("pcap:tx={}", out.display()), "--duration", "0.3", "-T", "0"])
        .args(["--txpkts", "128", "--tx-flows", "3", "--tx-ip", "198.18.5.1,198.18.6.1", "--tx-udp", "1000,2000"])
        .args(["--eth-peer", "0,02:00:00:00:00:99"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    let frames = read_pcap(&out);
    assert!(frames.len() >= 32, "{} frames", frames.len());
    // The summary counts what was sent on port 0; received stays 0 (generated, not received).
    assert!(stdout.contains("Packets received:                    0"), "{stdout}");
    for (i, f) in frames.iter().take(6).enumerate() {
        assert_eq!(f.len(), 128);
        assert_eq!(&f[..6], &[2, 0, 0, 0, 0, 0x99]);
        assert_eq!(&f[26..30], &[198, 18, 5, 1 + (i % 3) as u8], "frame {i}: source per flow");
        assert_eq!(&f[30..34], &[198, 18, 6, 1]);
        assert_eq!(&f[34..38], &[0x03, 0xe8, 0x07, 0xd0]);
        let ip = dataplane::wire::Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum(), "frame {i}: IPv4 checksum");
    }
    for bad in [
        vec!["--txpkts", "20"],
        vec!["--tx-ip", "198.18.0.1"],
        vec!["--tx-udp", "x"],
        vec!["--tx-flows", "0"],
        vec!["--eth-peer", "3,02:00:00:00:00:01"],
    ] {
        let o = Command::new(bin()).args(["txonly", "--port", "null", "--duration", "1"]).args(&bad).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn config_file_says_the_same_as_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    write_pcap(&inp, 20);
    let cfg = dir.path().join("vnf.toml");
    std::fs::write(
        &cfg,
        format!(
            "# l2fwd from a pcap to a pcap\nmode = \"l2fwd\"\nport = [\"pcap:rx={}\", \"pcap:tx={}\"]\n\
             portmap = \"(0,1)\"\neth-dest = [\"1,02:00:00:00:00:77\"]\nduration = 1\nstats-period = 0\n",
            inp.display(),
            out.display()
        ),
    )
    .unwrap();
    // The mode from the file, everything else too.
    let o = Command::new(bin()).args(["--config-file", cfg.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let frames = read_pcap(&out);
    assert_eq!(frames.len(), 20);
    assert!(frames.iter().all(|f| f[..6] == [2, 0, 0, 0, 0, 0x77]));
    // The command line wins over the file.
    let o = Command::new(bin())
        .args(["l2fwd", "--config-file", cfg.to_str().unwrap(), "--no-mac-updating"])
        .args(["--eth-dest", "1,02:00:00:00:00:55"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read_pcap(&out).iter().all(|f| f[..6] == [2, 0, 0, 0, 0, 0xaa]), "--no-mac-updating from the command line");
    // A bad value from the file: the option's own error, a note naming the file, exit 2.
    std::fs::write(&cfg, "port = [\"null\", \"null\"]\nportmask = \"zz\"\n").unwrap();
    let o = Command::new(bin()).args(["l2fwd", "--config-file", cfg.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("portmask") && err.contains("vnf.toml"), "{err}");
    // An unknown key: exit 2 naming file, line and key.
    std::fs::write(&cfg, "port = [\"null\", \"null\"]\n\nportmak = \"0x3\"\n").unwrap();
    let o = Command::new(bin()).args(["l2fwd", "--config-file", cfg.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("vnf.toml:3: `portmak`: no such option"), "{err}");
}

/// A frame shorter than an Ethernet header is not Ethernet: dropped as malformed, with or
/// without MAC updating; 14–59-byte runts go through as they are (as DPDK l2fwd forwards them).
#[test]
fn l2fwd_drops_frames_shorter_than_an_ethernet_header() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    let lens = [12usize, 13, 14, 20, 60, 64, 0, 6];
    write_frames(&inp, lens.iter().enumerate().map(|(i, &l)| frame(l, i as u32)));
    for extra in [&[][..], &["--no-mac-updating"][..]] {
        let out = dir.path().join("out.pcap");
        let o = Command::new(bin())
            .args(["l2fwd", "--port", &format!("pcap:rx={}", inp.display())])
            .args(["--port", &format!("pcap:tx={}", out.display())])
            .args(["--portmap", "(0,1)", "--duration", "1", "-T", "0"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        let got: Vec<usize> = read_pcap(&out).iter().map(Vec::len).collect();
        assert_eq!(got, [14, 20, 60, 64], "{extra:?}: only frames of 14 bytes and more go out\n{stdout}");
        for f in read_pcap(&out) {
            let want = if extra.is_empty() { [2, 0, 0, 0, 0, 1] } else { [2, 0, 0, 0, 0, 0xaa] };
            assert_eq!(&f[..6], &want, "{extra:?}");
        }
        let malformed = stdout.lines().find_map(|l| l.trim().strip_prefix("dropped malformed")).map(str::trim);
        assert_eq!(malformed, Some("4"), "{extra:?}: 4 counted as malformed\n{stdout}");
    }
}
