//! The `regauth` binary: parse the command line, set up logging, run.

use clap::Parser;
use regauth::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let log_guard = match regauth::logging::init(cli.log_format) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("regauth: cannot start the log writer thread: {e}");
            std::process::exit(1);
        }
    };
    let code = match cli.command {
        Command::Serve { config, listen } => regauth::run::serve(&config, listen),
        Command::Check { config } => cli::check(&config),
        Command::Hash { cost } => cli::hash(cost),
        Command::Keygen { out, alg, force } => cli::keygen(&out, alg.into(), force),
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
            service: service.as_deref(),
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
            allow_empty,
            format,
            registry,
        } => cli::mint(cli::MintArgs {
            config: &config,
            account: &account,
            scopes: &scope,
            service: service.as_deref(),
            ttl,
            labels: &label,
            no_acl,
            allow_empty,
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
            service: service.as_deref(),
            kind,
            out: out.as_deref(),
        }),
        Command::Robot(args) => match cli::robot::run(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
    };
    // exit() runs no destructors: write the pending log lines first.
    drop(log_guard);
    std::process::exit(code);
}
