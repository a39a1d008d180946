//! Every suite this repository ships parses: pktgen/suites/*.yaml and the ones in the SLA
//! Job's ConfigMap (deploy/k8s/base/sla-configmap.yaml), which `sla-runner` reads in the pod.

use pktgen::sla::{Kind, Suite, Topology};
use std::path::Path;

#[test]
fn shipped_suites_parse() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/suites"));
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            Suite::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "{n} suites");
}

#[test]
fn the_sla_configmap_suites_parse() {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/k8s/base/sla-configmap.yaml");
    let cm: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let data = cm["data"].as_mapping().unwrap();
    let get = |k: &str| Suite::parse(data[k].as_str().unwrap()).unwrap_or_else(|e| panic!("{k}: {e}"));
    let tc080 = get("tc080.yaml");
    assert_eq!(tc080.topology, Topology::Pods);
    assert_eq!(tc080.cases.len(), 1);
    let c = &tc080.cases[0];
    assert_eq!((c.kind, c.packetsize, c.duration, c.interval), (Kind::Ping, Some(200), Some(60.0), Some(1.0)));
    assert_eq!(c.sla.max_rtt, Some(10.0));
    // The VNF's headless Service (deploy/k8s/base/service.yaml) in namespace vnf.
    assert_eq!(c.target.as_deref(), Some("vnf-l2fwd.vnf.svc.cluster.local"));
    let tput = get("throughput.yaml");
    assert!(tput.cases.iter().all(|c| c.kind != Kind::Ping));
    assert_eq!(data.len(), 2);
}
