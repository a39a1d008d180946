//! The downward API annotations file and the Multus network-status annotation in it.

use super::*;

/// Undoes Go's `strconv.Quote` on a double-quoted string.
///
/// # Errors
/// A message saying what is wrong (unterminated, bad escape, invalid UTF-8).
pub fn go_unquote(s: &str) -> Result<String, String> {
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
        .ok_or("value is not a double-quoted string")?;
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |s: &[u8]| -> Result<u32, String> {
        let t = std::str::from_utf8(s).map_err(|_| "bad escape")?;
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("bad hex escape {t:?}"));
        }
        u32::from_str_radix(t, 16).map_err(|e| e.to_string())
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            return Err(format!("unescaped quote at byte {}", i + 1));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).ok_or("trailing backslash")?;
        i += 2;
        let simple = match e {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            continue;
        }
        match e {
            b'x' => {
                let v = hex(b.get(i..i + 2).ok_or("short \\x escape")?)?;
                out.push(v as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let d = b.get(i - 1..i + 2).ok_or("short octal escape")?;
                if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    return Err("bad octal escape".into());
                }
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).map_err(|_| "octal escape > 255")?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = hex(b.get(i..i + n).ok_or("short unicode escape")?)?;
                let ch = char::from_u32(v).ok_or(format!("\\{} escape {v:#x} is not a character", e as char))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
    }
    String::from_utf8(out).map_err(|_| "value is not valid UTF-8".into())
}

/// Parses a downward API map file (`metadata.annotations` or `metadata.labels`): `key="value"`
/// lines with Go-quoted values.
///
/// # Errors
/// [`DiscoverError::Annotations`] naming the line.
pub fn parse_downward_map(path: &Path, text: &str) -> Result<BTreeMap<String, String>, DiscoverError> {
    let mut m = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| DiscoverError::Annotations { path: path.to_path_buf(), line: n + 1, msg };
        let (k, v) = line.split_once('=').ok_or_else(|| bad("expected key=\"value\"".into()))?;
        if k.is_empty() {
            return Err(bad("empty key".into()));
        }
        let v = go_unquote(v).map_err(|e| bad(format!("{k}: {e}")))?;
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

/// One entry of the network-status list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkStatus {
    /// Network name (`namespace/name` for attachments).
    pub name: String,
    /// Pod interface.
    pub interface: Option<String>,
    /// The cluster's default network.
    pub default: bool,
    /// Device information.
    pub device_info: Option<DeviceInfo>,
}

/// A device-info (NPWG device-info spec 1.x).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DeviceInfo {
    /// `"type": "pci"`.
    Pci {
        /// `pci.pci-address`.
        pci_address: PciAddr,
        /// `pci.pf-pci-address`.
        pf_pci_address: Option<PciAddr>,
        /// `pci.vhost-net`.
        vhost_net: Option<String>,
    },
    /// `"type": "vdpa"`.
    Vdpa {
        /// `vdpa.driver` (`vhost` or `virtio`).
        driver: String,
        /// `vdpa.path` (`/dev/vhost-vdpa-N` for vhost).
        path: Option<String>,
        /// `vdpa.pci-address`.
        pci_address: Option<PciAddr>,
    },
    /// `"type": "vhost-user"`.
    VhostUser {
        /// `vhost-user.mode` (`client` or `server`).
        mode: String,
        /// `vhost-user.path`: the socket.
        path: String,
    },
    /// `"type": "memif"`.
    Memif {
        /// `memif.role`.
        role: String,
        /// `memif.path`: the socket.
        path: String,
    },
}

fn opt_str<'a>(obj: &'a Value, key: &str, at: &str) -> Result<Option<&'a str>, DiscoverError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(field(format!("{at}.{key}"), format!("{v} is not a string"))),
    }
}

fn req_str<'a>(obj: &'a Value, key: &str, at: &str) -> Result<&'a str, DiscoverError> {
    opt_str(obj, key, at)?.ok_or_else(|| field(format!("{at}.{key}"), "missing"))
}

fn opt_pci(obj: &Value, key: &str, at: &str) -> Result<Option<PciAddr>, DiscoverError> {
    match opt_str(obj, key, at)? {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| field(format!("{at}.{key}"), format!("{s:?} is not a PCI address"))),
    }
}

