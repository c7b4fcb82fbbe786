//! The optimised region of a tile at each layer's resolution, and its weighted Gram matrices.
//!
//! A tile optimises only its core (see [`crate::options::StylizeOptions::region`]); its feature
//! maps are cropped to the positions that core covers. When the core also carries its blend
//! weights (the raised-cosine weights the stitcher will give its pixels), the style statistic
//! of the core is the *weighted* Gram matrix `sum_p w_p f_p f_pᵀ / sum_p w_p`, so a tile counts
//! each position as much as the stitched image will. Weighted sums over all tiles of a canvas
//! then add up to the canvas's own statistics, which is what lets tiles share one global style
//! target (see [`crate::style_target::StyleTarget::for_tile`]).

use tch::{Device, Kind, Tensor};

use crate::error::{EngineError, Result};
use crate::options::{Region, RegionWeights};
use crate::vgg::poolings_before;

/// The feature positions `start..start + len` (pixels) covers at `stride`, as (first, count).
fn span(start: u32, len: u32, stride: i64, size: i64) -> (i64, i64) {
    let first = (i64::from(start) / stride).min(size - 1);
    let end = (i64::from(start) + i64::from(len) + stride - 1) / stride;
    (first, (end.min(size) - first).max(1))
}

/// Crops `feats` of `layer` to the feature positions that `region` (in image pixels) covers.
pub fn crop_features(feats: &Tensor, region: Option<Region>, layer: &str) -> Result<Tensor> {
    let Some(r) = region else {
        return Ok(feats.shallow_clone());
    };
    let stride = 1i64 << poolings_before(layer)?;
    let (_, _, h, w) = feats.size4()?;
    let (y0, rows) = span(r.y, r.height, stride, h);
    let (x0, cols) = span(r.x, r.width, stride, w);
    Ok(feats.f_narrow(2, y0, rows)?.f_narrow(3, x0, cols)?)
}

/// Averages one axis's pixel weights over each feature position's block of `stride` pixels.
fn axis_at_layer(weights: &[f32], start: u32, stride: i64, size: i64) -> Vec<f32> {
    let (first, count) = span(start, weights.len() as u32, stride, size);
    let len = weights.len() as i64;
    (first..first + count)
        .map(|k| {
            let lo = (k * stride - i64::from(start)).clamp(0, len);
            let hi = ((k + 1) * stride - i64::from(start)).clamp(0, len);
            if hi > lo {
                let block = &weights[lo as usize..hi as usize];
                block.iter().sum::<f32>() / block.len() as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// Returns the `[1, 1, h, w]` weights of the positions [`crop_features`] keeps at `layer`.
///
/// `feats` is the layer's uncropped feature map; the weights of each position are the mean of
/// the region's pixel weights it covers.
pub fn weight_map(
    feats: &Tensor,
    region: Region,
    weights: &RegionWeights,
    layer: &str,
) -> Result<Tensor> {
    if weights.xs.len() != region.width as usize || weights.ys.len() != region.height as usize {
        return Err(EngineError::InvalidOption {
            field: "region weights",
            reason: format!(
                "{}x{} weights for a {}x{} region",
                weights.xs.len(),
                weights.ys.len(),
                region.width,
                region.height
            ),
        });
    }
    let stride = 1i64 << poolings_before(layer)?;
    let (_, _, h, w) = feats.size4()?;
    let xs = axis_at_layer(&weights.xs, region.x, stride, w);
    let ys = axis_at_layer(&weights.ys, region.y, stride, h);
    let device: Device = feats.device();
    let xs = Tensor::f_from_slice(&xs)?.f_to_device(device)?;
    let ys = Tensor::f_from_slice(&ys)?.f_to_device(device)?;
    Ok(ys.f_outer(&xs)?.f_unsqueeze(0)?.f_unsqueeze(0)?)
}

/// Returns `sum_p w_p f_p f_pᵀ` (`[C, C]`) and `sum_p w_p` of `feats` (`[1, C, H, W]`) under
/// `weights` (`[1, 1, H, W]`).
pub fn weighted_gram_sums(feats: &Tensor, weights: &Tensor) -> Result<(Tensor, Tensor)> {
    let (_, c, h, w) = feats.size4()?;
    let xs = feats.f_reshape([c, h * w])?;
    let ws = weights.f_reshape([1, h * w])?;
    let sums = xs.f_mul(&ws)?.f_matmul(&xs.f_tr()?)?;
    Ok((sums, ws.f_sum(Kind::Float)?))
}

/// Returns the weighted Gram matrix `sum_p w_p f_p f_pᵀ / sum_p w_p`.
pub fn weighted_gram(feats: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (sums, total) = weighted_gram_sums(feats, weights)?;
    Ok(sums.f_div(&total.f_clamp_min(f64::from(f32::MIN_POSITIVE))?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gram::gram;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn uniform_weights_give_the_plain_gram() {
        tch::manual_seed(1);
        let feats = Tensor::randn([1, 3, 4, 5], (Kind::Float, Device::Cpu));
        let ones = Tensor::ones([1, 1, 4, 5], (Kind::Float, Device::Cpu));
        let halves = ones.multiply_scalar(0.5);
        assert!(
            max_diff(
                &weighted_gram(&feats, &ones).unwrap(),
                &gram(&feats).unwrap()
            ) < 1e-6
        );
        assert!(
            max_diff(
                &weighted_gram(&feats, &halves).unwrap(),
                &gram(&feats).unwrap()
            ) < 1e-6
        );
    }

    #[test]
    fn weights_pick_positions() {
        // Two positions with features a and b; all weight on b gives b bᵀ.
        let feats = Tensor::from_slice(&[1.0f32, 3.0, 2.0, -1.0]).reshape([1, 2, 1, 2]);
        let weights = Tensor::from_slice(&[0.0f32, 2.0]).reshape([1, 1, 1, 2]);
        let g =
            Vec::<f32>::try_from(weighted_gram(&feats, &weights).unwrap().reshape([-1])).unwrap();
        assert_eq!(g, [9.0, -3.0, -3.0, 1.0]);
    }

    #[test]
    fn weight_maps_average_each_block_and_match_the_crop() {
        // A 6-pixel-wide region from x = 2 at stride 4 (relu3_1) covers positions 0 and 1:
        // pixels 2..4 fall in block 0, pixels 4..8 in block 1.
        let feats = Tensor::zeros([1, 1, 3, 3], (Kind::Float, Device::Cpu));
        let region = Region {
            x: 2,
            y: 0,
            width: 6,
            height: 1,
        };
        let weights = RegionWeights {
            xs: vec![1.0, 0.5, 0.25, 0.25, 0.0, 0.0],
            ys: vec![2.0],
        };
        let map = weight_map(&feats, region, &weights, "relu3_1").unwrap();
        let cropped = crop_features(&feats, Some(region), "relu3_1").unwrap();
        assert_eq!(map.size(), [1, 1, 1, 2]);
        assert_eq!(cropped.size()[2..], map.size()[2..]);
        let values = Vec::<f32>::try_from(map.reshape([-1])).unwrap();
        assert_eq!(values, [1.5, 0.25]);
        let wrong = RegionWeights {
            xs: vec![1.0],
            ys: vec![1.0],
        };
        assert!(weight_map(&feats, region, &wrong, "relu3_1").is_err());
    }
}
