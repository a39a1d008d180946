//! Running the VNF binary from CLI tests.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The VNF binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

/// Runs the VNF; one that has not exited after 20 s is killed (a limit not checked can mean
/// a run that never ends).
pub fn run(args: &[&str]) -> Output {
    let mut c = Command::new(bin()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    c.wait_with_output().unwrap()
}
