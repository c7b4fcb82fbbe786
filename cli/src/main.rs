//! `deepstyle`: neural style transfer at any resolution.

use clap::{Parser, Subcommand};
use deepstyle_cli::client::{exit_code, EXIT_CODES_HELP};
use deepstyle_cli::jobs_cmd::{self, FetchArgs, JobArgs, ListArgs};
use deepstyle_cli::render_cmd::{self, RenderArgs};
use deepstyle_cli::submit::{self, SubmitArgs};

/// Default log filter: the CLI's own progress, but only warnings from the embedded farm.
const QUIET_FARM_LOGS: &str = "info,deepstyle_coordinator=warn,deepstyle_worker::farm=warn";

/// Neural style transfer at any resolution.
#[derive(Debug, Parser)]
#[command(name = "deepstyle", version, about, after_help = EXIT_CODES_HELP)]
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
    /// Upload images and submit a job to a coordinator; prints the job id.
    Submit(Box<SubmitArgs>),
    /// Follow a job until it is over.
    Watch(JobArgs),
    /// Show a job.
    Status(JobArgs),
    /// List recent jobs.
    Jobs(ListArgs),
    /// Download a finished job's result.
    Fetch(FetchArgs),
    /// Cancel a job.
    Cancel(JobArgs),
    /// List the registered workers.
    Workers(ListArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `render` runs a coordinator and a worker in-process; their per-task lines are noise here.
    deepstyle_coordinator::logging::init_with_default(cli.log_json, QUIET_FARM_LOGS);
    let result = match &cli.command {
        Command::Render(args) => render_cmd::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Watch(args) => jobs_cmd::run_watch(args),
        Command::Status(args) => jobs_cmd::run_status(args),
        Command::Jobs(args) => jobs_cmd::run_jobs(args),
        Command::Fetch(args) => jobs_cmd::run_fetch(args),
        Command::Cancel(args) => jobs_cmd::run_cancel(args),
        Command::Workers(args) => jobs_cmd::run_workers(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(exit_code(&error))
        }
    }
}
