//! What the pod may use on its node: its CPU set (cgroup cpuset and affinity) and hugepages.

use super::*;

pub(super) fn read_opt(path: &Path) -> Result<Option<String>, DiscoverError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DiscoverError::Io { path: path.to_path_buf(), source: e }),
    }
}

fn affinity(root: &Path) -> Result<Option<(String, Vec<usize>)>, DiscoverError> {
    if root == Path::new("/") {
        if let Some(v) = sys::sched_getaffinity() {
            return Ok(Some(("sched_getaffinity".into(), v)));
        }
    }
    let p = root.join("proc/self/status");
    let Some(text) = read_opt(&p)? else { return Ok(None) };
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) else { return Ok(None) };
    let v = parse_cpu_list(line).map_err(|msg| DiscoverError::Cpus { source_name: p.display().to_string(), msg })?;
    Ok(Some((p.display().to_string(), v)))
}

/// Reads the pod's CPU set.
///
/// # Errors
/// [`DiscoverError::Cpus`] when a set is malformed, or cgroup and affinity do not overlap.
pub fn read_cpus(root: &Path) -> Result<CpuSet, DiscoverError> {
    let mut cgroup = None;
    for rel in [CGROUP_V2_CPUSET, CGROUP_V1_CPUSET] {
        let p = root.join(rel);
        if let Some(text) = read_opt(&p)? {
            let v = parse_cpu_list(&text)
                .map_err(|msg| DiscoverError::Cpus { source_name: p.display().to_string(), msg })?;
            if !v.is_empty() {
                cgroup = Some((format!("/{rel}"), v));
                break;
            }
        }
    }
    let affinity = affinity(root)?;
    let effective: Vec<usize> = match (&cgroup, &affinity) {
        (Some((_, c)), Some((_, a))) => c.iter().copied().filter(|x| a.contains(x)).collect(),
        (Some((_, c)), None) => c.clone(),
        (None, Some((_, a))) => a.clone(),
        (None, None) => vec![],
    };
    if effective.is_empty() {
        if let (Some((cn, c)), Some((an, a))) = (&cgroup, &affinity) {
            return Err(DiscoverError::Cpus {
                source_name: format!("{cn} and {an}"),
                msg: format!("cpuset {} and affinity {} do not overlap", fmt_cpus(c), fmt_cpus(a)),
            });
        }
    }
    let main = effective.first().copied();
    let workers = if effective.len() > 1 { effective[1..].to_vec() } else { effective.clone() };
    Ok(CpuSet { cgroup, affinity, effective, main, workers })
}

/// Parses a `pagesize=` mount option (`2M`, `1024M`, `1G`, `64K`) into KiB.
pub(super) fn pagesize_kb(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1),
        (i, 'M' | 'm') => (&s[..i], 1 << 10),
        (i, 'G' | 'g') => (&s[..i], 1 << 20),
        _ => (s, 0),
    };
    let n: u64 = num.parse().ok()?;
    if mult == 0 {
        return Some(n / 1024);
    }
    n.checked_mul(mult)
}

/// Undoes the octal escapes of `/proc/mounts` (`\040` = space).
pub(super) fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = b[i + 1..i + 4].iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads hugetlbfs mounts, pools, and the downward API values in `podnetinfo_dir`.
///
/// # Errors
/// [`DiscoverError::Field`] when a downward API value is not a number.
pub fn read_hugepages(root: &Path, podnetinfo_dir: Option<&Path>) -> Result<Hugepages, DiscoverError> {
    let mounts = read_opt(&root.join("proc/mounts"))?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 || f[2] != "hugetlbfs" {
                return None;
            }
            let pagesize_kb = f[3].split(',').find_map(|o| o.strip_prefix("pagesize=")).and_then(pagesize_kb);
            Some(HugetlbMount { path: unescape_mount(f[1]), pagesize_kb })
        })
        .collect();
    let mut limits = vec![];
    if let Some(dir) = podnetinfo_dir {
        if let Ok(rd) = fs::read_dir(dir) {
            let mut names: Vec<String> = rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
            names.sort();
            for name in names {
                let Some(rest) = name.strip_prefix("hugepages_") else { continue };
                let Some((size, rest)) = rest.split_once('_') else { continue };
                let Some((kind, container)) = rest.split_once('_') else { continue };
                if !["1G", "2M"].contains(&size) || !["request", "limit"].contains(&kind) || container.is_empty() {
                    continue;
                }
                let p = dir.join(&name);
                let text = read_opt(&p)?.unwrap_or_default();
                let mib = text
                    .trim()
                    .parse()
                    .map_err(|_| field(p.display().to_string(), format!("{:?} is not a number of MiB", text.trim())))?;
                limits.push(HugepageLimit { container: container.into(), size: size.into(), kind: kind.into(), mib });
            }
        }
    }
    Ok(Hugepages { mounts, pools: hugepage_pools(&root.join("sys/kernel/mm/hugepages")), limits })
}

#[allow(unsafe_code)]
mod sys {
    //! `sched_getaffinity(2)`.

    pub(super) fn sched_getaffinity() -> Option<Vec<usize>> {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: the pointer and size describe `set`, which outlives the call.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            return None;
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: CPU_ISSET reads bit i < the set's size in bits.
        Some((0..max).filter(|&i| unsafe { libc::CPU_ISSET(i, &set) }).collect())
    }
}
