//! The `reconciler` binary: parse arguments, run the command, exit with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use reconciler::cli::{run, Cli, Console};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RECONCILER_LOG").unwrap_or_else(|_| {
                // The long-running controller reports what it does; one-shot commands stay quiet.
                let default = if matches!(cli.command, reconciler::cli::Command::Run(_)) {
                    "info"
                } else {
                    "warn"
                };
                default.into()
            }),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        input: if interactive { Some(&mut input) } else { None },
    };
    let code = runtime.block_on(run(cli, &mut console));
    // A blocking task still running (a git fetch stuck on a stalled remote)
    // must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    ExitCode::from(code)
}
