//! Helpers shared by the engine's integration tests (real weights, CPU).

use std::path::PathBuf;

use deepstyle_coordinator::imaging::{self, DecodeLimits};
use image::Rgb32FImage;

/// Returns the converted weights of this checkout, as `scripts/setup.sh` writes them.
pub(crate) fn weights() -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/vgg19_normalised.safetensors");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh first",
        path.display()
    );
    path
}

/// Loads a bundled example image resized so its longest side is `longest`.
#[allow(dead_code)] // Not every test binary renders examples.
pub(crate) fn example(name: &str, longest: u32) -> Rgb32FImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/inputs")
        .join(name);
    let loaded = imaging::load(&path, &DecodeLimits::default()).expect("bundled example decodes");
    let (w, h) = imaging::fit_longest_side(loaded.rgb.width(), loaded.rgb.height(), longest);
    imaging::resize(&loaded.rgb, w, h)
}
