//! Real renders with the real weights on tiny images (CPU).

mod common;

use deepstyle_worker::stylize::{measure, Silent};
use deepstyle_worker::{
    stylize, Init, OptimizerKind, Pooling, StyleImage, StyleTarget, StylizeOptions, Vgg19,
};
use image::Rgb32FImage;
use tch::Device;

fn luma(img: &Rgb32FImage) -> Vec<f64> {
    img.pixels()
        .map(|p| (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) as f64)
        .collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn setup(options: &StylizeOptions) -> (Vgg19, Rgb32FImage, StyleTarget) {
    let vgg = Vgg19::load(&common::weights(), Device::Cpu, Pooling::Max, "relu5_1").unwrap();
    let content = common::example("tubingen.jpg", 64);
    let style = common::example("starry_night.jpg", 64);
    let target = StyleTarget::compute(
        &vgg,
        &[StyleImage {
            image: &style,
            weight: 1.0,
        }],
        &options.style_layers,
    )
    .unwrap();
    (vgg, content, target)
}

#[test]
fn lbfgs_render_lowers_style_loss_tenfold_and_keeps_content() {
    let options = StylizeOptions {
        iterations: 60,
        ..StylizeOptions::default()
    };
    let (vgg, content, target) = setup(&options);
    let out = stylize(&vgg, &content, None, &target, &options, &mut Silent).unwrap();

    eprintln!("initial {:?}\nlast {:?}", out.initial, out.last);
    assert!(
        out.last.style * 10.0 <= out.initial.style,
        "style {:?} -> {:?}",
        out.initial,
        out.last
    );
    // The content term starts at zero (init from content) and must stay small next to the style it buys.
    assert!(
        out.last.content < out.initial.style * 0.1,
        "content loss {}",
        out.last.content
    );
    let r = correlation(&luma(&out.image), &luma(&content));
    assert!(
        r > 0.5,
        "output no longer resembles the photo: correlation {r}"
    );
    // The image did change: a stylised photo is not the photo.
    assert!(r < 0.99, "output is the photo unchanged: correlation {r}");

    let remeasured = measure(&vgg, &out.image, &content, &target, &options).unwrap();
    assert!(
        (remeasured.style - out.last.style).abs() <= 0.05 * out.last.style + 1e-6,
        "style loss re-measured on the returned image is {}, the render reported {}",
        remeasured.style,
        out.last.style
    );
}

#[test]
fn adam_render_from_noise_lowers_style_loss() {
    let options = StylizeOptions {
        iterations: 80,
        optimizer: OptimizerKind::Adam {
            learning_rate: 0.02,
        },
        init: Init::Random,
        ..StylizeOptions::default()
    };
    let (vgg, content, target) = setup(&options);
    let out = stylize(&vgg, &content, None, &target, &options, &mut Silent).unwrap();
    assert!(
        out.last.total() * 3.0 < out.initial.total(),
        "{:?} -> {:?}",
        out.initial,
        out.last
    );
}

#[test]
fn same_seed_gives_same_image() {
    let options = StylizeOptions {
        iterations: 5,
        init: Init::Random,
        seed: 7,
        ..StylizeOptions::default()
    };
    let (vgg, content, target) = setup(&options);
    let a = stylize(&vgg, &content, None, &target, &options, &mut Silent).unwrap();
    let b = stylize(&vgg, &content, None, &target, &options, &mut Silent).unwrap();
    assert_eq!(a.image, b.image);
    let other = StylizeOptions {
        seed: 8,
        ..options.clone()
    };
    let c = stylize(&vgg, &content, None, &target, &other, &mut Silent).unwrap();
    assert_ne!(a.image, c.image);
}

#[test]
fn too_small_image_gets_a_clear_error() {
    let options = StylizeOptions::default();
    let (vgg, _, target) = setup(&options);
    let tiny = Rgb32FImage::new(12, 40);
    let err = stylize(&vgg, &tiny, None, &target, &options, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("12x40") && err.contains("relu5_1"), "{err}");
}
