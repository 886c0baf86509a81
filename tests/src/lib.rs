//! The end-to-end test harness: a real Synapse on loopback, the real
//! `mxtokend` and `mxtoken` binaries, and helpers to ask the homeserver
//! whether a token is still alive.
//!
//! Nothing here mocks the homeserver. Everything a test starts binds to
//! 127.0.0.1 and dies with the test process.

pub mod age_cli;
pub mod ansible;
pub mod bins;
pub mod broker;
pub mod devices;
pub mod matrix;
pub mod poll;
pub mod proxy;
pub mod raw;
pub mod secret_service;

pub mod synapse;
pub mod tty;

pub use broker::{BrokerEnv, ProfileSpec};
pub use matrix::Matrix;
pub use proxy::{Fault, FaultProxy};
pub use synapse::{RateLimits, Synapse};
