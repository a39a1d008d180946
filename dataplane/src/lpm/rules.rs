//! Route files in the format of DPDK 22.11 l3fwd's `--rule_ipv4` / `--rule_ipv6` options
//! (`examples/l3fwd/lpm_route_parse.c`, `em_route_parse.c`, `lpm_default_v4.cfg`, …).
//!
//! What is accepted, one item per line:
//! - LPM (`--lookup=lpm`): `R<prefix>/<len> <port>`, e.g. `R198.18.0.0/24 0` or
//!   `R2001:200::/48 1`. Host bits set in the prefix are accepted and masked, as `rte_lpm`
//!   does. `<len>` is 0–32 (IPv4) or 0–128 (IPv6).
//! - EM (`--lookup=em`): `R<dst_ip> <src_ip> <dst_port> <src_port> <proto> <port>`, e.g.
//!   `R198.18.0.0 198.18.0.1 9 9 0x11 0`. Note the order: DPDK 22.11's parser reads the
//!   destination address and port *before* the source ones, and EM lines use the same
//!   lead character `R` as LPM lines. A lead `E` is accepted too, with the same field order.
//! - Numbers are read like C `strtoul(s, &end, 0)`: decimal, `0x` hexadecimal or
//!   leading-`0` octal. Ports are 0–65535, protocols 0–255. The output port may be up to
//!   [`MAX_NEXT_HOP`] (DPDK stops at 255).
//! - Lines whose first non-blank character is `#` are comments; blank lines are skipped;
//!   a `#` after the fields starts a trailing comment (DPDK ignores trailing tokens; we
//!   reject anything else after the last field rather than guess).
//!
//! Every bad line gives a [`RuleError`] with its 1-based line number and what is wrong.
//! A parse returns all routes, so a table can be built aside and then swapped in.
use super::{Ipv4FiveTuple, Ipv6FiveTuple, MAX_NEXT_HOP};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// An IPv4 LPM route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route4 {
    /// Network prefix (host bits cleared).
    pub prefix: Ipv4Addr,
    /// Prefix length, 0–32.
    pub depth: u8,
    /// Output port (next hop).
    pub next_hop: u32,
}

/// An IPv6 LPM route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route6 {
    /// Network prefix (host bits cleared).
    pub prefix: Ipv6Addr,
    /// Prefix length, 0–128.
    pub depth: u8,
    /// Output port (next hop).
    pub next_hop: u32,
}

/// An IPv4 exact-match route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmRoute4 {
    /// The flow.
    pub key: Ipv4FiveTuple,
    /// Output port.
    pub port: u32,
}

/// An IPv6 exact-match route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmRoute6 {
    /// The flow.
    pub key: Ipv6FiveTuple,
    /// Output port.
    pub port: u32,
}

/// A bad line in a route file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct RuleError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

/// A route file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is bad.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The bad line.
        source: RuleError,
    },
}

/// Parses a number like C `strtoul(s, &end, 0)` and checks it against `max`.
fn parse_num(s: &str, what: &str, max: u64) -> Result<u64, String> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    let v = u64::from_str_radix(digits, radix).map_err(|_| format!("{what} {s:?} is too large"))?;
    if v > max {
        return Err(format!("{what} {v} is out of range (0..={max})"));
    }
    Ok(v)
}

/// Splits `line` into its whitespace-separated fields after the lead character, dropping
/// a trailing comment, and checks there are exactly `n`.
fn fields<'a>(body: &'a str, n: usize, layout: &str) -> Result<Vec<&'a str>, String> {
    let body = body.split('#').next().unwrap_or("");
    let f: Vec<&str> = body.split_whitespace().collect();
    if f.len() != n {
        return Err(format!("expected {n} fields ({layout}), found {}", f.len()));
    }
    Ok(f)
}

fn split_prefix(s: &str) -> Result<(&str, &str), String> {
    s.split_once('/').ok_or_else(|| format!("{s:?} is not <address>/<length>"))
}

/// Runs `parse` on every route line of `text` (lead char checked against `leads`).
fn parse_lines<T>(
    text: &str,
    leads: &[char],
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, RuleError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut chars = line.chars();
        let lead = chars.next().unwrap_or(' ');
        let err = |msg: String| RuleError { line: i + 1, msg };
        if !leads.contains(&lead) {
            return Err(err(format!("should start with the lead character '{}', found {lead:?}", leads[0])));
        }
        out.push(parse(chars.as_str()).map_err(err)?);
    }
    Ok(out)
}

