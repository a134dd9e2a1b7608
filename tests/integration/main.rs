//! The integration-test binary: the server on 127.0.0.1:0 driven over HTTP,
//! configuration loading, key fixtures and golden files.

mod attack;
mod bad_input;
mod config_load;
mod dropin;
mod endpoint;
mod federation;
mod fuzz_corpus;
mod keys;
mod ldap;
mod mirror;
mod newcomer;
mod ops;
mod process;
mod refresh;
mod robots;
mod rotation;
mod slapd;
mod soak;
mod support;
mod throttle;
mod tls_options;
