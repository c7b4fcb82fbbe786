//! The style target of a job: blended Gram matrices of its style images.
//!
//! Computed once per job and scale and shared by every tile, so that all tiles
//! pull towards the same style statistics. Gram matrices are normalised by the
//! number of positions (see [`crate::gram`]), which makes one target valid for
//! tiles of any size.
//!
//! For a tiled scale the target also holds the weighted mean Gram matrices of the scale's start
//! canvas (see [`crate::canvas`]). At the shallow layers (at most [`SHIFTED_MAX_POOLINGS`]
//! poolings deep) each tile aims at its own start statistics shifted by the canvas's shortfall,
//! `T + G_tile - G_canvas` ([`StyleTarget::for_tile`]): the upsampled start lacks fine texture
//! everywhere, and the tiles' weighted targets then add up to the style target over the whole
//! canvas instead of every tile growing the painting's strongest strokes on its own. Deeper
//! layers aim at `T` itself: there the start statistics of a small tile are a poor guide, and
//! shifting them made the stitched image's style loss larger (numbers in the README).

use image::Rgb32FImage;
use std::io::Write;

use tch::{Device, Tensor};

use crate::error::{EngineError, Result};
use crate::gram::gram;
use crate::tensor_image::to_tensor;
use crate::vgg::{poolings_before, Vgg19};

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
    /// Weighted mean Gram matrices of a tiled scale's start canvas, one per layer.
    canvas: Option<Vec<Tensor>>,
}

/// Deepest layers (by poolings before them) whose tile targets are shifted by the canvas.
pub const SHIFTED_MAX_POOLINGS: u32 = 1;

