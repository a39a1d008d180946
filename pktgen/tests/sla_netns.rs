//! End-to-end SLA suites on namespaces through vnf-l2fwd (root needed; skipped without it,
//! failing under CI=true). Needs `target/debug/vnf-l2fwd`: `cargo build -p vnf-l2fwd` first
//! (ci/test builds the workspace before testing; building from inside a test would wait on
//! cargo's own lock).

use std::path::PathBuf;
use std::process::Command;

fn vnf() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/vnf-l2fwd"));
    if p.is_file() {
        return Some(p);
    }
    let msg = format!("{} missing: run `cargo build -p vnf-l2fwd` first", p.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn run(suite: &str, name: &str) -> (i32, serde_json::Value, String) {
    let vnf = vnf().expect("checked by the caller");
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join(name);
    std::fs::write(&path, suite).unwrap();
    let json = d.path().join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sla-runner"))
        .arg("--suite")
        .arg(&path)
        .arg("--vnf")
        .arg(&vnf)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v = std::fs::read_to_string(&json).map(|s| serde_json::from_str(&s).unwrap()).unwrap_or_default();
    (out.status.code().unwrap_or(-1), v, text)
}

const PASSING: &str = "name: e2e\ntopology: netns\ncases:
  - {name: ping, type: ping, packetsize: 64, count: 5, interval: 0.2, sla: {max_rtt: 10}}
  - {name: tput, type: throughput, rate_pps: 2000, duration: 1, flows: 4, sla: {min_mpps: 0.001}}
  - {name: loss, type: loss, rate_pps: 1000, duration: 1, frame_size: imix, sla: {max_loss_pct: 0}}
";

const IMPOSSIBLE: &str = "name: e2e-impossible\ntopology: netns\ncases:
  - {name: tput, type: throughput, rate_pps: 2000, duration: 0.5, sla: {min_mpps: 1000}}
";

#[test]
fn suite_through_l2fwd_passes_and_an_impossible_sla_fails() {
    if !netns::require_or_skip("suite_through_l2fwd_passes_and_an_impossible_sla_fails") || vnf().is_none() {
        return;
    }
    let (code, v, text) = run(PASSING, "pass.yaml");
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["pass"], true, "{text}");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["details"]["received"], 5, "{text}");
    assert!(cases[1]["measured"].as_f64().unwrap() >= 0.001, "{text}");
    assert_eq!(cases[2]["measured"].as_f64().unwrap(), 0.0, "{text}");
    assert_eq!(cases[2]["details"]["total"]["duplicated"], 0);

    let (code, v, text) = run(IMPOSSIBLE, "fail.yaml");
    assert_eq!(code, 1, "{text}");
    assert_eq!(v["pass"], false);
    assert_eq!(v["cases"][0]["pass"], false);
    assert!(v["cases"][0]["measured"].as_f64().unwrap() < 1000.0);
    assert!(text.contains("FAIL"), "{text}");
}

#[test]
fn a_bad_suite_exits_2_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.yaml");
    std::fs::write(&p, "topology: netns\ncases:\n  - {name: x, type: throughput, sla: {min_mpss: 1}}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sla-runner")).arg("--suite").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("min_mpss"), "{err}");
}
