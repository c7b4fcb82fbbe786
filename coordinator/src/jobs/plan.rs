//! Job specs: defaults, validation and the plan of scales and tiles they lead to.
//!
//! The plan follows the embedded renderer exactly (the CLI's `pipeline` module): the halo is
//! half the deepest layer's receptive field, a scale is tiled when its longest side exceeds the
//! tile size, tiles have a core of `tile_size - 2 * halo - (HALO_ALIGN - 1)` (so that halo
//! rects aligned to the network's pooling grid still fit the tile size) and an overlap of at most
//! `(core - 1) / 2` (the default overlap shrinks to fit a small core; a larger one asked for is
//! refused), and the style images of a scale are resized to
//! `clamp(round(style_scale * longest side), 1, max_style_size)`. The tile size and overlap are
//! checked whether or not the image turns out to need tiles.

use deepstyle_proto::v1::{Init, JobSpec, Optimizer, StyleParams};

use super::JobError;
use crate::defaults;
use crate::layers::{deepest, layer_position, min_side, receptive_field};
use crate::progressive::tile_phases;
use crate::scales::{plan_scales, Scale, ScaleError, ScalePlanOptions};
use crate::tiling::{plan_tiles, tile_core, Rect, Tile, TilePlan, HALO_ALIGN};

/// Largest output side accepted, in pixels.
pub const MAX_SIZE_PX: u32 = 16384;

/// Most iterations accepted at the finest scale.
pub const MAX_ITERATIONS: u32 = 100_000;

/// Largest halo accepted, in pixels.
pub const MAX_HALO_PX: u32 = 4096;

const DEFAULT_SIZE_PX: u32 = 512;
const DEFAULT_ITERATIONS: u32 = 500;
const DEFAULT_TILE_SIZE_PX: u32 = 512;
const DEFAULT_OVERLAP_PX: u32 = 128;
const DEFAULT_MAX_STYLE_SIZE_PX: u32 = 1024;
const DEFAULT_LEARNING_RATE: f64 = 0.02;
const DEFAULT_LBFGS_HISTORY: u32 = 100;

