//! Which lcore polls which (port, queue): DPDK l3fwd's `--config "(port,queue,lcore),..."` and
//! l2fwd's `-q N` (ports per lcore), or one lcore for everything by default.
//!
//! Every lcore gets a tx queue on every enabled port, the tx queue index being the lcore's
//! index in the plan (so ports need as many tx queues as there are lcores).

use crate::ports::PortSpec;
use vnf_l2fwd::node_features::fmt_cpus;

/// Port ids for a message: `0,1,3`.
fn list(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// One lcore of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcorePlan {
    /// The lcore id (the CPU it is pinned to), or none for the unpinned default.
    pub cpu: Option<usize>,
    /// The (port, rx queue) pairs it polls.
    pub rx: Vec<(u16, u16)>,
}

/// The lcores and their queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In lcore id order; lcore `k` sends on tx queue `k` of every port.
    pub lcores: Vec<LcorePlan>,
    /// True when the plan is the single-lcore default: a port without rx queues (a tx-only
    /// pcap) is then skipped rather than an error.
    pub implicit: bool,
}

impl Plan {
    /// Receive queues port `port` needs (highest queue named + 1; 0 if none).
    pub fn rx_queues(&self, port: u16) -> u16 {
        self.lcores.iter().flat_map(|l| &l.rx).filter(|(p, _)| *p == port).map(|(_, q)| q + 1).max().unwrap_or(0)
    }

    /// Queues each port must be opened with: enough for its rx queues and one tx queue per lcore.
    pub fn queues_needed(&self, port: u16) -> u16 {
        self.rx_queues(port).max(self.lcores.len() as u16).max(1)
    }

