//! `deepstyle`: neural style transfer at any resolution.

use clap::{Parser, Subcommand};
use deepstyle_cli::render_cmd::{self, RenderArgs};
use tracing_subscriber::EnvFilter;

/// Neural style transfer at any resolution.
#[derive(Debug, Parser)]
#[command(name = "deepstyle", version, about)]
struct Cli {
    /// Log as JSON lines (for clusters).
    #[arg(long, global = true, env = "DEEPSTYLE_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render one image in this process (no coordinator, no Redis).
    Render(Box<RenderArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let result = match &cli.command {
        Command::Render(args) => render_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
