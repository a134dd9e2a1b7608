//! The integration-test binary: the server on 127.0.0.1:0 driven over HTTP,
//! configuration loading, key fixtures and golden files.

mod config_load;
mod endpoint;
mod keys;
mod ops;
mod refresh;
mod support;
