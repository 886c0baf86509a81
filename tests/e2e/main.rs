//! End-to-end tests: real `mxtokend` and `mxtoken` binaries against a real
//! Synapse on loopback. One binary so the homeserver is started once.

mod common;
mod test_ansible;
mod test_autostart;
mod test_broker;
mod test_devices;
mod test_env_get;
mod test_exec;
mod test_faults;
mod test_generated;
mod test_leaks;
mod test_mint;
mod test_recovery;
mod test_security;
mod test_sources;
mod test_systemd;
