//! The command line: `serve`, `check`, `hash`, `keygen`, `explain`,
//! `mint`, `registry-config`, `robot`. Each subcommand's arguments are a clap
//! `Args` struct here; its work is a function in a submodule taking that
//! struct and returning `Result<(), CliError>` ([`Command::run`]).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::core::Labels;
use crate::logging::LogFormat;
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the token server.
    Serve(ServeArgs),
    /// Validate a configuration and summarise it; exit 1 with the error.
    Check(CheckArgs),
    /// Print the bcrypt hash of a password read from stdin.
    Hash(HashArgs),
    /// Generate a signing key (token.key) and self-signed certificate (token.pem).
    Keygen(KeygenArgs),
    /// Show what the ACL grants an account for scopes, and which rule decided.
    Explain(ExplainArgs),
    /// Sign a token offline with the configured key (for CI), for what the
    /// ACL grants the account, or exactly the scopes given with --no-acl.
    Mint(MintArgs),
    /// Manage robot accounts (scoped, expiring machine credentials) in a
    /// robots file.
    Robot(robot::RobotArgs),
    /// Print the auth snippet a registry needs to trust this server.
    RegistryConfig(RegistryArgs),
}

impl Command {
    /// Runs the subcommand. An error is one line for `error: LINE` on
    /// stderr (or the log, for `serve`) and exit status 1.
    pub fn run(&self) -> Result<(), CliError> {
        match self {
            Command::Serve(a) => crate::run::serve(a),
            Command::Check(a) => inspect::check(a),
            Command::Hash(a) => keys::hash(a),
            Command::Keygen(a) => keys::keygen(a),
            Command::Explain(a) => inspect::explain(a),
            Command::Mint(a) => keys::mint(a),
            Command::RegistryConfig(a) => registry::registry_config(a),
            Command::Robot(a) => robot::run(a).map_err(|e| CliError(e.to_string())),
        }
    }
}

