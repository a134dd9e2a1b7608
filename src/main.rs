//! The `regauth` binary: parse the command line, set up logging, run.

use clap::Parser;
use regauth::cli::{self, Cli, Command, LogFormat};

fn main() {
    let cli = Cli::parse();
    let log_guard = init_tracing(cli.log_format);
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
    // exit() runs no destructors: flush the log queue first.
    drop(log_guard);
    std::process::exit(code);
}

/// Logs go to stderr through a writer thread, so a request never waits on
/// a write system call; the queue blocks rather than drops when full (audit
/// lines are never lost). Colours only on a terminal. The returned guard
/// flushes the queue when dropped.
fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}
