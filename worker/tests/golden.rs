//! The loaded network is the real normalised VGG19: activations of a fixed
//! input match those Python torch computes from the same weights file
//! (`scripts/golden_activations.py` wrote the fixture).

mod common;

use deepstyle_worker::{Pooling, Vgg19};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

#[test]
fn activations_match_python_torch() {
    let golden: Value =
        serde_json::from_str(include_str!("fixtures/golden_activations.json")).unwrap();
    let (h, w) = (
        golden["height"].as_i64().unwrap(),
        golden["width"].as_i64().unwrap(),
    );
    let vgg = Vgg19::load(&common::weights(), Device::Cpu, Pooling::Max, "relu5_1").unwrap();

    // The same formula as the Python script, so no random generator is shared.
    let mut data = Vec::new();
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = 0.5
                    + 0.45 * (0.37 * y as f64 + 0.23 * x as f64 * (c + 1) as f64 + c as f64).sin();
                data.push(v as f32);
            }
        }
    }
    let xs = Tensor::from_slice(&data).reshape([1, 3, h, w]);
    let layers = ["relu1_1", "relu3_1", "relu5_1"];
    let outs = tch::no_grad(|| vgg.forward(&xs, &layers)).unwrap();

    for (name, out) in layers.iter().zip(outs) {
        let expected = &golden["layers"][name];
        let shape: Vec<i64> = expected["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(out.size(), shape, "{name} shape");
        let flat = Vec::<f64>::try_from(out.to_kind(Kind::Double).reshape([-1])).unwrap();
        let mean = flat.iter().sum::<f64>() / flat.len() as f64;
        let want_mean = expected["mean"].as_f64().unwrap();
        assert!(
            (mean - want_mean).abs() <= 1e-4 * want_mean.abs().max(1.0),
            "{name} mean {mean} vs {want_mean}"
        );
        let scale = expected["mean_abs"].as_f64().unwrap().max(1e-3);
        let indices = expected["indices"].as_array().unwrap();
        let values = expected["values"].as_array().unwrap();
        for (i, v) in indices.iter().zip(values) {
            let (i, v) = (i.as_u64().unwrap() as usize, v.as_f64().unwrap());
            assert!(
                (flat[i] - v).abs() <= 1e-3 * scale,
                "{name}[{i}] = {} vs python {v}",
                flat[i]
            );
        }
    }
}

#[test]
fn weights_with_a_wrong_shape_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let good = Tensor::read_safetensors(common::weights()).unwrap();
    let bad: Vec<(String, Tensor)> = good
        .into_iter()
        .map(|(n, t)| {
            if n == "conv2_1.weight" {
                (
                    n,
                    Tensor::zeros([128, 64, 1, 1], (Kind::Float, Device::Cpu)),
                )
            } else {
                (n, t)
            }
        })
        .collect();
    Tensor::write_safetensors(&bad, &path).unwrap();
    let err = Vgg19::load(&path, Device::Cpu, Pooling::Max, "relu3_1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv2_1.weight") && err.contains("bad.safetensors"),
        "{err}"
    );
    // A network cut before that layer never reads it.
    assert!(Vgg19::load(&path, Device::Cpu, Pooling::Max, "relu1_2").is_ok());
}

#[test]
fn weights_missing_a_tensor_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.safetensors");
    let kept: Vec<(String, Tensor)> = Tensor::read_safetensors(common::weights())
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != "conv4_2.bias")
        .collect();
    Tensor::write_safetensors(&kept, &path).unwrap();
    let err = Vgg19::load(&path, Device::Cpu, Pooling::Max, "relu4_2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv4_2.bias"), "{err}");
}

#[test]
fn garbage_weights_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.safetensors");
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = Vgg19::load(&path, Device::Cpu, Pooling::Max, "relu1_1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("garbage.safetensors"), "{err}");
}
