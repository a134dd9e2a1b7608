//! regauth: a token server for Docker/OCI registries (docker_auth-compatible,
//! with scope rebuilding for pull-through mirrors).
//!
//! The crate is a library plus a thin binary: `core` is pure and synchronous,
//! `config` turns YAML into checked types, `authn` verifies credentials,
//! `token` signs JWTs, `service` ties them together without HTTP types, and
//! `http`/`server` expose it.

pub mod authn;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod reload;
pub mod run;
pub mod secret;
pub mod server;
pub mod service;
pub mod token;