/// Why a subcommand failed, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        CliError(message.to_owned())
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> CliError {
        CliError(e.to_string())
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (docker_auth's YAML format).
    #[arg(long, default_value = "/etc/regauth/config.yml")]
    pub config: PathBuf,
    /// Listen address, overriding server.addr.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file to validate.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    /// bcrypt cost, 4 to 16: each step doubles the time a verification takes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=16))]
    pub cost: u32,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory to write token.key and token.pem to (ca.key and ca.pem
    /// with --ca), created if missing.
    #[arg(long)]
    pub out: PathBuf,
    /// Signing algorithm of the new key (any letter case).
    #[arg(long, value_enum, ignore_case = true, default_value_t = KeygenAlg::Es256)]
    pub alg: KeygenAlg,
    /// Make a CA (ca.key, ca.pem) whose certificate goes into the
    /// registry's rootcertbundle, to sign leaves with --signed-by.
    #[arg(long, conflicts_with = "signed_by")]
    pub ca: bool,
    /// The directory of a CA made with --ca (ca.key, ca.pem): the new
    /// key's certificate is signed by it, and token.pem holds the leaf
    /// followed by the CA (use with token.x5c: true).
    #[arg(long, value_name = "DIR")]
    pub signed_by: Option<PathBuf>,
    /// Days the certificate is valid (default: 90 for a leaf signed by a
    /// CA, 3650 otherwise).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: Option<u32>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The configuration file (its signing key need not be readable).
    #[arg(long)]
    pub config: PathBuf,
    /// The account asking (empty: the anonymous account).
    #[arg(long, default_value = "")]
    pub account: String,
    /// A scope such as repository:team/app:pull,push (repeatable).
    #[arg(long, required = true)]
    pub scope: Vec<String>,
    /// The `service` the client sends (a registry's, or a mirror's).
    /// Default: the only entry of `services:`, or none when the
    /// configuration lists none.
    #[arg(long)]
    pub service: Option<String>,
    /// The client's address, for ACL `ip` rules (default: none, which
    /// no `ip` rule matches).
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// A label of the account, `name=value` (repeatable). When none is
    /// given, the labels a login would get are looked up in the
    /// configured backends.
    #[arg(long)]
    pub label: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// The configuration file whose signing key signs the token.
    #[arg(long)]
    pub config: PathBuf,
    /// The token's subject (`sub`), as the ACL sees it.
    #[arg(long)]
    pub account: String,
    /// A scope such as repository:team/app:pull (repeatable).
    #[arg(long)]
    pub scope: Vec<String>,
    /// The registry's service (the token's aud, or a mirror service).
    /// Default: the only entry of `services:`.
    #[arg(long)]
    pub service: Option<String>,
    /// Lifetime in seconds (a warning above a day: a minted token
    /// cannot be revoked).
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// A label of the account, `name=value` (repeatable). When none is
    /// given, the labels a login would get are looked up in the
    /// configured backends, as `explain` does.
    #[arg(long)]
    pub label: Vec<String>,
    /// Sign the requested scopes as they are, without evaluating the ACL.
    #[arg(long)]
    pub no_acl: bool,
    /// Print a token even when the ACL grants none of the scopes
    /// asked (exit 0 instead of 1).
    #[arg(long)]
    pub allow_empty: bool,
    /// What to print.
    #[arg(long, value_enum, default_value_t = MintFormat::Token)]
    pub format: MintFormat,
    /// Registry host[:port] for --format docker-config.
    #[arg(long)]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The configuration file whose signing key the registry must trust.
    #[arg(long)]
    pub config: PathBuf,
    /// Public URL of the token endpoint (default: from server.addr).
    #[arg(long)]
    pub realm: Option<String>,
    /// The registry's service name (the tokens' `aud`). Default: the
    /// only entry of `services:`; required when the configuration
    /// lists several or none, and refused when it is not one the
    /// configuration signs tokens for.
    #[arg(long)]
    pub service: Option<String>,
    /// Which registry the snippet is for.
    #[arg(long = "for", value_enum, default_value_t = RegistryKind::Distribution)]
    pub kind: RegistryKind,
    /// Also write the files the snippet names (jwks.json, token.pem) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The algorithms `keygen` can make a key for.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KeygenAlg {
    /// ECDSA P-256 with SHA-256: small, fast, verified by every registry.
    #[value(name = "ES256")]
    Es256,
    /// ECDSA P-384 with SHA-384.
    #[value(name = "ES384")]
    Es384,
    /// ECDSA P-521 with SHA-512.
    #[value(name = "ES512")]
    Es512,
    /// RSA 2048 with SHA-256, for registries that only take RSA.
    #[value(name = "RS256")]
    Rs256,
    /// Ed25519: only where the registry verifies EdDSA.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<KeygenAlg> for Alg {
    fn from(a: KeygenAlg) -> Alg {
        match a {
            KeygenAlg::Es256 => Alg::ES256,
            KeygenAlg::Es384 => Alg::ES384,
            KeygenAlg::Es512 => Alg::ES512,
            KeygenAlg::Rs256 => Alg::RS256,
            KeygenAlg::EdDsa => Alg::EdDSA,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MintFormat {
    /// The bare token: for skopeo `--registry-token` (and
    /// `--src-/--dest-registry-token`), curl, crane `--registry-token`...
    Token,
    /// A Docker config.json with the token as `registrytoken`: read by
    /// Docker only (skopeo, podman and containerd know no
    /// `registrytoken`).
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
pub mod robot;

/// The configuration at `path` and the generation it describes (key
/// parsed, backends built).
fn load(path: &Path) -> Result<crate::service::Generation, CliError> {
    Ok(Config::load(path).and_then(crate::service::Generation::build)?)
}

/// What a `--scope` looks like, for its errors.
const SCOPE_SHAPE: &str = "a scope is type:name:actions, e.g. repository:team/app:pull,push";

/// The services a configuration accepts, for messages: `services:` and
/// the mirrors' services.
fn accepted_services(p: &crate::config::Policy) -> String {
    let mut parts = Vec::new();
    if !p.services.is_empty() {
        parts.push(format!("services: [{}]", p.services.join(", ")));
    }
    if !p.mirrors.is_empty() {
        let m: Vec<&str> = p.mirrors.iter().map(|m| m.service.as_str()).collect();
        parts.push(format!("mirrors: [{}]", m.join(", ")));
    }
    parts.join("; ")
}

/// The `--service` of `mint`: as [`service_flag`], but a token needs an
/// audience, so without `services:` the flag is required.
fn mint_service(p: &crate::config::Policy, flag: Option<&str>) -> Result<String, String> {
    match (flag, p.services.is_empty()) {
        (None, true) => Err(
            "--service is required: the configuration has no services: list, so name the registry's service (the token's aud), e.g. --service registry.example.com".into(),
        ),
        _ => service_flag(p, flag),
    }
}

/// The `--service` of `explain`: the flag when given and accepted, else
/// the only entry of `services:`, else (no list: any service is accepted)
/// the empty service.
fn service_flag(p: &crate::config::Policy, flag: Option<&str>) -> Result<String, String> {
    match flag {
        Some(s) => crate::service::check_service(p, s)
            .map(|_| s.to_owned())
            .map_err(|_| {
                format!(
                    "--service {s:?} is not one the configuration accepts ({}); pass one of those",
                    accepted_services(p)
                )
            }),
        None => match p.services.as_slice() {
            [] => Ok(String::new()),
            [only] => Ok(only.clone()),
            _ => Err(format!(
                "--service is required: the configuration accepts several ({})",
                accepted_services(p)
            )),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every subcommand, as `(command path, argument)`.
    fn all_args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        let path = format!("{path} {}", cmd.get_name()).trim().to_owned();
        for a in cmd.get_arguments() {
            out.push((path.clone(), a.clone()));
        }
        for sub in cmd.get_subcommands() {
            all_args(sub, &path, out);
        }
    }

    #[test]
    fn every_argument_has_a_help_line() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut args = Vec::new();
        all_args(&cmd, "", &mut args);
        assert!(
            args.len() > 20,
            "the walk found only {} arguments",
            args.len()
        );
        let missing: Vec<String> = args
            .iter()
            .filter(|(_, a)| a.get_help().is_none_or(|h| h.to_string().trim().is_empty()))
            .map(|(p, a)| format!("{p} --{}", a.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn enumerated_values_show_their_choices() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut args = Vec::new();
        all_args(&cmd, "", &mut args);
        let hidden: Vec<String> = args
            .iter()
            .filter(|(_, a)| !a.get_possible_values().is_empty() && a.is_hide_possible_values_set())
            .map(|(p, a)| format!("{p} --{}", a.get_id()))
            .collect();
        assert!(hidden.is_empty(), "choices hidden: {hidden:?}");
        // The flags whose values are a closed set, and the choices they show.
        let cases: [(&str, &str, &[&str]); 4] = [
            (
                "regauth keygen",
                "alg",
                &["ES256", "ES384", "ES512", "RS256", "EdDSA"],
            ),
            ("regauth mint", "format", &["token", "docker-config"]),
            (
                "regauth registry-config",
                "kind",
                &["distribution", "distribution-v3", "zot"],
            ),
            ("regauth", "log_format", &["text", "json"]),
        ];
        for (path, id, want) in cases {
            let (_, arg) = args
                .iter()
                .find(|(p, a)| p == path && a.get_id() == id)
                .unwrap_or_else(|| panic!("{path} has no argument {id}"));
            let got: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            assert_eq!(got, want, "{path} --{id}");
        }
    }

    #[test]
    fn keygen_alg_names_parse_as_the_signer_reads_them() {
        for alg in KeygenAlg::value_variants() {
            let name = alg.to_possible_value().unwrap().get_name().to_owned();
            let parsed: Alg = name.parse().unwrap();
            assert_eq!(parsed, Alg::from(*alg), "{name}");
        }
    }
}
