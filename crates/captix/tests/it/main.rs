//! Integration tests of the core crate: one binary, one module per concern.

mod budgets;
mod common;
mod flow;
mod interop;
mod laws;
mod leases;
mod policy;
mod vectors;
mod verifier;