fn invalid(field: &str, reason: impl Into<String>) -> JobError {
    JobError::InvalidArgument {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Returns the spec with every zero or absent value replaced by its documented default.
pub fn with_defaults(mut spec: JobSpec) -> JobSpec {
    let params = spec.params.get_or_insert_with(StyleParams::default);
    if params.content_layers.is_empty() {
        params.content_layers = defaults::CONTENT_LAYERS.map(String::from).to_vec();
    }
    if params.style_layers.is_empty() {
        params.style_layers = defaults::STYLE_LAYERS.map(String::from).to_vec();
    }
    params
        .content_weight
        .get_or_insert(defaults::CONTENT_WEIGHT);
    params.style_weight.get_or_insert(defaults::STYLE_WEIGHT);
    params.tv_weight.get_or_insert(defaults::TV_WEIGHT);
    if params.learning_rate == 0.0 {
        params.learning_rate = DEFAULT_LEARNING_RATE;
    }
    if params.lbfgs_history == 0 {
        params.lbfgs_history = DEFAULT_LBFGS_HISTORY;
    }
    if spec.styles.iter().all(|s| s.weight == 0.0) {
        spec.styles.iter_mut().for_each(|s| s.weight = 1.0);
    }
    let zero_default = |v: &mut u32, d: u32| *v = if *v == 0 { d } else { *v };
    zero_default(&mut spec.size, DEFAULT_SIZE_PX);
    zero_default(&mut spec.iterations, DEFAULT_ITERATIONS);
    zero_default(&mut spec.max_style_size, DEFAULT_MAX_STYLE_SIZE_PX);
    zero_default(&mut spec.tile_size, DEFAULT_TILE_SIZE_PX);
    if spec.overlap == 0 {
        // The default shrinks to fit a small core; `validate` refuses a core that is too small.
        let core = tile_core(spec.tile_size, halo(&spec)).unwrap_or(0);
        spec.overlap = DEFAULT_OVERLAP_PX.min(max_overlap(core)).max(1);
    }
    zero_default(&mut spec.base_size, crate::scales::DEFAULT_BASE_SIZE_PX);
    if spec.style_scale == 0.0 {
        spec.style_scale = 1.0;
    }
    if spec.scale_ratio == 0.0 {
        spec.scale_ratio = crate::scales::DEFAULT_SCALE_RATIO;
    }
    spec
}

/// Checks the parts of a (defaulted) spec that do not need the images.
pub fn validate(spec: &JobSpec) -> Result<(), JobError> {
    if !is_sha256(&spec.content_sha256) {
        return Err(invalid("content_sha256", "must be 64 lowercase hex digits"));
    }
    if spec.styles.is_empty() {
        return Err(invalid("styles", "at least one style image is needed"));
    }
    for (i, style) in spec.styles.iter().enumerate() {
        if !is_sha256(&style.image_sha256) {
            return Err(invalid(
                &format!("styles[{i}].image_sha256"),
                "must be 64 hex digits",
            ));
        }
        if !(style.weight.is_finite() && style.weight >= 0.0) {
            return Err(invalid(
                &format!("styles[{i}].weight"),
                "must be finite and >= 0",
            ));
        }
    }
    let params = spec.params.clone().unwrap_or_default();
    if params.init() == Init::Image && spec.init_sha256.is_none() {
        return Err(invalid(
            "init_sha256",
            "params.init is INIT_IMAGE but no init image given",
        ));
    }
    if let Some(init) = &spec.init_sha256 {
        if !is_sha256(init) {
            return Err(invalid("init_sha256", "must be 64 lowercase hex digits"));
        }
    }
    if spec.size > MAX_SIZE_PX {
        return Err(invalid("size", format!("must be at most {MAX_SIZE_PX}")));
    }
    if spec.iterations > MAX_ITERATIONS {
        return Err(invalid(
            "iterations",
            format!("must be at most {MAX_ITERATIONS}"),
        ));
    }
    for (field, layers) in [
        ("params.content_layers", &params.content_layers),
        ("params.style_layers", &params.style_layers),
    ] {
        if let Some(bad) = layers.iter().find(|l| layer_position(l).is_none()) {
            return Err(invalid(
                field,
                match bad.trim() {
                    "" => "an empty layer name (a stray comma?)".to_owned(),
                    _ => format!("unknown VGG19 layer {bad:?}"),
                },
            ));
        }
    }
    for (field, value) in [
        (
            "params.content_weight",
            params.content_weight.unwrap_or(0.0),
        ),
        ("params.style_weight", params.style_weight.unwrap_or(0.0)),
        ("params.tv_weight", params.tv_weight.unwrap_or(0.0)),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(invalid(field, "must be finite and >= 0"));
        }
    }
    if params.optimizer() == Optimizer::Adam
        && !(params.learning_rate.is_finite() && params.learning_rate > 0.0)
    {
        return Err(invalid("params.learning_rate", "must be finite and > 0"));
    }
    if params.lbfgs_history > 1000 {
        return Err(invalid("params.lbfgs_history", "must be at most 1000"));
    }
    if !(spec.style_scale.is_finite() && spec.style_scale > 0.0 && spec.style_scale <= 100.0) {
        return Err(invalid("style_scale", "must be in (0, 100]"));
    }
    if spec.max_style_size > MAX_SIZE_PX {
        return Err(invalid(
            "max_style_size",
            format!("must be at most {MAX_SIZE_PX}"),
        ));
    }
    if spec.tile_size > MAX_SIZE_PX {
        return Err(invalid(
            "tile_size",
            format!("must be at most {MAX_SIZE_PX}"),
        ));
    }
    if spec.halo.is_some_and(|h| h > MAX_HALO_PX) {
        return Err(invalid("halo", format!("must be at most {MAX_HALO_PX}")));
    }
    let halo = halo(spec);
    let core = checked_core(spec.tile_size, halo)?;
    if spec.overlap > max_overlap(core) {
        return Err(invalid(
            "overlap",
            format!(
                "{} px does not fit tiles of {} px: their cores are {core} px (inside a {halo} px \
                 halo) and two overlaps must not meet in one core; use at most {} or a larger \
                 tile_size",
                spec.overlap,
                spec.tile_size,
                max_overlap(core)
            ),
        ));
    }
    Ok(())
}

/// Returns the halo of a spec: as given, else half the receptive field of its deepest layer.
pub fn halo(spec: &JobSpec) -> u32 {
    if let Some(halo) = spec.halo {
        return halo;
    }
    let params = spec.params.clone().unwrap_or_default();
    let layers = params.content_layers.iter().chain(&params.style_layers);
    layers
        .filter_map(|l| receptive_field(l))
        .max()
        .unwrap_or(1)
        .div_ceil(2)
}

/// Returns the widest overlap tiles with `core` px cores allow: the two overlaps of a core must
/// not meet.
pub fn max_overlap(core: u32) -> u32 {
    core.saturating_sub(1) / 2
}

/// Returns the core of tiles of `tile_size` around `halo`, or the error naming the least tile
/// size when it is under [`MIN_TILE_CORE_PX`].
fn checked_core(tile_size: u32, halo: u32) -> Result<u32, JobError> {
    tile_core(tile_size, halo)
        .filter(|&core| core >= MIN_TILE_CORE_PX)
        .ok_or_else(|| {
            invalid(
                "tile_size",
                format!(
                    "{tile_size} leaves a core under {MIN_TILE_CORE_PX} px inside a halo of \
                     {halo} px (and {} px of alignment); use at least {}",
                    HALO_ALIGN - 1,
                    2 * halo + HALO_ALIGN - 1 + MIN_TILE_CORE_PX
                ),
            )
        })
}

/// The scales and tiles of one job, derived from its spec and output size.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The pyramid, coarsest first; the last scale is the output size.
    pub scales: Vec<Scale>,
    /// The tile plan of each scale, `None` where the scale is optimised whole.
    pub tiles: Vec<Option<TilePlan>>,
    /// Context around each tile, in pixels.
    pub halo: u32,
    /// Longest side of the style images at each scale.
    pub style_sizes: Vec<u32>,
}

