//! Measures planning and stitching of a large output: 16384 x 16384, tiles of 512 overlapping
//! by 128, each tile a constant colour.
//!
//! Run with `cargo run --release -p deepstyle-coordinator --example bench_stitch`; pass
//! `WIDTH HEIGHT TILE OVERLAP` to change the layout. Prints the time spent planning, making
//! tiles (kept apart from stitching), stitching and finishing, the largest deviation from the
//! constant (a check that the weights sum to one), and the peak resident memory. The canvas is
//! zeroed lazily, so the stitch time includes the page faults of its first touch.

use std::time::{Duration, Instant};

use deepstyle_coordinator::stitch::Stitcher;
use deepstyle_coordinator::tiling::plan_tiles;
use image::{Rgb, Rgb32FImage};

const COLOUR: [f32; 3] = [0.25, 0.5, 0.75];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [width, height, tile_size, overlap] = match args[..] {
        [] => [16384, 16384, 512, 128],
        [w, h, t, o] => [w, h, t, o],
        _ => return Err("usage: bench_stitch [WIDTH HEIGHT TILE OVERLAP]".into()),
    };

    let started = Instant::now();
    let plan = plan_tiles(width, height, tile_size, overlap)?;
    let planning = started.elapsed();

    let started = Instant::now();
    let mut stitcher = Stitcher::new(&plan)?;
    let allocating = started.elapsed();

    let (mut generating, mut stitching) = (Duration::ZERO, Duration::ZERO);
    let mut pixels = Rgb32FImage::new(0, 0);
    for tile in plan.tiles() {
        // Tiles of one size share a buffer, refilled each time, so no allocator noise is timed.
        let started = Instant::now();
        if pixels.dimensions() != (tile.rect.width, tile.rect.height) {
            pixels = Rgb32FImage::new(tile.rect.width, tile.rect.height);
        }
        pixels.pixels_mut().for_each(|px| *px = Rgb(COLOUR));
        generating += started.elapsed();

        let started = Instant::now();
        stitcher.add(tile, &pixels)?;
        stitching += started.elapsed();
    }

    let started = Instant::now();
    let canvas = stitcher.finish()?;
    let finishing = started.elapsed();

    let max_error = canvas
        .as_raw()
        .chunks_exact(3)
        .flat_map(|px| px.iter().zip(COLOUR).map(|(v, c)| (v - c).abs()))
        .fold(0.0f32, f32::max);
    let canvas_mib = canvas.as_raw().len() * size_of::<f32>() / (1 << 20);
    let pixels = f64::from(width) * f64::from(height);

    println!("output {width}x{height}, tile {tile_size}, overlap {overlap}");
    println!(
        "tiles: {} ({} x {})",
        plan.num_tiles(),
        plan.cols().len(),
        plan.rows().len()
    );
    println!("plan: {:.3} ms", planning.as_secs_f64() * 1e3);
    println!("canvas alloc: {:.3} ms", allocating.as_secs_f64() * 1e3);
    println!(
        "tile generation: {:.3} s (not part of stitching)",
        generating.as_secs_f64()
    );
    println!(
        "stitch (add): {:.3} s, {:.1} Mpx/s of output",
        stitching.as_secs_f64(),
        pixels / stitching.as_secs_f64() / 1e6
    );
    println!("finish: {:.3} ms", finishing.as_secs_f64() * 1e3);
    println!("max |output - constant|: {max_error:e}");
    println!("canvas: {canvas_mib} MiB");
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (VmHWM): {} MiB", kib / 1024),
        None => println!("peak RSS (VmHWM): unavailable"),
    }
    Ok(())
}

/// Reads the peak resident set size of this process from `/proc/self/status`, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
