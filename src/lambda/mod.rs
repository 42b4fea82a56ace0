//! Lambda, emulated locally: the Runtime API that runs the real bootstrap ([`runtime_api`]), the
//! Kinesis event source mapping ([`esm`]) and its on-failure records ([`on_failure`]).

pub mod esm;
pub mod on_failure;
pub mod runtime_api;
