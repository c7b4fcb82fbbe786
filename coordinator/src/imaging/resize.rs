//! Resampling for the scale pyramid and the output size: Lanczos3 on `f32` planes, and the
//! arithmetic that fits an aspect ratio to a requested longest side.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Pixel, Rgb32FImage};

use super::{unit, GrayF32};

/// Resamples a colour image to `width` x `height` with a Lanczos3 filter, clamping to `[0, 1]`.
///
/// A requested side of zero counts as one pixel; an empty source gives a black image.
pub fn resize(image: &Rgb32FImage, width: u32, height: u32) -> Rgb32FImage {
    resample(image, width, height)
}

/// Resamples an alpha plane to `width` x `height` exactly as [`resize`] does a colour image.
pub fn resize_alpha(alpha: &GrayF32, width: u32, height: u32) -> GrayF32 {
    resample(alpha, width, height)
}

/// Returns the size with the same aspect ratio whose longest side is `longest`.
///
/// Each side of the result is at least one pixel; zero inputs count as one pixel.
pub fn fit_longest_side(width: u32, height: u32, longest: u32) -> (u32, u32) {
    let (width, height, longest) = (width.max(1), height.max(1), longest.max(1));
    let scale_short = |short: u32, long: u32| {
        let rounded =
            (u64::from(short) * u64::from(longest) + u64::from(long) / 2) / u64::from(long);
        // The short side never exceeds the long one, so the result fits in `longest`.
        u32::try_from(rounded).unwrap_or(longest).max(1)
    };

    if width >= height {
        (longest, scale_short(height, width))
    } else {
        (scale_short(width, height), longest)
    }
}

/// Resamples any `f32` image with Lanczos3 and clamps away the filter's ringing.
fn resample<P>(
    image: &ImageBuffer<P, Vec<f32>>,
    width: u32,
    height: u32,
) -> ImageBuffer<P, Vec<f32>>
where
    P: Pixel<Subpixel = f32> + 'static,
{
    let (width, height) = (width.max(1), height.max(1));
    if image.dimensions() == (width, height) {
        return image.clone();
    }

    let mut resized = imageops::resize(image, width, height, FilterType::Lanczos3);
    resized.iter_mut().for_each(|value| *value = unit(*value));
    resized
}

#[cfg(test)]
mod tests {
    use image::{Luma, Rgb};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fit_keeps_the_aspect_ratio_for_both_orientations() {
        assert_eq!(fit_longest_side(4000, 3000, 1000), (1000, 750));
        assert_eq!(fit_longest_side(3000, 4000, 1000), (750, 1000));
        assert_eq!(fit_longest_side(640, 640, 256), (256, 256));
        assert_eq!(fit_longest_side(100, 50, 16384), (16384, 8192));
    }

    #[test]
    fn fit_never_returns_a_zero_side() {
        assert_eq!(fit_longest_side(100_000, 1, 100), (100, 1));
        assert_eq!(fit_longest_side(0, 0, 10), (10, 10));
        assert_eq!(fit_longest_side(30, 20, 0), (1, 1));
    }

    proptest! {
        #[test]
        fn fit_hits_the_longest_side_and_keeps_the_ratio(
            width in 1u32..100_000,
            height in 1u32..100_000,
            longest in 1u32..20_000,
        ) {
            let (fit_width, fit_height) = fit_longest_side(width, height, longest);
            prop_assert_eq!(fit_width.max(fit_height), longest);
            prop_assert!(fit_width >= 1 && fit_height >= 1);

            // Rounding moves the short side by at most half a pixel, unless clamped up to one.
            let exact = f64::from(width.min(height)) * f64::from(longest)
                / f64::from(width.max(height));
            let short = f64::from(fit_width.min(fit_height));
            prop_assert!((short - exact).abs() <= 0.5 || short == 1.0);
        }
    }

    #[test]
    fn resize_keeps_a_flat_colour_and_reaches_the_requested_size() {
        let flat = Rgb32FImage::from_pixel(40, 30, Rgb([0.2, 0.5, 0.8]));
        let smaller = resize(&flat, 13, 7);
        assert_eq!(smaller.dimensions(), (13, 7));
        for pixel in smaller.pixels() {
            for (got, want) in pixel.0.iter().zip([0.2, 0.5, 0.8]) {
                assert!((got - want).abs() < 1e-4, "got {got}, want {want}");
            }
        }
    }

    #[test]
    fn resize_clamps_ringing_at_hard_edges() {
        // A black-white step overshoots with Lanczos3 unless clamped.
        let step = Rgb32FImage::from_fn(
            16,
            4,
            |x, _| if x < 8 { Rgb([0.0; 3]) } else { Rgb([1.0; 3]) },
        );
        let larger = resize(&step, 64, 16);
        assert!(larger.iter().all(|value| (0.0..=1.0).contains(value)));
        assert_eq!(larger.get_pixel(0, 0)[0], 0.0);
        assert_eq!(larger.get_pixel(63, 0)[0], 1.0);
    }

    #[test]
    fn resize_alpha_follows_the_colour_geometry() {
        let alpha = GrayF32::from_fn(20, 10, |x, _| Luma([if x < 10 { 0.0 } else { 1.0 }]));
        let half = resize_alpha(&alpha, 10, 5);
        assert_eq!(half.dimensions(), (10, 5));
        assert!(half.get_pixel(0, 2)[0] < 0.01);
        assert!(half.get_pixel(9, 2)[0] > 0.99);
    }

    #[test]
    fn resize_survives_zero_sizes() {
        let empty = Rgb32FImage::new(0, 0);
        assert_eq!(resize(&empty, 3, 2).dimensions(), (3, 2));

        let image = Rgb32FImage::from_pixel(5, 5, Rgb([0.5; 3]));
        assert_eq!(resize(&image, 0, 0).dimensions(), (1, 1));
    }
}
