//! The style target of a job: blended Gram matrices of its style images.
//!
//! Computed once per job and scale and shared by every tile, so that all tiles
//! pull towards the same style statistics. Gram matrices are normalised by the
//! number of positions (see [`crate::gram`]), which makes one target valid for
//! tiles of any size.

use image::Rgb32FImage;
use std::io::Write;

use tch::{Device, Tensor};

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

    /// Serialises the target as safetensors bytes, one tensor per layer, named
    /// `<position>_<layer>` so the order survives the round trip.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let named: Vec<(String, Tensor)> = self
            .layers
            .iter()
            .zip(&self.grams)
            .enumerate()
            .map(|(i, (layer, gram))| (format!("{i:03}_{layer}"), gram.to_device(Device::Cpu)))
            .collect();
        let file = tempfile::NamedTempFile::new().map_err(|e| io_error("write", &e))?;
        Tensor::write_safetensors(&named, file.path())?;
        std::fs::read(file.path()).map_err(|e| io_error("read", &e))
    }

    /// Reads a target written by [`StyleTarget::to_bytes`] onto `device`.
    pub fn from_bytes(bytes: &[u8], device: Device) -> Result<Self> {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| io_error("write", &e))?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| io_error("write", &e))?;
        let mut named = Tensor::read_safetensors(file.path())
            .map_err(|e| invalid("style target", format!("not safetensors: {e}")))?;
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut layers = Vec::with_capacity(named.len());
        let mut grams = Vec::with_capacity(named.len());
        for (name, gram) in named {
            let Some((_, layer)) = name.split_once('_') else {
                return Err(invalid("style target", format!("bad tensor name {name:?}")));
            };
            layers.push(layer.to_owned());
            grams.push(gram.f_to_device(device)?);
        }
        if layers.is_empty() {
            return Err(invalid("style target", "no Gram matrices".into()));
        }
        Ok(Self { layers, grams })
    }
}

fn io_error(what: &str, e: &std::io::Error) -> EngineError {
    invalid(
        "style target",
        format!("cannot {what} a temporary file: {e}"),
    )
}

fn invalid(field: &'static str, reason: String) -> EngineError {
    EngineError::InvalidOption { field, reason }
}
