//! The style options `render` and `submit` share, checked here and turned into a job spec.
//!
//! Both commands send the same [`JobSpec`], so a job means the same thing whether it runs in
//! this process or on a farm; neural-style's names for each option are in the README.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};
use deepstyle_proto::v1::{self as pb, JobSpec, StyleParams};
use deepstyle_worker::options::{DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT};

/// The optimiser, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// L-BFGS: fewer iterations, more memory (neural-style's default).
    Lbfgs,
    /// Adam: less memory, needs more iterations.
    Adam,
}

/// The starting image, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// Start from the content photo (neural-style's `-init image`).
    Content,
    /// Start from seeded noise.
    Random,
    /// Start from `--init-image`.
    Image,
}

/// Pooling, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PoolingArg {
    /// Max pooling.
    Max,
    /// Average pooling.
    Avg,
}

/// The content, the styles and every option of the optimisation and its scales and tiles.
#[derive(Debug, Clone, Args)]
pub struct StyleArgs {
    /// The content photo.
    pub content: PathBuf,
    /// Style image(s); repeat or separate with commas to blend several.
    #[arg(short, long = "style", required = true, value_delimiter = ',')]
    pub styles: Vec<PathBuf>,
    /// Blend weights of the style images, one per style (default: equal).
    #[arg(long, value_delimiter = ',')]
    pub style_weights: Vec<f64>,
    /// Longest side of the output in pixels.
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Iterations at the finest scale (coarser scales get a few more).
    #[arg(long, default_value_t = 500)]
    pub iterations: u32,
    /// Weight of the content loss.
    #[arg(long, default_value_t = DEFAULT_CONTENT_WEIGHT)]
    pub content_weight: f64,
    /// Weight of the style loss.
    #[arg(long, default_value_t = DEFAULT_STYLE_WEIGHT)]
    pub style_weight: f64,
    /// Weight of the total-variation smoothing.
    #[arg(long, default_value_t = DEFAULT_TV_WEIGHT)]
    pub tv_weight: f64,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Lbfgs)]
    pub optimizer: OptimizerArg,
    /// Adam's learning rate (images are in [0, 1]).
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
    /// Keep the content photo's colours; transfer luminance only.
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
    /// Largest side optimised in one piece (halo included); larger scales are tiled.
    #[arg(long = "tile", default_value_t = 512)]
    pub tile_size: u32,
    /// Least overlap between tiles in pixels [default: 128, less where the tile's core is
    /// under 257 px]; at most half the core.
    #[arg(long)]
    pub overlap: Option<u32>,
    /// Context around each tile in pixels (default: half the deepest layer's receptive field).
    #[arg(long)]
    pub halo: Option<u32>,
    /// Number of scales (default: enough to go from --base-size up by --scale-ratio).
    #[arg(long)]
    pub scales: Option<u32>,
    /// Ratio between consecutive scales.
    #[arg(long, default_value_t = 2.0, value_parser = above_one)]
    pub scale_ratio: f32,
    /// Longest side of the first, whole-image scale.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub base_size: u32,
    /// Longest side the style images are resized to at most.
    #[arg(long, default_value_t = 1024)]
    pub max_style_size: u32,
    /// Put the content's alpha channel back on the output.
    #[arg(long)]
    pub keep_alpha: bool,
    /// Write 16 bits per channel (PNG and TIFF).
    #[arg(long)]
    pub sixteen_bit: bool,
}