fn port(s: &str) -> Result<u32, String> {
    parse_num(s, "output port", u64::from(MAX_NEXT_HOP)).map(|v| v as u32)
}

/// Parses an IPv4 LPM route file (`R<prefix>/<len> <port>` lines).
///
/// # Errors
/// The first bad line.
pub fn parse_lpm4(text: &str) -> Result<Vec<Route4>, RuleError> {
    parse_lines(text, &['R'], |body| {
        let f = fields(body, 2, "R<prefix>/<len> <port>")?;
        let (a, l) = split_prefix(f[0])?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let depth = parse_num(l, "prefix length", 32)? as u8;
        let prefix = Ipv4Addr::from(u32::from(addr) & super::mask4(depth));
        Ok(Route4 { prefix, depth, next_hop: port(f[1])? })
    })
}

/// Parses an IPv6 LPM route file (`R<prefix>/<len> <port>` lines).
///
/// # Errors
/// The first bad line.
pub fn parse_lpm6(text: &str) -> Result<Vec<Route6>, RuleError> {
    parse_lines(text, &['R'], |body| {
        let f = fields(body, 2, "R<prefix>/<len> <port>")?;
        let (a, l) = split_prefix(f[0])?;
        let addr: Ipv6Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv6 address"))?;
        let depth = parse_num(l, "prefix length", 128)? as u8;
        let prefix = Ipv6Addr::from(u128::from(addr) & super::mask6(depth));
        Ok(Route6 { prefix, depth, next_hop: port(f[1])? })
    })
}

const EM_LAYOUT: &str = "R<dst_ip> <src_ip> <dst_port> <src_port> <proto> <port>";

/// Parses an IPv4 exact-match route file.
///
/// # Errors
/// The first bad line.
pub fn parse_em4(text: &str) -> Result<Vec<EmRoute4>, RuleError> {
    parse_lines(text, &['R', 'E'], |body| {
        let f = fields(body, 6, EM_LAYOUT)?;
        let ip = |s: &str, what: &str| {
            s.parse::<Ipv4Addr>().map(u32::from).map_err(|_| format!("{what} {s:?} is not an IPv4 address"))
        };
        let key = Ipv4FiveTuple {
            dst_ip: ip(f[0], "destination")?,
            src_ip: ip(f[1], "source")?,
            dst_port: parse_num(f[2], "destination port", 0xffff)? as u16,
            src_port: parse_num(f[3], "source port", 0xffff)? as u16,
            proto: parse_num(f[4], "protocol", 0xff)? as u8,
        };
        Ok(EmRoute4 { key, port: port(f[5])? })
    })
}

/// Parses an IPv6 exact-match route file.
///
/// # Errors
/// The first bad line.
pub fn parse_em6(text: &str) -> Result<Vec<EmRoute6>, RuleError> {
    parse_lines(text, &['R', 'E'], |body| {
        let f = fields(body, 6, EM_LAYOUT)?;
        let ip = |s: &str, what: &str| {
            s.parse::<Ipv6Addr>().map(|a| a.octets()).map_err(|_| format!("{what} {s:?} is not an IPv6 address"))
        };
        let key = Ipv6FiveTuple {
            dst_ip: ip(f[0], "destination")?,
            src_ip: ip(f[1], "source")?,
            dst_port: parse_num(f[2], "destination port", 0xffff)? as u16,
            src_port: parse_num(f[3], "source port", 0xffff)? as u16,
            proto: parse_num(f[4], "protocol", 0xff)? as u8,
        };
        Ok(EmRoute6 { key, port: port(f[5])? })
    })
}

fn load<T>(path: &Path, parse: fn(&str) -> Result<Vec<T>, RuleError>) -> Result<Vec<T>, RuleFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Io { path: path.to_owned(), source })?;
    parse(&text).map_err(|source| RuleFileError::Parse { path: path.to_owned(), source })
}

/// Reads and parses an IPv4 LPM route file.
///
/// # Errors
/// The file cannot be read, or a line is bad.
pub fn load_lpm4(path: &Path) -> Result<Vec<Route4>, RuleFileError> {
    load(path, parse_lpm4)
}

