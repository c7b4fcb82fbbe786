//! `deepstyle submit`: upload the images, submit a job spec and optionally wait for the result.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use deepstyle_proto::v1::{self as pb, JobSpec, StyleParams};
use deepstyle_proto::CHUNK_BYTES;

use crate::client::{runtime, Client, ConnectArgs, EXIT_CODES_HELP};
use crate::jobs_cmd::{check_outcome, download, watch};
use crate::render_cmd::{InitArg, OptimizerArg, PoolingArg};

/// Options of `deepstyle submit`; the style options mean what they mean for `render`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct SubmitArgs {
    /// The content photo.
    pub content: PathBuf,
    /// Style image(s); repeat or separate with commas to blend several.
    #[arg(short, long = "style", required = true, value_delimiter = ',')]
    pub styles: Vec<PathBuf>,
    /// Blend weights of the style images, one per style (default: equal).
    #[arg(long, value_delimiter = ',')]
    pub style_weights: Vec<f64>,
    /// Wait for the job, showing progress, and download the result.
    #[arg(long)]
    pub wait: bool,
    /// Where `--wait` writes the result (PNG).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// A name shown in job listings.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Longest side of the output in pixels.
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Iterations at the finest scale.
    #[arg(long, default_value_t = 500)]
    pub iterations: u32,
    /// Weight of the content loss.
    #[arg(long)]
    pub content_weight: Option<f64>,
    /// Weight of the style loss.
    #[arg(long)]
    pub style_weight: Option<f64>,
    /// Weight of the total-variation smoothing.
    #[arg(long)]
    pub tv_weight: Option<f64>,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Lbfgs)]
    pub optimizer: OptimizerArg,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.02)]
    pub learning_rate: f64,
    /// Curvature pairs L-BFGS keeps.
    #[arg(long, default_value_t = 100)]
    pub lbfgs_history: u32,
    /// Starting image.
    #[arg(long, value_enum, default_value_t = InitArg::Content)]
    pub init: InitArg,
    /// Image to start from with `--init image`.
    #[arg(long)]
    pub init_image: Option<PathBuf>,
    /// Style image size relative to the output.
    #[arg(long, default_value_t = 1.0)]
    pub style_scale: f64,
    /// Keep the content photo's colours.
    #[arg(long)]
    pub original_colors: bool,
    /// Pooling between VGG blocks.
    #[arg(long, value_enum, default_value_t = PoolingArg::Max)]
    pub pooling: PoolingArg,
    /// Layers matched to the content photo.
    #[arg(long, value_delimiter = ',', default_value = "relu4_2")]
    pub content_layers: Vec<String>,
    /// Layers matched to the style's Gram matrices.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
    )]
    pub style_layers: Vec<String>,
    /// L1-normalise each loss term's gradient.
    #[arg(long)]
    pub normalize_gradients: bool,
    /// Seed of the random start.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest side optimised in one piece (halo included).
    #[arg(long = "tile", default_value_t = 512)]
    pub tile_size: u32,
    /// Least overlap between tiles in pixels.
    #[arg(long, default_value_t = 128)]
    pub overlap: u32,
    /// Context around each tile in pixels.
    #[arg(long)]
    pub halo: Option<u32>,
    /// Number of scales.
    #[arg(long)]
    pub scales: Option<u32>,
    /// Ratio between consecutive scales.
    #[arg(long, default_value_t = 2.0)]
    pub scale_ratio: f32,
    /// Longest side of the first, whole-image scale.
    #[arg(long, default_value_t = 512)]
    pub base_size: u32,
    /// Longest side the style images are resized to at most.
    #[arg(long, default_value_t = 1024)]
    pub max_style_size: u32,
    /// Put the content's alpha channel back on the output.
    #[arg(long)]
    pub keep_alpha: bool,
    /// Write 16 bits per channel.
    #[arg(long)]
    pub sixteen_bit: bool,
    /// Connection settings.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl SubmitArgs {
    fn spec(
        &self,
        content: String,
        styles: Vec<String>,
        init: Option<String>,
    ) -> anyhow::Result<JobSpec> {
        let weights = if self.style_weights.is_empty() {
            vec![1.0; styles.len()]
        } else if self.style_weights.len() == styles.len() {
            self.style_weights.clone()
        } else {
            bail!(
                "--style-weights has {} values for {} style images",
                self.style_weights.len(),
                styles.len()
            );
        };
        let params = StyleParams {
            content_layers: self.content_layers.clone(),
            style_layers: self.style_layers.clone(),
            content_weight: self.content_weight,
            style_weight: self.style_weight,
            tv_weight: self.tv_weight,
            optimizer: match self.optimizer {
                OptimizerArg::Lbfgs => pb::Optimizer::Lbfgs,
                OptimizerArg::Adam => pb::Optimizer::Adam,
            } as i32,
            learning_rate: self.learning_rate,
            lbfgs_history: self.lbfgs_history,
            init: match self.init {
                InitArg::Content => pb::Init::Content,
                InitArg::Random => pb::Init::Random,
                InitArg::Image => pb::Init::Image,
            } as i32,
            normalize_gradients: self.normalize_gradients,
            seed: self.seed,
            pooling: match self.pooling {
                PoolingArg::Max => pb::Pooling::Max,
                PoolingArg::Avg => pb::Pooling::Avg,
            } as i32,
        };
        Ok(JobSpec {
            content_sha256: content,
            styles: styles
                .into_iter()
                .zip(weights)
                .map(|(image_sha256, weight)| pb::StyleInput {
                    image_sha256,
                    weight,
                })
                .collect(),
            init_sha256: init,
            size: self.size,
            iterations: self.iterations,
            params: Some(params),
            style_scale: self.style_scale,
            max_style_size: self.max_style_size,
            tile_size: self.tile_size,
            overlap: self.overlap,
            halo: self.halo,
            num_scales: self.scales,
            scale_ratio: self.scale_ratio,
            base_size: self.base_size,
            original_colors: self.original_colors,
            keep_alpha: self.keep_alpha,
            sixteen_bit: self.sixteen_bit,
            name: self.name.clone(),
        })
    }
}

/// Uploads a file in chunks and returns its sha256.
async fn upload(client: &mut Client, path: &Path, role: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("failed to read {role} image {}", path.display()))?;
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
    runtime()?.block_on(async {
        let mut client = Client::connect(&args.connect).await?;
        let content = upload(&mut client, &args.content, "content").await?;
        let mut styles = Vec::with_capacity(args.styles.len());
        for path in &args.styles {
            styles.push(upload(&mut client, path, "style").await?);
        }
        let init = match &args.init_image {
            Some(path) => Some(upload(&mut client, path, "init").await?),
            None => None,
        };
        let spec = args.spec(content, styles, init)?;
        let request = client.request(pb::SubmitJobRequest { spec: Some(spec) });
        let job = client
            .jobs
            .submit_job(request)
            .await
            .context("the coordinator refused the job")?
            .into_inner()
            .job
            .context("the coordinator returned no job")?;
        println!("{}", job.job_id);
        if !args.wait {
            return Ok(());
        }
        let done = watch(&mut client, &job.job_id).await?;
        check_outcome(&done)?;
        download(&mut client, &job.job_id, &args.output).await
    })
}
