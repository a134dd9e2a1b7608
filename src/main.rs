//! The `regauth` binary: parse the command line, set up logging, run.

use clap::Parser;
use regauth::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let log_guard = match regauth::logging::init(cli.log_format) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("regauth: cannot start the log writer thread: {e}");
            std::process::exit(1);
        }
    };
    let code = match cli.command.run() {
        Ok(()) => 0,
        // The server reports through its log, in the chosen format.
        Err(e) if matches!(cli.command, Command::Serve(_)) => {
            tracing::error!("{e}");
            1
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    // exit() runs no destructors: write the pending log lines first.
    drop(log_guard);
    std::process::exit(code);
}
