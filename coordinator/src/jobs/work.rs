//! The image steps of a job, run on blocking threads: tile inputs, stitching and the output.

use deepstyle_proto::v1::{Init, JobSpec};
use image::Rgb32FImage;

use super::plan::JobPlan;
use super::JobError;
use crate::color::keep_original_colors;
use crate::ids::JobId;
use crate::imaging::{self, BitDepth, DecodeLimits, LoadedImage};
use crate::progressive::ProgressiveCanvas;
use crate::stitch::{crop, Stitcher};
use crate::tiling::{Rect, TileWeights};

/// Decodes a stored image, naming the blob in the error.
pub(super) fn decode(
    key: &str,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<LoadedImage, JobError> {
    imaging::decode(bytes, limits).map_err(|e| JobError::Image {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn png16(key: &str, image: &Rgb32FImage) -> Result<Vec<u8>, JobError> {
    imaging::encode_png(image, None, BitDepth::Sixteen).map_err(|e| JobError::Image {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// The inputs of one tile task, encoded as 16-bit PNGs.
#[derive(Debug)]
pub(super) struct TileInputs {
    pub(super) tile: usize,
    pub(super) content: Vec<u8>,
    pub(super) init: Option<Vec<u8>>,
    pub(super) inner: Rect,
    /// Tiled scales: the crop of the scale's start image, before any tile of the scale ran.
    pub(super) start: Option<Vec<u8>>,
    /// Tiled scales: the blend weights of `inner`.
    pub(super) weights: Option<TileWeights>,
}

/// What the tiles of one phase are cut from.
#[derive(Debug)]
pub(super) struct PhaseSource {
    /// The job's content image at its original size.
    pub(super) content: Rgb32FImage,
    /// The start image (coarser result or the user's init image), at any size.
    pub(super) init: Option<Rgb32FImage>,
    /// Whether tiles without a start image start from the content (`Init::Content`).
    pub(super) content_init: bool,
    /// Results of the earlier phases' tiles: tile index, blob key and 16-bit PNG bytes.
    pub(super) finished: Vec<(usize, String, Vec<u8>)>,
}

/// Cuts the crops of the tile tasks `tiles` of a scale.
///
/// Tiles of a tiled scale start from the progressive canvas (the start image, or the content
/// when the job starts from it, with the earlier phases' results blended in), exactly as the
/// embedded renderer does; a whole scale starts from the start image, if any.
pub(super) fn tile_inputs(
    plan: &JobPlan,
    scale: usize,
    tiles: &[usize],
    source: &PhaseSource,
    limits: &DecodeLimits,
) -> Result<Vec<TileInputs>, JobError> {
    let s = plan.scales[scale];
    let content_s = imaging::resize(&source.content, s.width, s.height);
    let init_s = source
        .init
        .as_ref()
        .map(|i| imaging::resize(i, s.width, s.height));
    let (init, base) = match (&plan.tiles[scale], init_s) {
        (None, init_s) => (init_s, None),
        (Some(tile_plan), init_s) => {
            let base = match init_s {
                Some(init) => init,
                None if source.content_init => content_s.clone(),
                None => return inputs(plan, scale, tiles, &content_s, None, None),
            };
            let mut canvas = ProgressiveCanvas::new(base.clone());
            for (index, key, bytes) in &source.finished {
                let tile = tile_plan
                    .tile(*index)
                    .ok_or(JobError::Internal("finished tile is in the plan"))?;
                canvas.blend(tile_plan, tile, &decode(key, bytes, limits)?.rgb)?;
            }
            (Some(canvas.image().clone()), Some(base))
        }
    };
    inputs(plan, scale, tiles, &content_s, init.as_ref(), base.as_ref())
}

/// Cuts each tile's crops: content, start (`init`, the progressive canvas) and, on tiled scales
/// with a start image, the scale's start image `base` itself with the tile's blend weights.
fn inputs(
    plan: &JobPlan,
    scale: usize,
    tiles: &[usize],
    content_s: &Rgb32FImage,
    init: Option<&Rgb32FImage>,
    base: Option<&Rgb32FImage>,
) -> Result<Vec<TileInputs>, JobError> {
    tiles
        .iter()
        .map(|&tile| {
            let (outer, inner) = plan
                .tile_rects(scale, tile)
                .ok_or(JobError::Internal("tile index is in the plan"))?;
            let weights = match (&plan.tiles[scale], base) {
                (Some(tile_plan), Some(_)) => {
                    tile_plan.tile(tile).map(|t| tile_plan.axis_weights(t))
                }
                _ => None,
            };
            Ok(TileInputs {
                tile,
                content: png16("tile content", &crop(content_s, outer))?,
                init: init
                    .map(|i| png16("tile init", &crop(i, outer)))
                    .transpose()?,
                inner,
                start: base
                    .map(|b| png16("tile start", &crop(b, outer)))
                    .transpose()?,
                weights,
            })
        })
        .collect()
}

/// Returns the blob key of the image a tiled scale starts from, before it is resized to the
/// scale: the coarser scale's result, else the user's init image, else the content when the
/// job starts from it; `None` for a random start or an untiled scale.
pub(super) fn canvas_start_key(
    id: &JobId,
    spec: &JobSpec,
    plan: &JobPlan,
    scale: usize,
) -> Option<String> {
    plan.tiles.get(scale)?.as_ref()?;
    let params = spec.params.clone().unwrap_or_default();
    if scale > 0 {
        Some(crate::blob::scale_result_key(id, scale as u32 - 1))
    } else if let Some(sha) = &spec.init_sha256 {
        Some(crate::blob::image_key(sha))
    } else if matches!(params.init(), Init::Content | Init::Unspecified) {
        Some(crate::blob::image_key(&spec.content_sha256))
    } else {
        None
    }
}

/// Blends a scale's tile results (16-bit PNGs in tile order) into the scale image.
pub(super) fn stitch(
    plan: &JobPlan,
    scale: usize,
    results: &[(String, Vec<u8>)],
    limits: &DecodeLimits,
) -> Result<Vec<u8>, JobError> {
    let image = match &plan.tiles[scale] {
        None => {
            let (key, bytes) = results
                .first()
                .ok_or(JobError::Internal("no tile result"))?;
            decode(key, bytes, limits)?.rgb
        }
        Some(tile_plan) => {
            let mut stitcher = Stitcher::new(tile_plan)?;
            for (tile, (key, bytes)) in tile_plan.tiles().iter().zip(results) {
                stitcher.add(tile, &decode(key, bytes, limits)?.rgb)?;
            }
            stitcher.finish()?
        }
    };
    png16("scale result", &image)
}

/// Makes the output from the last scale: original colours, alpha, then PNG at the asked depth.
pub(super) fn output(
    spec: &JobSpec,
    last: &Rgb32FImage,
    content: &LoadedImage,
) -> Result<Vec<u8>, JobError> {
    let (width, height) = last.dimensions();
    let mut image = last.clone();
    if spec.original_colors {
        let content_at_size = imaging::resize(&content.rgb, width, height);
        image = keep_original_colors(&image, &content_at_size);
    }
    let alpha = match (&content.alpha, spec.keep_alpha) {
        (Some(alpha), true) => Some(imaging::resize_alpha(alpha, width, height)),
        _ => None,
    };
    let depth = if spec.sixteen_bit {
        BitDepth::Sixteen
    } else {
        BitDepth::Eight
    };
    imaging::encode_png(&image, alpha.as_ref(), depth).map_err(|e| JobError::Image {
        key: "output".into(),
        reason: e.to_string(),
    })
}