/// Name prefix of the canvas statistics in the serialised target.
const CANVAS_PREFIX: &str = "canvas_";

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
            canvas: None,
        })
    }

    /// Attaches the start canvas's weighted mean Gram matrices, one per layer of the target.
    pub fn with_canvas(mut self, canvas: Vec<Tensor>) -> Result<Self> {
        self.check_shapes("canvas statistics", &canvas)?;
        self.canvas = Some(canvas);
        Ok(self)
    }

    /// Returns the start canvas's weighted mean Gram matrices, if measured.
    pub fn canvas(&self) -> Option<&[Tensor]> {
        self.canvas.as_deref()
    }

    /// Returns the target of one tile whose start image has the weighted Gram matrices `local`:
    /// `T + local - canvas` at layers at most [`SHIFTED_MAX_POOLINGS`] poolings deep and `T`
    /// below them, or the target itself when no canvas was measured.
    pub fn for_tile(&self, local: &[Tensor]) -> Result<Self> {
        let Some(canvas) = &self.canvas else {
            return Ok(self.shallow_clone());
        };
        self.check_shapes("tile statistics", local)?;
        let grams = self
            .grams
            .iter()
            .zip(local.iter().zip(canvas))
            .zip(&self.layers)
            .map(|((t, (l, c)), layer)| {
                if poolings_before(layer)? <= SHIFTED_MAX_POOLINGS {
                    Ok(t.f_add(&l.f_sub(c)?)?)
                } else {
                    Ok(t.shallow_clone())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers: self.layers.clone(),
            grams,
            canvas: None,
        })
    }

    fn shallow_clone(&self) -> Self {
        Self {
            layers: self.layers.clone(),
            grams: self.grams.iter().map(Tensor::shallow_clone).collect(),
            canvas: self
                .canvas
                .as_ref()
                .map(|c| c.iter().map(Tensor::shallow_clone).collect()),
        }
    }

    fn check_shapes(&self, what: &str, grams: &[Tensor]) -> Result<()> {
        let same = grams.len() == self.grams.len()
            && grams
                .iter()
                .zip(&self.grams)
                .all(|(a, b)| a.size() == b.size());
        if same {
            Ok(())
        } else {
            Err(invalid(
                "style target",
                format!(
                    "{what} do not match the target's {} layers",
                    self.layers.len()
                ),
            ))
        }
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
            .chain(
                self.canvas
                    .iter()
                    .flatten()
                    .zip(&self.layers)
                    .enumerate()
                    .map(|(i, (gram, layer))| {
                        (
                            format!("{CANVAS_PREFIX}{i:03}_{layer}"),
                            gram.to_device(Device::Cpu),
                        )
                    }),
            )
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
        let mut canvas = Vec::new();
        for (name, gram) in named {
            let (plain, is_canvas) = match name.strip_prefix(CANVAS_PREFIX) {
                Some(rest) => (rest, true),
                None => (name.as_str(), false),
            };
            let Some((_, layer)) = plain.split_once('_') else {
                return Err(invalid("style target", format!("bad tensor name {name:?}")));
            };
            let gram = gram.f_to_device(device)?;
            if is_canvas {
                canvas.push(gram);
            } else {
                layers.push(layer.to_owned());
                grams.push(gram);
            }
        }
        if layers.is_empty() {
            return Err(invalid("style target", "no Gram matrices".into()));
        }
        let target = Self {
            layers,
            grams,
            canvas: None,
        };
        if canvas.is_empty() {
            Ok(target)
        } else {
            target.with_canvas(canvas)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.reshape([-1])).unwrap()
    }

    fn target() -> StyleTarget {
        let gram = |v: f32, c: i64| Tensor::full([c, c], f64::from(v), (Kind::Float, Device::Cpu));
        StyleTarget {
            layers: vec!["relu1_1".into(), "relu2_1".into()],
            grams: vec![gram(1.0, 2), gram(2.0, 3)],
            canvas: None,
        }
        .with_canvas(vec![gram(0.5, 2), gram(4.0, 3)])
        .unwrap()
    }

    #[test]
    fn canvas_statistics_survive_the_round_trip() {
        let back = StyleTarget::from_bytes(&target().to_bytes().unwrap(), Device::Cpu).unwrap();
        assert_eq!(back.layers(), ["relu1_1", "relu2_1"]);
        assert_eq!(values(&back.grams()[1]), [2.0; 9]);
        assert_eq!(values(&back.canvas().unwrap()[0]), [0.5; 4]);
        let plain = StyleTarget {
            canvas: None,
            ..target().shallow_clone()
        };
        let back = StyleTarget::from_bytes(&plain.to_bytes().unwrap(), Device::Cpu).unwrap();
        assert!(back.canvas().is_none());
    }

    #[test]
    fn a_tile_aims_at_the_target_shifted_by_its_own_deviation() {
        let t = target();
        let local = vec![
            Tensor::full([2, 2], 0.75, (Kind::Float, Device::Cpu)),
            Tensor::full([3, 3], 3.0, (Kind::Float, Device::Cpu)),
        ];
        let tile = t.for_tile(&local).unwrap();
        // T + local - canvas: 1 + 0.75 - 0.5 and 2 + 3 - 4.
        assert_eq!(values(&tile.grams()[0]), [1.25; 4]);
        assert_eq!(values(&tile.grams()[1]), [1.0; 9]);
        assert!(tile.canvas().is_none());
        let err = t.for_tile(&local[..1]).unwrap_err().to_string();
        assert!(err.contains("tile statistics"), "{err}");
        // Deep layers aim at the target itself.
        let gram = |v: f64| Tensor::full([2, 2], v, (Kind::Float, Device::Cpu));
        let deep = StyleTarget {
            layers: vec!["relu3_1".into()],
            grams: vec![gram(1.0)],
            canvas: None,
        }
        .with_canvas(vec![gram(0.5)])
        .unwrap();
        assert_eq!(
            values(&deep.for_tile(&[gram(0.75)]).unwrap().grams()[0]),
            [1.0; 4]
        );
        // Without canvas statistics a tile aims at the target itself.
        let plain = StyleTarget {
            canvas: None,
            ..t.shallow_clone()
        };
        assert_eq!(
            values(&plain.for_tile(&local).unwrap().grams()[1]),
            [2.0; 9]
        );
    }
}
