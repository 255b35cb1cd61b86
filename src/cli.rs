//! The command line: parses arguments, sets up logging and runs a subcommand.
//!
//! Human output (first-start credentials, admin results) goes to stdout; logs go to stderr.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command};
use crate::store::Store;
use crate::{admin, server};

/// Runs the command line and returns the process's exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => server::run(cli.serve).await,
        Some(Command::Serve(settings)) => server::run(*settings).await,
        Some(Command::Admin { database, action }) => {
            let store = open(&database.database_url).await?;
            admin::run(&store, action).await
        }
        Some(Command::McpStdio(args)) => crate::stdio::run(args).await,
        Some(Command::Migrate(database)) => {
            open(&database.database_url).await?;
            eprintln!("the database schema is up to date");
            Ok(())
        }
    }
}

/// Connects to the database and brings its schema up to date.
pub async fn open(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    Ok(store)
}

/// Crates that log whole messages below `info`: rmcp writes out every JSON-RPC request and
/// response, with the tokens, keys and mail they carry. They stay at `info` whatever `RUST_LOG`
/// asks, so that even `RUST_LOG=trace` logs no secret.
const LOG_WHOLE_MESSAGES: &[&str] = &["rmcp"];

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = LOG_WHOLE_MESSAGES.iter().fold(filter, |filter, target| {
        filter.add_directive(format!("{target}=info").parse().expect("a valid directive"))
    });
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
