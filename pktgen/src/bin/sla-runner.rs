//! `sla-runner --suite FILE.yaml [--json OUT] [--vnf PATH]`: runs an SLA suite (see
//! `pktgen::sla`). Exit 0 when every SLA is met, 1 when one is missed (or a case could not
//! run), 2 for a bad suite file.

use clap::Parser;
use pktgen::sla::{run_suite, Suite};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs a YAML SLA suite and reports per case.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The suite file.
    #[arg(long)]
    suite: PathBuf,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The vnf-l2fwd binary (default: $VNF_L2FWD, then PATH).
    #[arg(long)]
    vnf: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let suite = match Suite::load(&a.suite) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sla-runner: bad suite: {e}");
            return ExitCode::from(2);
        }
    };
    let res = match run_suite(&suite, a.vnf.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sla-runner: {e}");
            return ExitCode::from(1);
        }
    };
    print!("{}", res.table());
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&res).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text + "\n") {
            eprintln!("sla-runner: {}: {e}", p.display());
            return ExitCode::from(1);
        }
    }
    if res.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
