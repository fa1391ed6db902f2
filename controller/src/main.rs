//! The `reconciler` binary: parse arguments, run the command, exit with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use reconciler::cli::{run, Cli, Console, LogFormat};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    // The child `run` loads each new revision in first, under limits.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == reconciler::sandbox::CHILD_ARG)
    {
        return reconciler::sandbox::child();
    }
    let cli = Cli::parse();
    // The long-running controller reports what it does; one-shot commands stay quiet.
    let default = if matches!(cli.command, reconciler::cli::Command::Run(_)) {
        "info"
    } else {
        "warn"
    };
    // `RECONCILER_LOG=debug`, or per target: `reconciler=debug,warn`.
    let filter: Targets = std::env::var("RECONCILER_LOG")
        .ok()
        .and_then(|value| value.parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or_default();
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .with(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_current_span(false))
            .with(filter)
            .init(),
    }
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
        progress: reconciler::cli::ProgressStyle::detect(),
        input: if interactive { Some(&mut input) } else { None },
    };
    let code = runtime.block_on(run(cli, &mut console));
    // A blocking task still running (a git fetch stuck on a stalled remote)
    // must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    ExitCode::from(code)
}
