//! The `regauth` binary: parse the command line, set up logging, run.

use clap::Parser;
use regauth::cli::{self, Cli, Command, LogFormat};

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let code = match cli.command {
        Command::Serve { config, listen } => regauth::run::serve(&config, listen),
        Command::Check { config } => cli::check(&config),
        Command::Hash { cost } => cli::hash(cost),
        Command::Keygen { out, alg, force } => cli::keygen(&out, alg, force),
        Command::Explain {
            config,
            account,
            scope,
            service,
            ip,
            label,
        } => cli::explain(cli::ExplainArgs {
            config: &config,
            account: &account,
            scopes: &scope,
            service: &service,
            ip,
            labels: &label,
        }),
        Command::Mint {
            config,
            account,
            scope,
            service,
            ttl,
            label,
            no_acl,
            format,
            registry,
        } => cli::mint(cli::MintArgs {
            config: &config,
            account: &account,
            scopes: &scope,
            service: &service,
            ttl,
            labels: &label,
            no_acl,
            format,
            registry: registry.as_deref(),
        }),
        Command::RegistryConfig {
            config,
            realm,
            service,
            kind,
            out,
        } => cli::registry_config(cli::RegistryArgs {
            config: &config,
            realm: realm.as_deref(),
            service: &service,
            kind,
            out: out.as_deref(),
        }),
    };
    std::process::exit(code);
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
