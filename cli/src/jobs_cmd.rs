//! `deepstyle watch | status | jobs | fetch | cancel | workers`: following and managing jobs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use deepstyle_coordinator::imaging::{self, BitDepth};
use deepstyle_proto::v1::{self as pb, JobState};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;

use crate::client::{
    runtime, Client, ConnectArgs, ExitError, EXIT_CODES_HELP, EXIT_JOB_CANCELLED, EXIT_JOB_FAILED,
};

/// A job named on the command line.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct JobArgs {
    /// The job's id.
    pub job: String,
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Options of `deepstyle fetch`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct FetchArgs {
    /// The job's id.
    pub job: String,
    /// Where to write the result (PNG).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Options of `deepstyle jobs` and `deepstyle workers`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ListArgs {
    /// Most entries to list.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn state_name(job: &pb::Job) -> &'static str {
    match job.state() {
        JobState::Unspecified => "unknown",
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn describe(job: &pb::Job) -> String {
    let mut line = format!(
        "{}  {:<9}  {}x{}  scale {}/{}  tiles {}/{}",
        job.job_id,
        state_name(job),
        job.width,
        job.height,
        (job.scale + 1).min(job.num_scales),
        job.num_scales,
        job.tiles_done,
        job.tiles_total
    );
    if !job.error.is_empty() {
        line.push_str(&format!("  error: {}", job.error));
    }
    line
}

/// Returns `Ok` for a succeeded job and the matching exit error for a failed or cancelled one.
pub fn check_outcome(job: &pb::Job) -> anyhow::Result<()> {
    match job.state() {
        JobState::Failed => Err(ExitError::new(
            EXIT_JOB_FAILED,
            format!("job {} failed: {}", job.job_id, job.error),
        )
        .into()),
        JobState::Cancelled => Err(ExitError::new(
            EXIT_JOB_CANCELLED,
            format!("job {} was cancelled", job.job_id),
        )
        .into()),
        _ => Ok(()),
    }
}

/// Follows a job until it is over, with a bar of its tiles when `show_bar`, and returns it as
/// it ended.
pub async fn watch(client: &mut Client, job_id: &str, show_bar: bool) -> anyhow::Result<pb::Job> {
    let request = client.request(pb::WatchJobRequest {
        job_id: job_id.to_owned(),
    });
    let mut events = client.jobs.watch_job(request).await?.into_inner();
    let bar = if show_bar {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} scale {prefix} [{bar:30}] {pos}/{len} tiles {msg}")
            .expect("the progress template is valid")
            .progress_chars("=> "),
    );
    let mut last = None;
    while let Some(event) = events.next().await {
        let event = event.context("the job watch broke off")?;
        let Some(job) = event.job else { continue };
        bar.set_prefix(format!(
            "{}/{}",
            (job.scale + 1).min(job.num_scales),
            job.num_scales
        ));
        bar.set_length(u64::from(job.tiles_total.max(1)));
        bar.set_position(u64::from(job.tiles_done));
        bar.set_message(event.message.clone());
        let over = !matches!(job.state(), JobState::Queued | JobState::Running);
        last = Some(job);
        if over {
            break;
        }
    }
    bar.finish_and_clear();
    let job = match last {
        Some(job) if !matches!(job.state(), JobState::Queued | JobState::Running) => job,
        _ => get(client, job_id).await?,
    };
    Ok(job)
}

async fn get(client: &mut Client, job_id: &str) -> anyhow::Result<pb::Job> {
    let request = client.request(pb::GetJobRequest {
        job_id: job_id.to_owned(),
    });
    Ok(client.jobs.get_job(request).await?.into_inner())
}

/// Downloads a succeeded job's result to `output`, in the format its extension names (8 bits
/// per channel unless it is `.png`, which keeps the job's depth).
pub async fn download(client: &mut Client, job_id: &str, output: &Path) -> anyhow::Result<()> {
    let bytes = download_bytes(client, job_id).await?;
    imaging::save_png_as(output, &bytes, BitDepth::Eight)?;
    println!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(())
}

/// Downloads a succeeded job's encoded result.
pub async fn download_bytes(client: &mut Client, job_id: &str) -> anyhow::Result<Vec<u8>> {
    let request = client.request(pb::DownloadResultRequest {
        job_id: job_id.to_owned(),
    });
    let mut stream = client.jobs.download_result(request).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend(chunk.context("the download broke off")?.data);
    }
    Ok(bytes)
}

/// Runs `deepstyle watch`.
pub fn run_watch(args: &JobArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let job = watch(&mut client, &args.job, true).await?;
        println!("{}", describe(&job));
        check_outcome(&job)
    })
}

/// Runs `deepstyle status`.
pub fn run_status(args: &JobArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let job = get(&mut client, &args.job).await?;
        println!("{}", describe(&job));
        check_outcome(&job)
    })
}

/// Runs `deepstyle jobs`.
pub fn run_jobs(args: &ListArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.request(pb::ListJobsRequest { limit: args.limit });
        for job in client.jobs.list_jobs(request).await?.into_inner().jobs {
            println!("{}", describe(&job));
        }
        Ok(())
    })
}

/// Runs `deepstyle fetch`.
pub fn run_fetch(args: &FetchArgs) -> anyhow::Result<()> {
    imaging::check_output(&args.output, BitDepth::Eight)?;
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let job = get(&mut client, &args.job).await?;
        check_outcome(&job)?;
        download(&mut client, &args.job, &args.output).await
    })
}

/// Runs `deepstyle cancel`.
pub fn run_cancel(args: &JobArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.request(pb::CancelJobRequest {
            job_id: args.job.clone(),
        });
        let job = client.jobs.cancel_job(request).await?.into_inner();
        println!("{}", describe(&job));
        Ok(())
    })
}

/// Runs `deepstyle workers`.
pub fn run_workers(args: &ListArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let request = client.request(pb::ListWorkersRequest {});
        let workers = client
            .jobs
            .list_workers(request)
            .await?
            .into_inner()
            .workers;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for w in workers.iter().take(args.limit as usize) {
            // The coordinator stamps with Redis's clock; a small skew can make this negative.
            let age_secs = (now_ms - w.last_seen_unix_ms).max(0) / 1000;
            println!(
                "{}  {:<20}  memory {} MiB  tasks {}  last seen {age_secs} s ago",
                w.worker_id,
                w.device,
                w.memory_bytes >> 20,
                w.tasks_done,
            );
        }
        Ok(())
    })
}
