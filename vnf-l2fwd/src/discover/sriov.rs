//! SR-IOV network device plugin variables (`PCIDEVICE_<RESOURCE>` and `..._INFO`).

use super::*;

/// One SR-IOV device plugin resource from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PciDeviceVar {
    /// The variable, e.g. `PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE`.
    pub var: String,
    /// Its devices, in order.
    pub devices: Vec<PciAddr>,
    /// Per-device details from `<var>_INFO`, as JSON text.
    pub info: BTreeMap<String, String>,
}

/// The variable the SR-IOV network device plugin sets for an extended resource:
/// `intel.com/sriov_netdevice` → `PCIDEVICE_INTEL_COM_SRIOV_NETDEVICE`.
pub fn pcidevice_var(resource: &str) -> String {
    let (prefix, name) = resource.split_once('/').unwrap_or(("", resource));
    let mut v = String::from(PCIDEVICE_PREFIX);
    if !prefix.is_empty() {
        v.push_str(&prefix.replace('.', "_"));
        v.push('_');
    }
    v.push_str(name);
    v.to_uppercase()
}

/// Reads the `PCIDEVICE_*` variables, sorted by name.
///
/// # Errors
/// [`DiscoverError::Env`] naming the variable.
pub fn parse_pcidevice_env(env: &[(String, String)]) -> Result<Vec<PciDeviceVar>, DiscoverError> {
    let mut plain: BTreeMap<&str, &str> = BTreeMap::new();
    let mut infos: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(PCIDEVICE_PREFIX) else { continue };
        let bad = |msg: String| DiscoverError::Env { var: k.clone(), msg };
        // The plugin upper-cases the name and replaces the prefix's dots; a resource name may
        // keep a '-'.
        if rest.is_empty()
            || !rest.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
        {
            return Err(bad("name is not PCIDEVICE_ followed by A-Z, 0-9, _ and -".into()));
        }
        match k.strip_suffix("_INFO") {
            // A resource named "..._info" has a plain variable ending in _INFO whose value is a
            // list of addresses, not JSON: tell them apart by the value.
            Some(base) if v.trim_start().starts_with('{') => {
                infos.insert(base, v);
            }
            _ => {
                plain.insert(k, v);
            }
        }
    }
    let mut out = vec![];
    for (var, val) in &plain {
        let bad = |msg: String| DiscoverError::Env { var: var.to_string(), msg };
        let mut devices = vec![];
        for (i, a) in val.split(',').enumerate() {
            let a = a.trim();
            if a.is_empty() {
                return Err(bad(format!("entry {i} is empty in {val:?}")));
            }
            let addr: PciAddr = a.parse().map_err(|_| bad(format!("entry {i} {a:?} is not a PCI address")))?;
            if devices.contains(&addr) {
                return Err(bad(format!("{a} is listed twice")));
            }
            devices.push(addr);
        }
        let mut info = BTreeMap::new();
        if let Some(js) = infos.remove(var) {
            let ivar = format!("{var}_INFO");
            let bad = |msg: String| DiscoverError::Env { var: ivar.clone(), msg };
            let v: Value = serde_json::from_str(js).map_err(|e| bad(format!("not JSON: {e}")))?;
            let obj = v.as_object().ok_or_else(|| bad("is not a JSON object keyed by PCI address".into()))?;
            for (k, det) in obj {
                let addr: PciAddr = k.parse().map_err(|_| bad(format!("key {k:?} is not a PCI address")))?;
                if !devices.contains(&addr) {
                    return Err(bad(format!("{k} is not among {var}={val}")));
                }
                if !det.is_object() {
                    return Err(bad(format!("[{k:?}] is not an object")));
                }
                info.insert(addr.to_string(), det.to_string());
            }
        }
        out.push(PciDeviceVar { var: var.to_string(), devices, info });
    }
    if let Some((base, _)) = infos.into_iter().next() {
        return Err(DiscoverError::Env { var: format!("{base}_INFO"), msg: format!("there is no {base}") });
    }
    Ok(out)
}
