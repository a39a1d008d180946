//! Prints the `dpdk-devbind.py --status`-style listing of this machine (or of the root
//! given as the first argument), then the same as JSON with `--json`.
//!
//! `cargo run -p vfio --example devbind_status [ROOT] [--json]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let root = args.iter().find(|a| !a.starts_with("--")).map_or_else(vfio::SysRoot::host, vfio::SysRoot::new);
    match vfio::status::Status::read(&root) {
        Ok(st) if json => println!("{}", st.to_json()),
        Ok(st) => print!("{}", st.to_text()),
        Err(e) => {
            eprintln!("devbind_status: {e}");
            std::process::exit(1);
        }
    }
}
