//! The three terms of the style transfer objective.
//!
//! Gatys, Ecker and Bethge (CVPR 2016) minimise a weighted sum of a content
//! loss (squared distance between feature maps), a style loss (squared distance
//! between Gram matrices, see [`crate::gram`]) and, as in jcjohnson's
//! neural-style, a total-variation penalty that suppresses high-frequency
//! noise. Each loss here is a mean over its elements.

use tch::{Reduction, Tensor};

use crate::error::Result;
use crate::gram::gram;

/// Returns the mean squared distance between feature maps.
pub fn content_loss(feats: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(feats.f_mse_loss(target, Reduction::Mean)?)
}

/// Returns the mean squared distance between the Gram matrix of `feats` and `target_gram`.
pub fn style_loss(feats: &Tensor, target_gram: &Tensor) -> Result<Tensor> {
    Ok(gram(feats)?.f_mse_loss(target_gram, Reduction::Mean)?)
}

/// Returns the mean of squared differences between neighbouring pixels of `image` (`[1, C, H, W]`).
pub fn tv_loss(image: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = image.size4()?;
    let dy = image
        .f_narrow(2, 1, h - 1)?
        .f_sub(&image.f_narrow(2, 0, h - 1)?)?;
    let dx = image
        .f_narrow(3, 1, w - 1)?
        .f_sub(&image.f_narrow(3, 0, w - 1)?)?;
    Ok(dy
        .f_square()?
        .f_mean(None)?
        .f_add(&dx.f_square()?.f_mean(None)?)?)
}

/// Replaces `loss` by a surrogate whose gradient at `feats` has unit L1 norm.
///
/// This is neural-style's `-normalize_gradients`: each loss term's gradient
/// with respect to its layer is divided by its L1 norm, so no single layer
/// dominates. The surrogate's value is meaningless; report the raw loss.
pub fn normalized_surrogate(loss: &Tensor, feats: &Tensor) -> Result<Tensor> {
    let grads = Tensor::f_run_backward(&[loss], &[feats], true, false)?;
    let g = &grads[0];
    let scale = g.f_abs()?.f_sum(None)?.f_add_scalar(1e-8)?;
    Ok(feats.f_mul(&g.f_div(&scale)?.f_detach()?)?.f_sum(None)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Compares autograd's gradient of `f` at `x` with central finite differences in f64.
    fn check_gradient(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) {
        let x = x.to_kind(Kind::Double);
        let var = x.detach().set_requires_grad(true);
        f(&var).backward();
        let analytic = Vec::<f64>::try_from(var.grad().reshape([-1])).unwrap();
        let flat = Vec::<f64>::try_from(x.reshape([-1])).unwrap();
        let eps = 1e-6;
        for i in 0..flat.len() {
            let mut plus = flat.clone();
            plus[i] += eps;
            let mut minus = flat.clone();
            minus[i] -= eps;
            let eval = |v: &[f64]| f(&Tensor::from_slice(v).reshape(x.size())).double_value(&[]);
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * eps);
            let tol = 1e-6 + 1e-4 * numeric.abs();
            assert!(
                (analytic[i] - numeric).abs() < tol,
                "element {i}: autograd {} vs finite difference {numeric}",
                analytic[i]
            );
        }
    }

    fn random(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Double, Device::Cpu))
    }

    #[test]
    fn content_gradient_matches_finite_differences() {
        let target = random(&[1, 3, 4, 5], 1);
        check_gradient(&random(&[1, 3, 4, 5], 2), |x| {
            content_loss(x, &target).unwrap()
        });
    }

    #[test]
    fn style_gradient_matches_finite_differences() {
        let target = gram(&random(&[1, 3, 4, 4], 3)).unwrap();
        check_gradient(&random(&[1, 3, 4, 5], 4), |x| {
            style_loss(x, &target).unwrap()
        });
    }

    #[test]
    fn tv_gradient_matches_finite_differences() {
        check_gradient(&random(&[1, 3, 5, 4], 5), |x| tv_loss(x).unwrap());
    }

    #[test]
    fn tv_of_constant_image_is_zero_and_of_ramp_is_known() {
        let flat = Tensor::ones([1, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(tv_loss(&flat).unwrap().double_value(&[]), 0.0);
        // A horizontal ramp with step 0.5: dx^2 = 0.25 everywhere, dy = 0.
        let ramp = Tensor::arange(4, (Kind::Float, Device::Cpu))
            .multiply_scalar(0.5)
            .view([1, 1, 1, 4])
            .repeat([1, 3, 4, 1]);
        assert!((tv_loss(&ramp).unwrap().double_value(&[]) - 0.25).abs() < 1e-7);
    }

    #[test]
    fn normalized_surrogate_has_unit_l1_gradient() {
        let feats = random(&[1, 2, 3, 3], 6).set_requires_grad(true);
        let target = random(&[1, 2, 3, 3], 7);
        let loss = content_loss(&feats, &target)
            .unwrap()
            .multiply_scalar(1000.0);
        let surrogate = normalized_surrogate(&loss, &feats).unwrap();
        let g = Tensor::run_backward(&[&surrogate], &[&feats], false, false);
        let l1 = g[0].abs().sum(Kind::Double).double_value(&[]);
        assert!((l1 - 1.0).abs() < 1e-6, "{l1}");
    }
}
