//! The parts of `vnf-l2fwd` that other code and the integration tests use:
//! - [`discover`]: what a Kubernetes pod was given (Multus network-status, SR-IOV device
//!   plugin variables, cpuset, hugepages) and the `--port` specs to run with;
//! - [`node_features`]: what a node offers a data plane, as a table, JSON, or a Node Feature
//!   Discovery feature file.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod discover;
pub mod node_features;
