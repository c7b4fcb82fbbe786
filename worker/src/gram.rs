//! Gram matrices of feature maps, the style statistic of Gatys et al.
//!
//! For features `F` of shape `[C, H*W]` the Gram matrix is `F Fᵀ / (H*W)`: the
//! sum over positions divided by their number, so the targets of a style image
//! are comparable across image sizes and tiles.

use tch::Tensor;

use crate::error::Result;

/// Computes the position-normalised Gram matrix `[C, C]` of `feats` (`[1, C, H, W]`).
pub fn gram(feats: &Tensor) -> Result<Tensor> {
    let (_, c, h, w) = feats.size4()?;
    let xs = feats.f_reshape([c, h * w])?;
    Ok(xs.f_matmul(&xs.f_tr()?)?.f_div_scalar((h * w) as f64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_of_hand_made_tensor() {
        // Two channels over a 1x3 image: a = [1, 2, 3], b = [0, 1, -1].
        let feats = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 0.0, 1.0, -1.0]).reshape([1, 2, 1, 3]);
        let g = Vec::<f32>::try_from(gram(&feats).unwrap().reshape([-1])).unwrap();
        // a.a = 14, a.b = -1, b.b = 2, each divided by 3 positions.
        let expected = [14.0 / 3.0, -1.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0];
        for (got, want) in g.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn gram_is_size_invariant_for_repeated_content() {
        let feats = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 1.5]).reshape([1, 2, 1, 2]);
        let tiled = feats.repeat([1, 1, 3, 2]);
        let diff = (gram(&feats).unwrap() - gram(&tiled).unwrap())
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
    }
}
