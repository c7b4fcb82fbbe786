//! The style target of a job: blended Gram matrices of its style images.
//!
//! Computed once per job and scale and shared by every tile, so that all tiles
//! pull towards the same style statistics. Gram matrices are normalised by the
//! number of positions (see [`crate::gram`]), which makes one target valid for
//! tiles of any size.

use image::Rgb32FImage;
use tch::Tensor;

use crate::error::{EngineError, Result};
use crate::gram::gram;
use crate::tensor_image::to_tensor;
use crate::vgg::Vgg19;

/// One style image with its blend weight.
#[derive(Debug, Clone, Copy)]
pub struct StyleImage<'a> {
    /// The painting, already resized to the style scale.
    pub image: &'a Rgb32FImage,
    /// Its relative weight; weights are normalised to sum to one.
    pub weight: f64,
}

/// The Gram matrix per style layer that every tile of a job is optimised towards.
#[derive(Debug)]
pub struct StyleTarget {
    layers: Vec<String>,
    grams: Vec<Tensor>,
}

impl StyleTarget {
    /// Computes the weighted blend of the style images' Gram matrices at `layers`.
    pub fn compute(vgg: &Vgg19, styles: &[StyleImage<'_>], layers: &[String]) -> Result<Self> {
        if styles.is_empty() {
            return Err(invalid(
                "style images",
                "at least one style image is needed".into(),
            ));
        }
        if let Some(bad) = styles
            .iter()
            .find(|s| !(s.weight.is_finite() && s.weight >= 0.0))
        {
            return Err(invalid(
                "style blend weights",
                format!("weight {} is not >= 0", bad.weight),
            ));
        }
        let total: f64 = styles.iter().map(|s| s.weight).sum();
        if total <= 0.0 {
            return Err(invalid("style blend weights", "weights sum to zero".into()));
        }
        let names: Vec<&str> = layers.iter().map(String::as_str).collect();
        let grams = tch::no_grad(|| -> Result<Vec<Tensor>> {
            let mut sums: Vec<Option<Tensor>> = (0..layers.len()).map(|_| None).collect();
            for style in styles {
                let xs = to_tensor(style.image, vgg.device())?;
                for (sum, feats) in sums.iter_mut().zip(vgg.forward(&xs, &names)?) {
                    let g = gram(&feats)?.f_mul_scalar(style.weight / total)?;
                    *sum = Some(match sum.take() {
                        Some(acc) => acc.f_add(&g)?,
                        None => g,
                    });
                }
            }
            Ok(sums
                .into_iter()
                .map(|g| g.expect("one gram per layer"))
                .collect())
        })?;
        Ok(Self {
            layers: layers.to_vec(),
            grams,
        })
    }

    /// Returns the style layers, in the order of [`StyleTarget::grams`].
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// Returns the target Gram matrices, one per layer.
    pub fn grams(&self) -> &[Tensor] {
        &self.grams
    }
}

fn invalid(field: &'static str, reason: String) -> EngineError {
    EngineError::InvalidOption { field, reason }
}