impl StyleArgs {
    /// Refuses what clap cannot, naming the flag; the coordinator checks the rest.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.init == InitArg::Image && self.init_image.is_none() {
            bail!("--init image needs --init-image");
        }
        for (name, value) in [
            ("--content-weight", self.content_weight),
            ("--style-weight", self.style_weight),
            ("--tv-weight", self.tv_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{name} must be a finite number >= 0, got {value}");
            }
        }
        if self.iterations == 0 {
            bail!("--iterations must be at least 1");
        }
        if self.size == 0 {
            bail!("--size must be at least 1");
        }
        if !(self.style_scale.is_finite() && self.style_scale > 0.0) {
            bail!("--style-scale must be > 0, got {}", self.style_scale);
        }
        self.style_weights()?;
        Ok(())
    }

    fn style_weights(&self) -> anyhow::Result<Vec<f64>> {
        if self.style_weights.is_empty() {
            return Ok(vec![1.0; self.styles.len()]);
        }
        if self.style_weights.len() != self.styles.len() {
            bail!(
                "--style-weights has {} values for {} style images",
                self.style_weights.len(),
                self.styles.len()
            );
        }
        Ok(self.style_weights.clone())
    }

    /// Builds the job spec from the uploaded images' sha256s (styles in command-line order).
    pub fn spec(
        &self,
        content: String,
        styles: Vec<String>,
        init: Option<String>,
        name: &str,
    ) -> anyhow::Result<JobSpec> {
        let weights = self.style_weights()?;
        let params = StyleParams {
            content_layers: self.content_layers.clone(),
            style_layers: self.style_layers.clone(),
            content_weight: Some(self.content_weight),
            style_weight: Some(self.style_weight),
            tv_weight: Some(self.tv_weight),
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
            overlap: self.overlap.unwrap_or(0),
            halo: self.halo,
            num_scales: self.scales,
            scale_ratio: self.scale_ratio,
            base_size: self.base_size,
            original_colors: self.original_colors,
            keep_alpha: self.keep_alpha,
            sixteen_bit: self.sixteen_bit,
            name: name.to_owned(),
        })
    }
}

/// Parses a scale ratio; 0 would otherwise reach the spec as "unset" and mean the default.
fn above_one(value: &str) -> Result<f32, String> {
    let ratio: f32 = value.parse().map_err(|e| format!("{e}"))?;
    if ratio.is_finite() && ratio > 1.0 {
        Ok(ratio)
    } else {
        Err(format!("{value} is not a ratio above 1"))
    }
}

/// Returns the flag that sets a [`JobSpec`] field as the coordinator names it in a refusal
/// (`tile_size`, `styles[1].weight`), if one does.
pub fn flag_of_field(field: &str) -> Option<&'static str> {
    let field = match field.split_once('[') {
        Some((list, rest)) => match rest.split_once("].") {
            Some((_, "weight")) => return Some("--style-weights"),
            _ => list,
        },
        None => field,
    };
    Some(match field.strip_prefix("params.").unwrap_or(field) {
        "content_sha256" => "the content argument",
        "styles" => "--style",
        "init_sha256" | "init" => "--init-image",
        "size" => "--size",
        "iterations" => "--iterations",
        "style_scale" => "--style-scale",
        "max_style_size" => "--max-style-size",
        "tile_size" => "--tile",
        "overlap" => "--overlap",
        "halo" => "--halo",
        "num_scales" => "--scales",
        "scale_ratio" => "--scale-ratio",
        "base_size" => "--base-size",
        "content_layers" => "--content-layers",
        "style_layers" => "--style-layers",
        "content_weight" => "--content-weight",
        "style_weight" => "--style-weight",
        "tv_weight" => "--tv-weight",
        "learning_rate" => "--learning-rate",
        "lbfgs_history" => "--lbfgs-history",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_fields_map_to_their_flags() {
        assert_eq!(flag_of_field("tile_size"), Some("--tile"));
        assert_eq!(flag_of_field("params.style_layers"), Some("--style-layers"));
        assert_eq!(flag_of_field("styles[1].weight"), Some("--style-weights"));
        assert_eq!(flag_of_field("styles[0].image_sha256"), Some("--style"));
        assert_eq!(flag_of_field("num_scales"), Some("--scales"));
        assert_eq!(flag_of_field("keep_alpha"), None);
    }
}
