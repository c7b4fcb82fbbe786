//! Style statistics of a tiled scale's start canvas, measured tile by tile.
//!
//! A tiled scale starts from the upsampled result of the coarser scale, which was optimised
//! against the style target as a whole. The canvas's weighted mean Gram matrices (each tile's
//! core weighted by its blend weights, which sum to one at every pixel) tell how far the whole
//! canvas is from the target; each tile then corrects its share of that shortfall (see
//! [`crate::style_target::StyleTarget::for_tile`]). Measuring walks the same crops the tiles
//! get, halo included, so no full-resolution feature map is ever held.

use deepstyle_coordinator::stitch::crop;
use deepstyle_coordinator::tiling::TilePlan;
use image::Rgb32FImage;
use tch::{Kind, Tensor};

use crate::error::{EngineError, Result};
use crate::options::{Region, RegionWeights};
use crate::region::{crop_features, weight_map, weighted_gram_sums};
use crate::tensor_image::to_tensor;
use crate::vgg::Vgg19;

/// Returns, per layer, `sum_p w_p f_p f_pᵀ` over `region` of `image` and `sum_p w_p`.
pub fn region_gram_sums(
    vgg: &Vgg19,
    image: &Rgb32FImage,
    region: Region,
    weights: &RegionWeights,
    layers: &[String],
) -> Result<Vec<(Tensor, Tensor)>> {
    let names: Vec<&str> = layers.iter().map(String::as_str).collect();
    tch::no_grad(|| {
        let feats = vgg.forward(&to_tensor(image, vgg.device())?, &names)?;
        feats
            .iter()
            .zip(layers)
            .map(|(full, layer)| {
                let map = weight_map(full, region, weights, layer)?;
                weighted_gram_sums(&crop_features(full, Some(region), layer)?, &map)
            })
            .collect()
    })
}

/// Returns the weighted Gram matrices of `region` of `image`, one per layer.
pub fn region_grams(
    vgg: &Vgg19,
    image: &Rgb32FImage,
    region: Region,
    weights: &RegionWeights,
    layers: &[String],
) -> Result<Vec<Tensor>> {
    region_gram_sums(vgg, image, region, weights, layers)?
        .into_iter()
        .map(|(sums, total)| Ok(sums.f_div(&positive(&total)?)?))
        .collect()
}

/// Measures the weighted mean Gram matrices of `canvas` (the scale's start image, at the plan's
/// size) over every tile of `plan`, each tile seen with `halo` pixels of context.
pub fn canvas_grams(
    vgg: &Vgg19,
    canvas: &Rgb32FImage,
    plan: &TilePlan,
    halo: u32,
    layers: &[String],
) -> Result<Vec<Tensor>> {
    if canvas.dimensions() != (plan.width(), plan.height()) {
        return Err(EngineError::InvalidOption {
            field: "canvas",
            reason: format!(
                "canvas is {:?}, the tile plan {}x{}",
                canvas.dimensions(),
                plan.width(),
                plan.height()
            ),
        });
    }
    let mut totals: Option<Vec<(Tensor, Tensor)>> = None;
    for tile in plan.tiles() {
        let outer = plan.halo_rect(tile, halo);
        let inner = plan.inner_rect(tile, halo);
        let weights = plan.axis_weights(tile);
        let region = Region {
            x: inner.x,
            y: inner.y,
            width: inner.width,
            height: inner.height,
        };
        let weights = RegionWeights {
            xs: weights.xs,
            ys: weights.ys,
        };
        let sums = region_gram_sums(vgg, &crop(canvas, outer), region, &weights, layers)?;
        totals = Some(match totals.take() {
            None => sums,
            Some(acc) => acc
                .into_iter()
                .zip(sums)
                .map(|((s, n), (ds, dn))| Ok((s.f_add(&ds)?, n.f_add(&dn)?)))
                .collect::<Result<_>>()?,
        });
    }
    let totals = totals.ok_or_else(|| EngineError::InvalidOption {
        field: "canvas",
        reason: "the tile plan has no tiles".into(),
    })?;
    totals
        .into_iter()
        .map(|(sums, total)| Ok(sums.f_div(&positive(&total)?)?))
        .collect()
}

fn positive(total: &Tensor) -> Result<Tensor> {
    Ok(total
        .f_to_kind(Kind::Float)?
        .f_clamp_min(f64::from(f32::MIN_POSITIVE))?)
}