/// Reads and parses an IPv6 LPM route file.
///
/// # Errors
/// The file cannot be read, or a line is bad.
pub fn load_lpm6(path: &Path) -> Result<Vec<Route6>, RuleFileError> {
    load(path, parse_lpm6)
}

/// Reads and parses an IPv4 exact-match route file.
///
/// # Errors
/// The file cannot be read, or a line is bad.
pub fn load_em4(path: &Path) -> Result<Vec<EmRoute4>, RuleFileError> {
    load(path, parse_em4)
}

/// Reads and parses an IPv6 exact-match route file.
///
/// # Errors
/// The file cannot be read, or a line is bad.
pub fn load_em6(path: &Path) -> Result<Vec<EmRoute6>, RuleFileError> {
    load(path, parse_em6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpm4_file() {
        let text = "# l3fwd default\n\nR198.18.0.0/24 0\n  R198.18.1.7/24 0x1   # masked\nR0.0.0.0/0 010\n";
        let r = parse_lpm4(text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Route4 { prefix: Ipv4Addr::new(198, 18, 0, 0), depth: 24, next_hop: 0 });
        assert_eq!(r[1], Route4 { prefix: Ipv4Addr::new(198, 18, 1, 0), depth: 24, next_hop: 1 });
        assert_eq!(r[2].next_hop, 8, "leading 0 is octal, as strtoul base 0");
    }

    #[test]
    fn lpm_errors_name_line_and_problem() {
        let cases = [
            ("R1.2.3.4/33 0", "prefix length 33 is out of range"),
            ("R1.2.3/8 0", "is not an IPv4 address"),
            ("R1.2.3.4 0", "is not <address>/<length>"),
            ("R1.2.3.4/8", "expected 2 fields"),
            ("R1.2.3.4/8 1 2", "expected 2 fields"),
            ("X1.2.3.4/8 1", "lead character 'R'"),
            ("R1.2.3.4/8 abc", "output port \"abc\" is not a number"),
            ("R1.2.3.4/8 16777216", "output port 16777216 is out of range"),
        ];
        for (line, want) in cases {
            let e = parse_lpm4(&format!("# c\n\n{line}\n")).unwrap_err();
            assert_eq!(e.line, 3, "{line}");
            assert!(e.msg.contains(want), "{line}: {e}");
        }
        let e = parse_lpm6("R2001:db8::/129 1").unwrap_err();
        assert!(e.to_string().starts_with("line 1: prefix length 129"), "{e}");
    }

    #[test]
    fn lpm6_file() {
        let r = parse_lpm6("R2001:200::/48 0\nR2001:200:0:100::1/56 3\n").unwrap();
        assert_eq!(r[0].prefix, "2001:200::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(r[1].prefix, "2001:200:0:100::".parse::<Ipv6Addr>().unwrap());
        assert_eq!((r[1].depth, r[1].next_hop), (56, 3));
    }

    #[test]
    fn em_files() {
        let r = parse_em4(
            "#dst src dport sport proto port\nR198.18.0.0 198.18.0.1 9 9 0x11 0\nE1.1.1.1 2.2.2.2 80 1024 6 3\n",
        )
        .unwrap();
        assert_eq!(
            r[0].key,
            Ipv4FiveTuple {
                dst_ip: u32::from(Ipv4Addr::new(198, 18, 0, 0)),
                src_ip: u32::from(Ipv4Addr::new(198, 18, 0, 1)),
                dst_port: 9,
                src_port: 9,
                proto: 17
            }
        );
        assert_eq!((r[1].key.dst_port, r[1].key.src_port, r[1].port), (80, 1024, 3));
        let r = parse_em6("R2001:200:: 2001:200::1 9 9 0x11 0\n").unwrap();
        assert_eq!(r[0].key.dst_ip, "2001:200::".parse::<Ipv6Addr>().unwrap().octets());
        let e = parse_em4("R1.1.1.1 2.2.2.2 80 70000 6 3").unwrap_err();
        assert!(e.msg.contains("source port 70000 is out of range"), "{e}");
        let e = parse_em4("\nR1.1.1.1 2.2.2.2 80 7 6").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("expected 6 fields"));
    }

    #[test]
    fn load_reports_path() {
        let e = load_lpm4(Path::new("/nonexistent/rules.cfg")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rules.cfg"));
    }
}