impl JobPlan {
    /// Returns how many tile tasks a scale has (1 when it is optimised whole).
    pub fn num_tiles(&self, scale: usize) -> usize {
        self.tiles[scale].as_ref().map_or(1, TilePlan::num_tiles)
    }

    /// Returns the tile indices of a scale grouped in the phases they run in (see
    /// [`crate::progressive`]), empty phases left out; a whole scale is one phase of tile 0.
    pub fn phases(&self, scale: usize) -> Vec<Vec<usize>> {
        match self.tiles.get(scale) {
            Some(Some(plan)) => tile_phases(plan)
                .iter()
                .filter(|phase| !phase.is_empty())
                .map(|phase| phase.iter().map(|t| t.index).collect())
                .collect(),
            _ => vec![vec![0]],
        }
    }

    /// Returns the crop (halo included) and the inner rect relative to it of a tile task.
    pub fn tile_rects(&self, scale: usize, tile: usize) -> Option<(Rect, Rect)> {
        let s = self.scales.get(scale)?;
        match &self.tiles[scale] {
            None => (tile == 0).then(|| {
                let full = Rect::new(0, 0, s.width, s.height);
                (full, full)
            }),
            Some(plan) => {
                let tile: &Tile = plan.tile(tile)?;
                Some((
                    plan.halo_rect(tile, self.halo),
                    plan.inner_rect(tile, self.halo),
                ))
            }
        }
    }
}

/// Smallest tile core accepted: smaller cores multiply the tiles (a 1 px core would cut a
/// 250 px image into tens of thousands) for no gain.
pub const MIN_TILE_CORE_PX: u32 = 32;

/// Plans a validated spec for an output of `width` x `height`.
pub fn plan(spec: &JobSpec, width: u32, height: u32) -> Result<JobPlan, JobError> {
    let params = spec.params.clone().unwrap_or_default();
    let halo = halo(spec);
    let options = ScalePlanOptions {
        num_scales: spec.num_scales,
        scale_ratio: spec.scale_ratio,
        base_size: spec.base_size,
        iterations: spec.iterations,
        ..ScalePlanOptions::default()
    };
    let scales = plan_scales(width, height, &options).map_err(|e| {
        let field = match e {
            ScaleError::EmptyOutput { .. } => "size",
            ScaleError::InvalidRatio { .. } => "scale_ratio",
            ScaleError::EmptyBase { .. } => "base_size",
            ScaleError::NoIterations { .. } | ScaleError::InvalidIterationFactor { .. } => {
                "iterations"
            }
            _ => "num_scales",
        };
        invalid(field, e.to_string())
    })?;
    let layers = params.content_layers.iter().chain(&params.style_layers);
    if let Some(deepest) = deepest(layers.map(String::as_str)) {
        let least = min_side(deepest).unwrap_or(1);
        if let Some(small) = scales.iter().find(|s| s.width.min(s.height) < least) {
            return Err(invalid(
                "size",
                format!(
                    "scale {} would be {}x{}, but {deepest} needs at least {least} px on each \
                     side: raise the size or base size, or use a less elongated image",
                    small.index, small.width, small.height
                ),
            ));
        }
    }
    let mut tiles = Vec::with_capacity(scales.len());
    for scale in &scales {
        if scale.width.max(scale.height) <= spec.tile_size {
            tiles.push(None);
            continue;
        }
        let core = checked_core(spec.tile_size, halo)?;
        let plan = plan_tiles(scale.width, scale.height, core, spec.overlap)
            .map_err(|e| invalid("overlap", e.to_string()))?;
        tiles.push(Some(plan));
    }
    let style_sizes = scales
        .iter()
        .map(|s| {
            let longest = (spec.style_scale * f64::from(s.width.max(s.height))).round();
            (longest.min(f64::from(u32::MAX)) as u32).clamp(1, spec.max_style_size.max(1))
        })
        .collect();
    Ok(JobPlan {
        scales,
        tiles,
        halo,
        style_sizes,
    })
}

