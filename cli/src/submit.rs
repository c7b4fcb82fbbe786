//! `deepstyle submit`: upload the images, submit a job spec and optionally wait for the result.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use deepstyle_coordinator::imaging::{self, BitDepth};
use deepstyle_proto::v1 as pb;
use deepstyle_proto::CHUNK_BYTES;

use crate::client::{refusal, runtime, Client, ConnectArgs, EXIT_CODES_HELP};
use crate::jobs_cmd::{check_outcome, download, watch};
use crate::style_args::StyleArgs;

/// Options of `deepstyle submit`; the style options mean what they mean for `render`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct SubmitArgs {
    /// The content, styles and style options.
    #[command(flatten)]
    pub style: StyleArgs,
    /// Wait for the job, showing progress, and download the result.
    #[arg(long)]
    pub wait: bool,
    /// Where `--wait` writes the result (PNG).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// A name shown in job listings.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Uploads a file in chunks and returns its sha256.
async fn upload(client: &mut Client, path: &Path, role: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("failed to read {role} image {}", path.display()))?;
    upload_bytes(client, bytes, path, role).await
}

/// Uploads the bytes of an image file in chunks and returns their sha256.
pub(crate) async fn upload_bytes(
    client: &mut Client,
    bytes: Vec<u8>,
    path: &Path,
    role: &str,
) -> anyhow::Result<String> {
    let parts: Vec<pb::UploadImageRequest> = bytes
        .chunks(CHUNK_BYTES)
        .map(|c| pb::UploadImageRequest { data: c.to_vec() })
        .collect();
    let request = client.request(tokio_stream::iter(parts));
    let image = client
        .jobs
        .upload_image(request)
        .await
        .with_context(|| format!("failed to upload {role} image {}", path.display()))?
        .into_inner()
        .image
        .context("the coordinator returned no image reference")?;
    Ok(image.sha256)
}

/// Runs `deepstyle submit`.
pub fn run(args: &SubmitArgs) -> anyhow::Result<()> {
    let style = &args.style;
    style.check()?;
    if args.wait {
        imaging::check_output(&args.output, BitDepth::Eight)?;
    }
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let content = upload(&mut client, &style.content, "content").await?;
        let mut styles = Vec::with_capacity(style.styles.len());
        for path in &style.styles {
            styles.push(upload(&mut client, path, "style").await?);
        }
        let init = match &style.init_image {
            Some(path) => Some(upload(&mut client, path, "init").await?),
            None => None,
        };
        let spec = style.spec(content, styles, init, &args.name)?;
        let request = client.request(pb::SubmitJobRequest { spec: Some(spec) });
        let job = client
            .jobs
            .submit_job(request)
            .await
            .map_err(|status| anyhow::anyhow!(refusal(&status)))
            .context("the coordinator refused the job")?
            .into_inner()
            .job
            .context("the coordinator returned no job")?;
        println!("{}", job.job_id);
        if !args.wait {
            return Ok(());
        }
        let done = watch(&mut client, &job.job_id, true).await?;
        check_outcome(&done)?;
        download(&mut client, &job.job_id, &args.output).await
    })
}
