//! vnf-l2fwd: the VNF binary.
fn main() {}
