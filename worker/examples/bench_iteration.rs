//! Benchmark: one optimisation iteration at 256x192 with L-BFGS and with Adam.
//!
//! Reports pixel-iterations per second and compares the implied arithmetic rate
//! (about 1.44 MFLOP per pixel per iteration for a forward and input-gradient
//! pass to relu5_1, per the design brief) with this machine's measured
//! single-precision matrix-multiply rate through the same libtorch.
//!
//! Run: `cargo run --release -p deepstyle-worker --example bench_iteration [-- cpu|cuda:0]`

use std::time::Instant;

use deepstyle_coordinator::imaging::{self, DecodeLimits};
use deepstyle_worker::stylize::{stylize, Observer, Progress};
use deepstyle_worker::{
    device, weights, OptimizerKind, Pooling, StyleImage, StyleTarget, StylizeOptions, Vgg19,
};
use tch::{Device, Kind, Tensor};

const WIDTH: u32 = 256;
const HEIGHT: u32 = 192;
const FLOP_PER_PIXEL_ITERATION: f64 = 1.44e6;
const WARMUP_ITERATIONS: u32 = 3;
const TIMED_ITERATIONS: u32 = 10;

fn main() -> anyhow::Result<()> {
    let device = device::parse_device(&std::env::args().nth(1).unwrap_or_else(|| "auto".into()))?;
    let vgg = Vgg19::load(&weights::default_path(), device, Pooling::Max, "relu5_1")?;
    let limits = DecodeLimits::default();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/inputs");
    let content = imaging::load(&root.join("tubingen.jpg"), &limits)?.rgb;
    let content = imaging::resize(&content, WIDTH, HEIGHT);
    let style = imaging::load(&root.join("starry_night.jpg"), &limits)?.rgb;
    let style = imaging::resize(&style, WIDTH, 160);
    let layers = StylizeOptions::default().style_layers;
    let target = StyleTarget::compute(
        &vgg,
        &[StyleImage {
            image: &style,
            weight: 1.0,
        }],
        &layers,
    )?;

    let matmul = matmul_flops(device);
    println!(
        "device {}, fp32 matmul {:.1} GFLOP/s",
        device::describe(device, None),
        matmul / 1e9
    );
    for (name, optimizer) in [
        ("lbfgs", OptimizerKind::Lbfgs { history_size: 100 }),
        (
            "adam",
            OptimizerKind::Adam {
                learning_rate: 0.02,
            },
        ),
    ] {
        let options = StylizeOptions {
            iterations: WARMUP_ITERATIONS + TIMED_ITERATIONS,
            optimizer,
            ..StylizeOptions::default()
        };
        let mut clock = Clock::default();
        let out = stylize(&vgg, &content, None, &target, &options, &mut clock)?;
        let timed = &clock.elapsed[WARMUP_ITERATIONS as usize - 1..];
        let per_iteration = (timed[timed.len() - 1] - timed[0]) / (timed.len() - 1) as f64;
        let pixel_its = (WIDTH * HEIGHT) as f64 / per_iteration;
        let achieved = pixel_its * FLOP_PER_PIXEL_ITERATION;
        println!(
            "{name:5}: {:.3} s/iteration, {:.3e} pixel-iterations/s, ~{:.1} GFLOP/s = {:.0}% of matmul ({} iterations run)",
            per_iteration,
            pixel_its,
            achieved / 1e9,
            100.0 * achieved / matmul,
            out.iterations
        );
    }
    Ok(())
}

/// Records when each iteration finished.
#[derive(Default)]
struct Clock {
    elapsed: Vec<f64>,
}

impl Observer for Clock {
    fn on_iteration(&mut self, progress: &Progress) {
        self.elapsed.push(progress.elapsed_secs);
    }
}

/// Measures single-precision matrix multiply throughput in FLOP/s.
fn matmul_flops(device: Device) -> f64 {
    let n = 1024;
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    let _ = a.matmul(&b).sum(Kind::Float).double_value(&[]);
    let reps = if device == Device::Cpu { 10 } else { 200 };
    let started = Instant::now();
    let mut acc = Tensor::zeros([n, n], (Kind::Float, device));
    for _ in 0..reps {
        acc += a.matmul(&b);
    }
    let _ = acc.sum(Kind::Float).double_value(&[]);
    (2.0 * (n * n * n) as f64 * reps as f64) / started.elapsed().as_secs_f64()
}