/// Returns whether `value` is a lowercase hex sha256.
pub fn is_sha256(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use deepstyle_proto::v1::StyleInput;

    use super::*;

    fn spec(size: u32, tile_size: u32) -> JobSpec {
        with_defaults(JobSpec {
            content_sha256: "a".repeat(64),
            styles: vec![StyleInput {
                image_sha256: "b".repeat(64),
                weight: 1.0,
            }],
            size,
            tile_size,
            ..JobSpec::default()
        })
    }

    fn refusal(spec: &JobSpec, width: u32, height: u32) -> String {
        plan(spec, width, height).unwrap_err().to_string()
    }

    #[test]
    fn a_scale_too_small_for_the_deepest_layer_is_refused_before_any_work() {
        // relu5_1 (the default) needs 17 px on each side.
        let err = refusal(&spec(16, 512), 16, 12);
        assert!(err.contains("size") && err.contains("relu5_1"), "{err}");
        assert!(err.contains("16x12") && err.contains("17 px"), "{err}");
        // An elongated image fails on its short side.
        let err = refusal(&spec(160, 512), 160, 3);
        assert!(err.contains("160x3"), "{err}");
        assert!(plan(&spec(17, 512), 17, 17).is_ok());
    }

    #[test]
    fn tiles_whose_core_is_tiny_are_refused() {
        // Default halo 78: 2 * 78 + 15 + 32 = 203 px is the least tile.
        let err = refusal(&spec(250, 202), 250, 188);
        assert!(
            err.contains("tile_size") && err.contains("at least 203"),
            "{err}"
        );
        let plan = plan(&spec(250, 203), 250, 188).unwrap();
        let tiles = plan.tiles[plan.scales.len() - 1].as_ref().unwrap();
        assert_eq!(tiles.tile_size(), MIN_TILE_CORE_PX);
    }

    #[test]
    fn tile_size_and_overlap_are_checked_even_when_nothing_is_tiled() {
        // 64 px fits one tile of any size, yet a tile size with no core is still refused.
        let err = validate(&spec(64, 202)).unwrap_err().to_string();
        assert!(err.contains("tile_size") && err.contains("203"), "{err}");
        assert!(validate(&spec(64, 203)).is_ok());
    }

    #[test]
    fn the_default_overlap_shrinks_to_fit_and_a_wider_one_asked_for_is_refused() {
        // Default halo 78: a 288 px tile has a 288 - 156 - 15 = 117 px core, room for 58 px.
        assert_eq!(halo(&spec(1000, 288)), 78);
        assert_eq!(spec(1000, 288).overlap, 58);
        assert_eq!(spec(1000, 512).overlap, DEFAULT_OVERLAP_PX);
        assert!(validate(&spec(1000, 288)).is_ok());

        let wide = with_defaults(JobSpec {
            overlap: 59,
            ..spec(1000, 288)
        });
        assert_eq!(wide.overlap, 59);
        let err = validate(&wide).unwrap_err().to_string();
        assert!(
            err.contains("overlap") && err.contains("117 px") && err.contains("at most 58"),
            "{err}"
        );
        // An explicit halo changes the room.
        let narrow_halo = with_defaults(JobSpec {
            overlap: 59,
            halo: Some(8),
            ..spec(1000, 288)
        });
        assert!(validate(&narrow_halo).is_ok());
    }
}
