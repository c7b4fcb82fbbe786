//! Canvas statistics measured tile by tile agree with the whole image's (real weights, CPU).

mod common;

use deepstyle_coordinator::tiling::plan_tiles;
use deepstyle_worker::canvas::canvas_grams;
use deepstyle_worker::gram::gram;
use deepstyle_worker::tensor_image::to_tensor;
use deepstyle_worker::{Pooling, Vgg19};
use tch::{Device, Tensor};

const LAYERS: [&str; 4] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"];

fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).norm().double_value(&[]) / b.norm().double_value(&[])
}

#[test]
fn blend_weighted_tile_grams_add_up_to_the_whole_image_gram() {
    let vgg = Vgg19::load(&common::weights(), Device::Cpu, Pooling::Max, "relu4_1").unwrap();
    let image = common::example("tubingen.jpg", 160);
    let (width, height) = image.dimensions();
    let layers: Vec<String> = LAYERS.iter().map(|l| l.to_string()).collect();
    let whole: Vec<Tensor> = tch::no_grad(|| {
        vgg.forward(&to_tensor(&image, Device::Cpu).unwrap(), &LAYERS)
            .unwrap()
            .iter()
            .map(|f| gram(f).unwrap())
            .collect()
    });
    let plan = plan_tiles(width, height, 64, 24).unwrap();
    assert!(plan.tiles().len() >= 4);
    // 42 px is half the receptive field of relu4_1, the halo a render with these layers gets.
    let tiled = canvas_grams(&vgg, &image, &plan, 42, &layers).unwrap();
    for ((layer, t), w) in LAYERS.iter().zip(&tiled).zip(&whole) {
        let error = relative_error(t, w);
        eprintln!("{layer}: tiles vs whole image {error:.4}");
        assert!(error < 0.05, "{layer}: relative error {error}");
    }
    // Without the halo the deepest layer's tile features lose their context.
    let bare = canvas_grams(&vgg, &image, &plan, 0, &layers).unwrap();
    let with_halo = relative_error(&tiled[3], &whole[3]);
    let without = relative_error(&bare[3], &whole[3]);
    assert!(without > 2.0 * with_halo, "{without} vs {with_halo}");
}
