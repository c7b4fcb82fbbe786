//! Safe image input and output for the whole product: the CLI, the coordinator and the workers
//! all read and write pictures through this module.
//!
//! Decoding takes untrusted bytes (a user's photo, an upload, a file on disk), detects the format
//! from its content, refuses decompression bombs before any pixel buffer is allocated, honours
//! EXIF orientation and hands back RGB in `[0, 1]` with any alpha split off, so that transparency
//! never reaches the style network. Encoding writes results atomically and in 8 or 16 bits.
//! Resizing serves the coarse-to-fine pyramid and the final output size.

use image::{ImageBuffer, Luma, Rgb32FImage};

mod decode;
mod encode;
mod error;
mod jpeg_end;
mod pixels;
mod resize;
#[cfg(test)]
mod samples;

pub use decode::{decode, load};
pub use encode::{check_output, encode_png, save, save_encoded, save_png_as};
pub use error::{ImagingError, Location, Result};
pub use resize::{fit_longest_side, resize, resize_alpha};

/// Default largest input file accepted, in bytes (3 GiB).
///
/// An uncompressed 16-bit RGBA TIFF at [`DEFAULT_MAX_PIXELS`] is 2 GiB, so every file this module
/// writes at the largest supported size can be read back. Files are streamed by their decoder
/// (only JPEG is read whole), so this bounds work rather than memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 3 << 30;

/// Default largest image accepted, in pixels: 16384 x 16384 (2^28).
///
/// Decoded to `f32` RGB that is 3 GiB, plus 1 GiB of alpha and up to 2 GiB of decoder buffer
/// while converting, which a 24 GiB node survives; anything a header claims beyond it is refused
/// before allocation.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 28;

/// A single-channel `f32` image, used for alpha planes with values in `[0, 1]`.
pub type GrayF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Bounds on what a decode may accept, checked before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest input accepted, in bytes.
    pub max_file_bytes: u64,
    /// Largest image accepted, in pixels (width times height).
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// A decoded image: colour for the network and, when the source had one, its alpha plane.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Colour in `[0, 1]`, grayscale already expanded to three equal channels.
    pub rgb: Rgb32FImage,
    /// Opacity in `[0, 1]`, present only when the source carried an alpha channel.
    pub alpha: Option<GrayF32>,
}

impl LoadedImage {
    /// Returns the width and height of the image in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        self.rgb.dimensions()
    }
}

/// Bits per channel of a written image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BitDepth {
    /// Eight bits per channel, which every output format supports.
    #[default]
    Eight,
    /// Sixteen bits per channel, for PNG and TIFF only.
    Sixteen,
}

/// Maps a value to `[0, 1]`, sending NaN to zero.
fn unit(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}