    /// The rx queues of `port` that some lcore polls, in order.
    pub fn polled(&self, port: u16) -> Vec<u16> {
        let mut v: Vec<u16> = self.lcores.iter().flat_map(|l| &l.rx).filter(|(p, _)| *p == port).map(|r| r.1).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Fits port `port`'s spec to the plan. A spec without `queues=` (0) gets what the plan
    /// needs ([`queues_needed`](Self::queues_needed)). A spec with `queues=N` keeps exactly
    /// N, and the plan must fit them: every rx queue it polls below N and, when the port is
    /// `enabled`, a tx queue for each lcore. pcap and ring ports have one queue each way (a
    /// pcap port none for a missing `rx=`/`tx=`); the implicit single-lcore plan skips a
    /// port without rx queue. DPDK ports get their queues from the plan when opened.
    ///
    /// # Errors
    /// A message naming the port, its queues and what the plan asks of it.
    pub fn fit_spec(&self, port: u16, spec: &mut PortSpec, enabled: bool) -> Result<(), String> {
        let lcores = self.lcores.len() as u16;
        let polled = self.polled(port);
        let (rxq, txq, what, keyed) = match spec {
            PortSpec::Null { queues, .. }
            | PortSpec::AfXdp { queues, .. }
            | PortSpec::AfPacket { queues, .. }
            | PortSpec::Pci { queues, .. } => {
                if *queues == 0 {
                    *queues = self.queues_needed(port);
                    return Ok(());
                }
                (*queues, *queues, format!("queues={queues}"), true)
            }
            PortSpec::Pcap { rx, tx } => {
                (u16::from(rx.is_some()), u16::from(tx.is_some()), "a pcap port".to_string(), false)
            }
            PortSpec::Ring => (1, 1, "a ring port".into(), false),
            PortSpec::Dpdk { .. } => return Ok(()),
        };
        if let Some(&q) = polled.iter().find(|&&q| q >= rxq) {
            if !(self.implicit && rxq == 0) {
                let fix = if keyed {
                    format!("give queues={} or leave queues= out: the port then gets what the plan needs", q + 1)
                } else {
                    "it has no other".to_string()
                };
                return Err(format!(
                    "port {port}: {what} has {rxq} rx queue(s), but the lcore plan polls its rx queue {q} ({fix})"
                ));
            }
        }
        if enabled && txq > 0 && lcores > txq {
            return Err(format!(
                "port {port}: {what} has {}, but {lcores} lcores each send on a tx queue of their own on every \
                 enabled port (give queues={lcores}, leave queues= out, run fewer lcores, or mask the port out with \
                 -p)",
                if txq == 1 { "one tx queue".to_string() } else { format!("{txq} tx queues") }
            ));
        }
        Ok(())
    }
}

/// Receive queues over which the kernel or the device spreads a port's incoming traffic
/// (fanout, RSS, the veth or NIC queues an AF_XDP socket binds): a frame landing on a queue
/// nobody polls is lost. None for ports whose queues each make their own traffic (null).
pub fn spread_rx_queues(spec: &PortSpec) -> Option<u16> {
    match spec {
        PortSpec::AfXdp { queues, .. } | PortSpec::AfPacket { queues, .. } | PortSpec::Pci { queues, .. } => {
            Some(*queues)
        }
        _ => None,
    }
}

impl Plan {
    /// Makes every receive queue `0..queues` of `port` polled. A plan from `-q` or the
    /// single-lcore default names queue 0 only: the lcore that polls queue 0 takes the others
    /// too. A `--config` plan is the operator's own map, so a missing queue is an error.
    ///
    /// # Errors
    /// A message naming the port and the queues `--config` leaves unpolled.
    pub fn cover_rx_queues(&mut self, port: u16, queues: u16, from_config: bool) -> Result<(), String> {
        let missing: Vec<u16> =
            (0..queues).filter(|&q| !self.lcores.iter().any(|l| l.rx.contains(&(port, q)))).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if from_config {
            return Err(format!(
                "port {port} has {queues} receive queues but --config polls none of queues {missing:?}: \
                 the frames spread to them would be lost; add them to --config or lower the port's queues="
            ));
        }
        // A port the plan does not poll at all (disabled, or a tx-only port) stays so.
        if let Some(l) = self.lcores.iter_mut().find(|l| l.rx.iter().any(|&(p, _)| p == port)) {
            l.rx.extend(missing.into_iter().map(|q| (port, q)));
        }
        Ok(())
    }
}

/// Parses `--config "(port,queue,lcore),(port,queue,lcore)..."` (commas between tuples and
/// spaces optional) into a plan, checking: ports exist and are enabled, no (port, queue) is
/// polled twice, and every lcore is in `allowed` (this process's CPU set).
///
/// # Errors
/// A message naming the problem.
pub fn parse_config(s: &str, enabled: &[u16], allowed: &[usize]) -> Result<Plan, String> {
    let bad = |m: String| format!("--config {s:?}: {m}; expected e.g. \"(0,0,0),(1,0,1)\"");
    let mut tuples: Vec<(u16, u16, usize)> = vec![];
    let mut rest = s.trim();
    while !rest.is_empty() {
        let r = rest.strip_prefix('(').ok_or_else(|| bad("missing '('".into()))?;
        let (inner, tail) = r.split_once(')').ok_or_else(|| bad("missing ')'".into()))?;
        let f: Vec<&str> = inner.split(',').map(str::trim).collect();
        if f.len() != 3 {
            return Err(bad(format!("({inner}) must be (port,queue,lcore)")));
        }
        let num = |v: &str, what: &str| -> Result<u64, String> {
            v.parse::<u64>().map_err(|_| bad(format!("{what} {v:?} in ({inner}) is not a number")))
        };
        let port = num(f[0], "port")?;
        let queue = num(f[1], "queue")?;
        let lcore = num(f[2], "lcore")?;
        if queue >= 64 {
            return Err(bad(format!("queue {queue} in ({inner}) must be below 64")));
        }
        let port = u16::try_from(port).ok().filter(|p| enabled.contains(p)).ok_or_else(|| {
            bad(format!("port {port} in ({inner}) is not given or not in the port mask (enabled: {})", list(enabled)))
        })?;
        let lcore = lcore as usize;
        if !allowed.is_empty() && !allowed.contains(&lcore) {
            return Err(bad(format!("lcore {lcore} is not in this process's CPU set {}", fmt_cpus(allowed))));
        }
        if tuples.iter().any(|&(p, q, _)| (p, q) == (port, queue as u16)) {
            return Err(bad(format!("port {port} queue {queue} is given twice")));
        }
        tuples.push((port, queue as u16, lcore));
        rest = tail.trim_start_matches(',').trim();
    }
    if tuples.is_empty() {
        return Err(bad("no (port,queue,lcore)".into()));
    }
    let mut ids: Vec<usize> = tuples.iter().map(|t| t.2).collect();
    ids.sort_unstable();
    ids.dedup();
    let lcores = ids
        .into_iter()
        .map(|id| LcorePlan { cpu: Some(id), rx: tuples.iter().filter(|t| t.2 == id).map(|t| (t.0, t.1)).collect() })
        .collect();
    Ok(Plan { lcores, implicit: false })
}

/// DPDK l2fwd's `-q N`: the enabled ports' queue 0, `n` ports per lcore, on the allowed CPUs
/// in order.
///
/// # Errors
/// When `n` is 0 or more lcores are needed than there are CPUs.
pub fn ports_per_lcore(n: usize, enabled: &[u16], allowed: &[usize]) -> Result<Plan, String> {
    if n == 0 || n > 16 {
        return Err(format!("-q {n}: must be 1 to 16 ports per lcore"));
    }
    let chunks: Vec<&[u16]> = enabled.chunks(n).collect();
    if chunks.len() > allowed.len() {
        return Err(format!(
            "-q {n}: {} ports need {} lcores but this process may use only CPUs {}",
            enabled.len(),
            chunks.len(),
            fmt_cpus(allowed)
        ));
    }
    let lcores = chunks
        .iter()
        .zip(allowed)
        .map(|(ports, &cpu)| LcorePlan { cpu: Some(cpu), rx: ports.iter().map(|&p| (p, 0)).collect() })
        .collect();
    Ok(Plan { lcores, implicit: false })
}

/// The default: one lcore (pinned to `cpu` when given) polling queue 0 of every enabled port.
pub fn single(cpu: Option<usize>, enabled: &[u16]) -> Plan {
    Plan { lcores: vec![LcorePlan { cpu, rx: enabled.iter().map(|&p| (p, 0)).collect() }], implicit: true }
}

/// The plan from the options: `--config`, `-q`, or the single-lcore default.
///
/// # Errors
/// A message for exit code 2.
pub fn plan(
    config: Option<&str>,
    q: Option<usize>,
    cpu: Option<usize>,
    enabled: &[u16],
    allowed: &[usize],
) -> Result<Plan, String> {
    match (config, q) {
        (Some(_), Some(_)) => Err("give --config or -q, not both".into()),
        (Some(c), None) => parse_config(c, enabled, allowed),
        (None, Some(n)) => ports_per_lcore(n, enabled, allowed),
        (None, None) => {
            if let Some(c) = cpu {
                if !allowed.is_empty() && !allowed.contains(&c) {
                    return Err(format!("--cpu {c} is not in this process's CPU set {}", fmt_cpus(allowed)));
                }
            }
            Ok(single(cpu, enabled))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_queues_are_all_polled() {
        // -q 1 over two AF_PACKET ports of 4 queues: each lcore polls all of its port's queues.
        let mut p = ports_per_lcore(1, &[0, 1], &[2, 3]).unwrap();
        p.cover_rx_queues(0, 4, false).unwrap();
        p.cover_rx_queues(1, 4, false).unwrap();
        assert_eq!(p.lcores[0], LcorePlan { cpu: Some(2), rx: vec![(0, 0), (0, 1), (0, 2), (0, 3)] });
        assert_eq!(p.lcores[1], LcorePlan { cpu: Some(3), rx: vec![(1, 0), (1, 1), (1, 2), (1, 3)] });
        // A port the plan does not poll is left alone.
        let mut p = single(None, &[0]);
        p.cover_rx_queues(1, 2, false).unwrap();
        assert_eq!(p.rx_queues(1), 0);
        // --config must name them all.
        let mut p = parse_config("(0,0,0),(0,1,1)", &[0], &[]).unwrap();
        p.cover_rx_queues(0, 2, true).unwrap();
        let e = p.cover_rx_queues(0, 4, true).unwrap_err();
        assert!(e.contains("queues [2, 3]"), "{e}");
        let spec = PortSpec::AfPacket { iface: "x".into(), queues: 2, qdisc_bypass: false };
        assert_eq!(spread_rx_queues(&spec), Some(2));
        assert_eq!(spread_rx_queues(&PortSpec::Null { size: 64, queues: 2 }), None);
    }

    #[test]
    fn config_parses_and_groups_by_lcore() {
        let p = parse_config("(0,0,0)(0,1,1), (1,0,0),(1,1,1)", &[0, 1], &[0, 1]).unwrap();
        assert_eq!(p.lcores.len(), 2);
        assert_eq!(p.lcores[0], LcorePlan { cpu: Some(0), rx: vec![(0, 0), (1, 0)] });
        assert_eq!(p.lcores[1], LcorePlan { cpu: Some(1), rx: vec![(0, 1), (1, 1)] });
        assert_eq!((p.rx_queues(0), p.rx_queues(1), p.rx_queues(2)), (2, 2, 0));
        assert_eq!(p.queues_needed(0), 2);
        let mut spec = PortSpec::Null { size: 64, queues: 0 };
        p.fit_spec(0, &mut spec, true).unwrap();
        assert_eq!(spec, PortSpec::Null { size: 64, queues: 2 }, "queues= not given: what the plan needs");
        // One lcore polling queue 3 only: 4 rx queues, 1 tx queue, opened with 4.
        let p = parse_config("(0,3,1)", &[0], &[]).unwrap();
        assert_eq!(p.queues_needed(0), 4);
    }

    #[test]
    fn explicit_queues_must_fit_the_plan() {
        let p = parse_config("(0,0,0),(0,3,1)", &[0, 1], &[0, 1]).unwrap();
        let mut spec = PortSpec::Null { size: 64, queues: 2 };
        let e = p.fit_spec(0, &mut spec, true).unwrap_err();
        assert!(e.contains("queues=2 has 2 rx queue(s)") && e.contains("rx queue 3"), "{e}");
        let mut spec = PortSpec::Null { size: 64, queues: 4 };
        p.fit_spec(0, &mut spec, true).unwrap();
        assert_eq!(spec, PortSpec::Null { size: 64, queues: 4 }, "kept as given");
        // Two lcores need two tx queues on port 1, which queues=1 does not have.
        let mut spec = PortSpec::AfPacket { iface: "x".into(), queues: 1, qdisc_bypass: false };
        let e = p.fit_spec(1, &mut spec, true).unwrap_err();
        assert!(e.contains("2 lcores"), "{e}");
        assert!(p.fit_spec(1, &mut spec, false).is_ok(), "a masked-out port sends nothing");
        // pcap and ring ports have one queue each way.
        let mut pcap = PortSpec::Pcap { rx: None, tx: Some("o".into()) };
        assert!(p.fit_spec(1, &mut pcap, true).unwrap_err().contains("one tx queue"));
        let one = single(None, &[0, 1]);
        assert!(one.fit_spec(1, &mut pcap, true).is_ok(), "the implicit plan skips a port without rx");
        let q = ports_per_lcore(2, &[0, 1], &[0]).unwrap();
        assert!(q.fit_spec(1, &mut pcap, true).unwrap_err().contains("0 rx queue(s)"));
        assert_eq!(p.polled(0), vec![0, 3]);
    }

    #[test]
    fn config_errors() {
        for bad in [
            "",
            "(0,0)",
            "(0,0,0",
            "0,0,0)",
            "(a,0,0)",
            "(0,0,0,0)",
            "(0,0,0)(0,0,1)", // duplicate (port, queue)
            "(2,0,0)",        // no port 2
            "(0,0,7)",        // lcore not allowed
            "(0,64,0)",
        ] {
            assert!(parse_config(bad, &[0, 1], &[0, 1]).is_err(), "{bad}");
        }
        // Port 1 masked out.
        assert!(parse_config("(1,0,0)", &[0], &[0, 1]).is_err());
    }

    #[test]
    fn ports_per_lcore_and_default() {
        let p = ports_per_lcore(1, &[0, 1], &[0, 1]).unwrap();
        assert_eq!(p.lcores[1], LcorePlan { cpu: Some(1), rx: vec![(1, 0)] });
        let p = ports_per_lcore(2, &[0, 1, 2], &[4, 5]).unwrap();
        assert_eq!(p.lcores.len(), 2);
        assert_eq!(p.lcores[0].rx, vec![(0, 0), (1, 0)]);
        assert!(ports_per_lcore(1, &[0, 1, 2], &[0, 1]).is_err());
        assert!(ports_per_lcore(0, &[0], &[0]).is_err());
        assert!(plan(Some("(0,0,0)"), Some(1), None, &[0], &[0]).is_err());
        assert!(plan(None, None, Some(9), &[0], &[0, 1]).is_err());
        let d = plan(None, None, None, &[0, 1], &[0, 1]).unwrap();
        assert!(d.implicit);
        assert_eq!(d.lcores, vec![LcorePlan { cpu: None, rx: vec![(0, 0), (1, 0)] }]);
    }
}
