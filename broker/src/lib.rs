//! `mxtokend`, the mxtoken broker: holds a Matrix admin password sealed and
//! hands out short-lived access tokens (leases) over a private Unix socket,
//! revoking each one when its lease ends.
//!
//! See ARCHITECTURE.md for the map of this crate.

pub mod activation;
pub mod audit;
pub mod broker;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod dirs;
pub mod homeserver;
pub mod ids;
pub mod journal;
pub mod mint;
pub mod password;
pub mod platform;
pub mod recovery;
pub mod revoke;
pub mod server;
pub mod socket;
