//! The command line: `serve`, `check`, `hash`, `keygen`, `explain`,
//! `mint`, `registry-config`. Each subcommand is a function returning an
//! exit code; parsing lives here, the work in the submodules.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::core::Labels;
use crate::token::Alg;

#[derive(Debug, Parser)]
#[command(
    name = "regauth",
    version,
    about = "Token server for Docker/OCI registries"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server.
    Serve {
        #[arg(long, default_value = "/etc/regauth/config.yml")]
        config: PathBuf,
        /// Listen address, overriding server.addr.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration and summarise it; exit 1 with the error.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the bcrypt hash of a password read from stdin.
    Hash {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=16))]
        cost: u32,
    },
    /// Generate a signing key (token.key) and self-signed certificate (token.pem).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "ES256")]
        alg: Alg,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Show what the ACL grants an account for scopes, and which rule decided.
    Explain {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = "")]
        account: String,
        /// A scope such as repository:team/app:pull,push (repeatable).
        #[arg(long, required = true)]
        scope: Vec<String>,
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// A label of the account, `name=value` (repeatable).
        #[arg(long)]
        label: Vec<String>,
    },
    /// Sign a token offline with the configured key (for CI), for what the
    /// ACL grants the account, or exactly the scopes given with --no-acl.
    Mint {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        account: String,
        /// A scope such as repository:team/app:pull (repeatable).
        #[arg(long)]
        scope: Vec<String>,
        /// The registry's service (the token's aud, or a mirror service).
        #[arg(long)]
        service: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// A label of the account, `name=value` (repeatable).
        #[arg(long)]
        label: Vec<String>,
        /// Sign the requested scopes as they are, without evaluating the ACL.
        #[arg(long)]
        no_acl: bool,
        #[arg(long, value_enum, default_value_t = MintFormat::Token)]
        format: MintFormat,
        /// Registry host[:port] for --format docker-config.
        #[arg(long)]
        registry: Option<String>,
    },
    /// Print the auth snippet a registry needs to trust this server.
    RegistryConfig {
        #[arg(long)]
        config: PathBuf,
        /// Public URL of the token endpoint (default: from server.addr).
        #[arg(long)]
        realm: Option<String>,
        /// The registry's service name (its `aud`).
        #[arg(long, default_value = "registry.local")]
        service: String,
        /// Which registry the snippet is for.
        #[arg(long = "for", value_enum, default_value_t = RegistryKind::Distribution)]
        kind: RegistryKind,
        /// Also write the files the snippet names (jwks.json, token.pem) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MintFormat {
    /// The bare token.
    Token,
    /// A Docker config.json with the token as `registrytoken`.
    DockerConfig,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RegistryKind {
    /// distribution 2.x (docker-registry): rootcertbundle + libtrust kid or x5c.
    Distribution,
    /// distribution 3.x: a JWKS file whose kid matches the tokens'.
    DistributionV3,
    /// zot: the signing certificate; kid ignored.
    Zot,
}

mod inspect;
mod keys;
mod registry;

pub use inspect::{check, explain, ExplainArgs};
pub use keys::{hash, keygen, mint, MintArgs};
pub use registry::{registry_config, RegistryArgs};

fn load(path: &Path) -> Result<Config, i32> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        1
    })
}

/// Parses repeated `--label name=value` flags.
fn parse_labels(flags: &[String]) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for l in flags {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("--label {l:?}: expected name=value"))?;
        labels.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    Ok(labels)
}
