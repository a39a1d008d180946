//! pcap ports end to end (issue 17, item 5): files a run would destroy or lose are refused
//! before anything is opened (exit 2, the input byte-for-byte intact), a capture that is not
//! Ethernet is refused, a bad record ends the replay with exit 1 and a message saying which
//! record and why, and frames over the mbuf data room show in the text summary.

use pcap_file::pcap::PcapReader;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

/// LINKTYPE_ETHERNET and LINKTYPE_RAW (a bare IPv4/IPv6 packet, no link-layer header).
const ETHERNET: u32 = 1;
const RAW: u32 = 101;

/// A pcap file header, little-endian, microsecond timestamps.
fn header(snaplen: u32, linktype: u32) -> Vec<u8> {
    let mut h = vec![];
    h.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic: microsecond resolution
    h.extend(2u16.to_le_bytes()); // version 2.4
    h.extend(4u16.to_le_bytes());
    h.extend(0i32.to_le_bytes()); // thiszone
    h.extend(0u32.to_le_bytes()); // sigfigs
    h.extend(snaplen.to_le_bytes());
    h.extend(linktype.to_le_bytes());
    h
}

/// A record: ts_sec, ts_usec, incl_len, orig_len, then `data` (which need not be incl_len
/// bytes: a test can lie).
fn record(incl_len: u32, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut r = vec![];
    r.extend(1u32.to_le_bytes()); // ts_sec
    r.extend(0u32.to_le_bytes()); // ts_usec
    r.extend(incl_len.to_le_bytes());
    r.extend(orig_len.to_le_bytes());
    r.extend(data);
    r
}

/// Ethernet frame `n` of `len` bytes: dst 02:00:00:00:00:aa, src 02:00:00:00:00:bb, EtherType
/// 0x88b5 (local experimental), `n` in bytes 14..18.
fn frame(n: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xbb]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&n.to_be_bytes());
    f
}

/// A capture of `n` good 64-byte Ethernet frames.
fn good_capture(n: u32) -> Vec<u8> {
    let mut c = header(65535, ETHERNET);
    for i in 0..n {
        c.extend(record(64, 64, &frame(i, 64)));
    }
    c
}

/// Runs the binary in `dir` (so relative file names are taken from there).
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).current_dir(dir).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The first byte of each frame's sequence number, in file order.
fn sequence(path: &Path) -> Vec<u32> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = vec![];
    while let Some(p) = r.next_packet() {
        v.push(u32::from_be_bytes(p.unwrap().data[14..18].try_into().unwrap()));
    }
    v
}

/// One port's `rx` file named again as a `tx` file, however spelled, is refused with exit 2
/// before any file is opened: the input is left byte-for-byte as it was.
#[test]
fn rx_file_named_as_tx_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = good_capture(5);
    std::fs::write(d.join("in.pcap"), &input).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("in.pcap", d.join("link.pcap")).unwrap();
    std::fs::hard_link(d.join("in.pcap"), d.join("hard.pcap")).unwrap();
    let abs = format!("pcap:rx={}", d.join("in.pcap").display());
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--port", "pcap:rx=in.pcap", "--port", "pcap:tx=./in.pcap"], "port 0", "port 1"),
        (&["--port", "pcap:rx=in.pcap,tx=in.pcap", "--port", "null"], "port 0 rx=in.pcap", "port 0 tx=in.pcap"),
        (&["--port", "pcap:rx=link.pcap", "--port", "pcap:tx=in.pcap"], "port 0", "port 1"),
        // The output first: it used to be created (truncating the input) before the input was read.
        (&["--port", "pcap:tx=hard.pcap", "--port", "pcap:rx=in.pcap"], "port 0", "port 1"),
        (&["--port", &abs, "--port", "pcap:tx=sub/../in.pcap"], "port 0", "port 1"),
        (&["--port", "null", "--port", "pcap:rx=in.pcap,tx=sub/../link.pcap"], "port 1 rx", "port 1 tx"),
    ];
    for (ports, first, second) in cases {
        let args = [&["l2fwd"], ports, &["--duration", "0.5", "-T", "0"]].concat();
        let o = run(d, &args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{ports:?}: {out}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(first) && err.contains(second) && err.contains("same file"), "{ports:?}: {err}");
        assert!(err.contains("truncate"), "{ports:?}: the message says what would have happened: {err}");
        assert_eq!(std::fs::read(d.join("in.pcap")).unwrap(), input, "{ports:?}: the input was changed");
    }
}

/// Two ports writing one file (each counting its frames sent while overwriting the other's)
/// are refused with exit 2, whether the file exists yet or not; nothing is created or changed.
#[test]
fn two_ports_writing_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.pcap"), good_capture(5)).unwrap();
    std::fs::write(d.join("b.pcap"), good_capture(5)).unwrap();
    let args = |tx0: &str, tx1: &str| {
        let p0 = format!("pcap:rx=a.pcap,tx={tx0}");
        let p1 = format!("pcap:rx=b.pcap,tx={tx1}");
        run(d, &["l2fwd", "--port", &p0, "--port", &p1, "--duration", "0.5", "-T", "0"])
    };
    // Not there yet: it must not be created.
    let o = args("out.pcap", "./out.pcap");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("port 0 tx=out.pcap") && err.contains("port 1 tx=./out.pcap"), "{err}");
    assert!(!d.join("out.pcap").exists(), "out.pcap was created");
    // There already: it must be left as it was.
    let old = good_capture(2);
    std::fs::write(d.join("out.pcap"), &old).unwrap();
    let o = args("out.pcap", &d.join("out.pcap").display().to_string());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(std::fs::read(d.join("out.pcap")).unwrap(), old);
    // Distinct files are fine, as is one input read by two ports.
    let o = run(
        d,
        &["l2fwd", "--port", "pcap:rx=a.pcap,tx=o0.pcap", "--port", "pcap:rx=a.pcap,tx=o1.pcap"]
            .into_iter()
            .chain(["--duration", "0.5", "-T", "0"])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sequence(&d.join("o0.pcap")), [0, 1, 2, 3, 4]);
    assert_eq!(sequence(&d.join("o1.pcap")), [0, 1, 2, 3, 4]);
}

