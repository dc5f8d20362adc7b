//! Hosts: thin adapters from a proxy's callbacks to the engine's inputs and steps. They hold
//! the engine's typed waits (`crate::wait`) and carry out steps; they contain no protocol
//! logic, no crypto and no header policy.

pub mod proxy_wasm;