fn sub<'a>(obj: &'a Value, key: &str, at: &str) -> Result<&'a Value, DiscoverError> {
    match obj.get(key) {
        Some(v @ Value::Object(_)) => Ok(v),
        None | Some(Value::Null) => Err(field(format!("{at}.{key}"), "missing")),
        Some(v) => Err(field(format!("{at}.{key}"), format!("{v} is not an object"))),
    }
}

fn parse_device_info(v: &Value, at: &str) -> Result<DeviceInfo, DiscoverError> {
    if !v.is_object() {
        return Err(field(at, format!("{v} is not an object")));
    }
    let ty = req_str(v, "type", at)?;
    if let Some(ver) = opt_str(v, "version", at)? {
        if !ver.starts_with("1.") {
            return Err(field(format!("{at}.version"), format!("{ver:?} is not a 1.x device-info version")));
        }
    }
    Ok(match ty {
        "pci" => {
            let p = sub(v, "pci", at)?;
            let at = format!("{at}.pci");
            DeviceInfo::Pci {
                pci_address: opt_pci(p, "pci-address", &at)?
                    .ok_or_else(|| field(format!("{at}.pci-address"), "missing"))?,
                pf_pci_address: opt_pci(p, "pf-pci-address", &at)?,
                vhost_net: opt_str(p, "vhost-net", &at)?.map(str::to_string),
            }
        }
        "vdpa" => {
            let p = sub(v, "vdpa", at)?;
            let at = format!("{at}.vdpa");
            DeviceInfo::Vdpa {
                driver: req_str(p, "driver", &at)?.to_string(),
                path: opt_str(p, "path", &at)?.map(str::to_string),
                pci_address: opt_pci(p, "pci-address", &at)?,
            }
        }
        "vhost-user" => {
            let p = sub(v, "vhost-user", at)?;
            let at = format!("{at}.vhost-user");
            let mode = req_str(p, "mode", &at)?;
            if mode != "client" && mode != "server" {
                return Err(field(format!("{at}.mode"), format!("{mode:?} is neither \"client\" nor \"server\"")));
            }
            DeviceInfo::VhostUser { mode: mode.into(), path: req_str(p, "path", &at)?.into() }
        }
        "memif" => {
            let p = sub(v, "memif", at)?;
            let at = format!("{at}.memif");
            DeviceInfo::Memif { role: req_str(p, "role", &at)?.into(), path: req_str(p, "path", &at)?.into() }
        }
        other => {
            return Err(field(format!("{at}.type"), format!("{other:?} is not one of pci, vdpa, vhost-user, memif")))
        }
    })
}

/// Parses the network-status annotation value.
///
/// # Errors
/// [`DiscoverError::Field`] naming the field (`network-status[1].device-info.pci.pci-address`).
pub fn parse_network_status(json: &str) -> Result<Vec<NetworkStatus>, DiscoverError> {
    let v: Value = serde_json::from_str(json).map_err(|e| field("network-status", format!("not JSON: {e}")))?;
    let list = v.as_array().ok_or_else(|| field("network-status", "is not a JSON list"))?;
    let mut out = vec![];
    for (i, e) in list.iter().enumerate() {
        let at = format!("network-status[{i}]");
        if !e.is_object() {
            return Err(field(at, "is not an object"));
        }
        let name = req_str(e, "name", &at)?.to_string();
        let interface = opt_str(e, "interface", &at)?.map(str::to_string);
        if let Some(ifc) = &interface {
            if ifc.is_empty() || ifc.len() > 15 || ifc.contains(['/', ' ', ':', ',', '=']) {
                return Err(field(format!("{at}.interface"), format!("{ifc:?} is not a Linux interface name")));
            }
        }
        let default = match e.get("default") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(field(format!("{at}.default"), format!("{v} is not a boolean"))),
        };
        let device_info = match e.get("device-info") {
            None | Some(Value::Null) => None,
            Some(d) => Some(parse_device_info(d, &format!("{at}.device-info"))?),
        };
        out.push(NetworkStatus { name, interface, default, device_info });
    }
    Ok(out)
}