/// A LINKTYPE_RAW capture (IPv4 packets without an Ethernet header) is refused with exit 2,
/// naming the link type, before the output is created: read as Ethernet, the MAC rewrite
/// would overwrite its IP header.
#[test]
fn non_ethernet_capture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An IPv4 header (version 4, IHL 5, total length 28, TTL 64, protocol UDP), then UDP.
    let ipv4 = [
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1, 1, // IPv4
        0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0, // UDP 12345 -> 12345, length 8
    ];
    let mut c = header(65535, RAW);
    c.extend(record(28, 28, &ipv4));
    std::fs::write(d.join("raw.pcap"), &c).unwrap();
    let o = run(d, &["l2fwd", "--port", "pcap:rx=raw.pcap", "--port", "pcap:tx=out.pcap", "--duration", "0.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("raw.pcap") && err.contains("link type") && err.contains("101"), "{err}");
    assert!(err.contains("not Ethernet"), "{err}");
    assert!(!d.join("out.pcap").exists(), "the output was created before the input was refused");
}

/// A bad record ends the replay there, with exit 1 and a message naming the record, the file
/// and the fault; the frames before it are forwarded. A capture cut off mid-record is told
/// apart from a corrupt one.
#[test]
fn bad_record_ends_the_replay_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let three = |c: &mut Vec<u8>, from: u32| (from..from + 3).for_each(|i| c.extend(record(64, 64, &frame(i, 64))));
    let with_bad = |bad: Vec<u8>| {
        let mut c = header(1500, ETHERNET);
        three(&mut c, 0);
        c.extend(bad);
        three(&mut c, 10);
        c
    };
    let mut truncated = header(1500, ETHERNET);
    three(&mut truncated, 0);
    truncated.extend(&record(64, 64, &frame(3, 64))[..16 + 30]); // header and 30 of 64 bytes
    let mut cut_header = header(1500, ETHERNET);
    three(&mut cut_header, 0);
    cut_header.extend(&record(64, 64, &frame(3, 64))[..10]); // 10 of a 16-byte record header
    let cases = [
        ("incl_len > orig_len", with_bad(record(64, 60, &frame(3, 64))), "corrupt"),
        ("over the snap length", with_bad(record(1600, 1600, &frame(3, 1600))), "corrupt"),
        // A wild length: the rest of the file cannot be framed.
        ("over the snap length", with_bad(record(0x7fff_0000, 64, &frame(3, 64))), "corrupt"),
        ("truncated", truncated, "cut off"),
        ("truncated", cut_header, "cut off"),
    ];
    for (why, capture, kind) in cases {
        std::fs::write(d.join("in.pcap"), &capture).unwrap();
        let _ = std::fs::remove_file(d.join("out.pcap"));
        let o = run(d, &["l2fwd", "--port", "pcap:rx=in.pcap", "--port", "pcap:tx=out.pcap", "--duration", "1"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{why}: {out}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("in.pcap") && err.contains("record 4") && err.contains(why), "{why}: {err}");
        assert!(err.contains(kind), "{why}: {err}");
        assert_eq!(sequence(&d.join("out.pcap")), [0, 1, 2], "{why}: the frames before the bad record");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("record 4"), "{why}: the summary names the bad record: {stdout}");
    }
}

/// A capture taken with a short snap length (`tcpdump -s 96`: orig_len > snaplen, every frame
/// cut) is valid and replays in full, the captured part of each frame.
#[test]
fn snapped_capture_replays_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = header(96, ETHERNET);
    for i in 0..5 {
        c.extend(record(96, 1500, &frame(i, 96)));
    }
    std::fs::write(d.join("in.pcap"), &c).unwrap();
    let o = run(d, &["l2fwd", "--port", "pcap:rx=in.pcap", "--port", "pcap:tx=out.pcap", "--duration", "1", "-T", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sequence(&d.join("out.pcap")), [0, 1, 2, 3, 4]);
}

/// Frames larger than the mbuf data room are skipped and counted, in the text summary too
/// (not only in the JSON `ierrors`); the replay goes on past them and exits 0.
#[test]
fn frames_over_the_data_room_are_in_the_text_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = header(65535, ETHERNET);
    for i in 0..6 {
        let len = if i % 3 == 1 { 4000 } else { 64 };
        c.extend(record(len as u32, len as u32, &frame(i, len)));
    }
    std::fs::write(d.join("in.pcap"), &c).unwrap();
    let o = run(d, &["l2fwd", "--port", "pcap:rx=in.pcap", "--port", "pcap:tx=out.pcap", "--duration", "1", "-T", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sequence(&d.join("out.pcap")), [0, 2, 3, 5]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout.lines().find(|l| l.contains("mbuf data room")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("port 0") && line.contains("2 frames") && line.contains("4000"), "{line}");
}
