//! Conversion of decoded images into the product's pixel layout: `f32` RGB in `[0, 1]` for the
//! network and a separate alpha plane that never reaches it.

use image::DynamicImage;

use super::{unit, GrayF32, LoadedImage};

/// Converts a decoded image to `f32` RGB in `[0, 1]` and a separate alpha plane.
pub(super) fn split_alpha(image: DynamicImage) -> LoadedImage {
    let alpha = alpha_plane(&image);
    let is_float = matches!(
        image,
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_)
    );
    let mut rgb = image.into_rgb32f();

    // Float TIFFs may hold any value, integer sources are in range already.
    if is_float {
        rgb.iter_mut().for_each(|value| *value = unit(*value));
    }
    LoadedImage { rgb, alpha }
}

/// Extracts the alpha channel as `f32` in `[0, 1]`, or none when the image has no alpha.
fn alpha_plane(image: &DynamicImage) -> Option<GrayF32> {
    let values: Vec<f32> = match image {
        DynamicImage::ImageLumaA8(buffer) => buffer
            .pixels()
            .map(|pixel| f32::from(pixel[1]) / 255.0)
            .collect(),
        DynamicImage::ImageRgba8(buffer) => buffer
            .pixels()
            .map(|pixel| f32::from(pixel[3]) / 255.0)
            .collect(),
        DynamicImage::ImageLumaA16(buffer) => buffer
            .pixels()
            .map(|pixel| f32::from(pixel[1]) / 65535.0)
            .collect(),
        DynamicImage::ImageRgba16(buffer) => buffer
            .pixels()
            .map(|pixel| f32::from(pixel[3]) / 65535.0)
            .collect(),
        DynamicImage::ImageRgba32F(buffer) => buffer.pixels().map(|pixel| unit(pixel[3])).collect(),
        other if other.has_alpha() => other
            .to_rgba32f()
            .pixels()
            .map(|pixel| unit(pixel[3]))
            .collect(),
        _ => return None,
    };
    GrayF32::from_raw(image.width(), image.height(), values)
}

#[cfg(test)]
mod tests {
    use image::{ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;
    use crate::imaging::samples::{assert_close, encode_as, palette_png, pattern};
    use crate::imaging::{decode, DecodeLimits};

    fn defaults() -> DecodeLimits {
        DecodeLimits::default()
    }

    #[test]
    fn sixteen_bit_png_keeps_its_precision() {
        let deep = ImageBuffer::from_fn(5, 3, |x, y| {
            let value = 0x1234 + 257 * x as u16 + 3 * y as u16;
            Rgb([value, value + 1, 0xFFFF - value])
        });
        let bytes = encode_as(&DynamicImage::ImageRgb16(deep.clone()), ImageFormat::Png);
        let loaded = decode(&bytes, &defaults()).unwrap();
        for (got, want) in loaded.rgb.iter().zip(deep.iter()) {
            assert!((got - f32::from(*want) / 65535.0).abs() < 1e-6);
        }
    }

    #[test]
    fn palette_and_gray_png_expand_to_rgb() {
        let palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]];
        let loaded = decode(&palette_png(&palette), &defaults()).unwrap();
        let expected = RgbImage::from_fn(2, 2, |x, y| Rgb(palette[(y * 2 + x) as usize]));
        assert_close(&loaded, &expected, 0.0);

        let gray = ImageBuffer::from_fn(3, 2, |x, y| Luma([(x * 80 + y * 7) as u8]));
        let loaded = decode(
            &encode_as(&DynamicImage::ImageLuma8(gray), ImageFormat::Png),
            &defaults(),
        )
        .unwrap();
        assert!(loaded.alpha.is_none());
        assert_eq!(loaded.rgb.get_pixel(2, 1).0, [167.0 / 255.0; 3]);
    }

    #[test]
    fn png_alpha_is_split_off_and_kept() {
        let rgba = RgbaImage::from_fn(4, 3, |x, y| Rgba([200, 100, 50, (x * 60 + y) as u8]));
        let bytes = encode_as(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
        let loaded = decode(&bytes, &defaults()).unwrap();
        assert_eq!(
            loaded.rgb.get_pixel(3, 2).0,
            [200.0 / 255.0, 100.0 / 255.0, 50.0 / 255.0]
        );
        let alpha = loaded.alpha.expect("rgba png keeps its alpha");
        assert_eq!(alpha.get_pixel(3, 2)[0], 182.0 / 255.0);
        assert_eq!(alpha.get_pixel(0, 0)[0], 0.0);

        let gray_alpha = ImageBuffer::from_pixel(2, 2, LumaA([90u8, 255]));
        let bytes = encode_as(&DynamicImage::ImageLumaA8(gray_alpha), ImageFormat::Png);
        let loaded = decode(&bytes, &defaults()).unwrap();
        assert_eq!(
            loaded
                .alpha
                .expect("gray-alpha png keeps its alpha")
                .get_pixel(1, 1)[0],
            1.0
        );
    }

    #[test]
    fn lossless_formats_round_trip_exactly() {
        let image = pattern(23, 17);
        for format in [ImageFormat::WebP, ImageFormat::Tiff, ImageFormat::Bmp] {
            let bytes = encode_as(&DynamicImage::ImageRgb8(image.clone()), format);
            let loaded = decode(&bytes, &defaults()).unwrap();
            assert!(loaded.alpha.is_none(), "{format:?}");
            assert_close(&loaded, &image, 0.0);
        }
    }

    #[test]
    fn webp_and_tiff_alpha_is_kept() {
        let rgba = RgbaImage::from_fn(6, 5, |x, y| Rgba([x as u8 * 40, y as u8 * 50, 7, 128]));
        for format in [ImageFormat::WebP, ImageFormat::Tiff] {
            let bytes = encode_as(&DynamicImage::ImageRgba8(rgba.clone()), format);
            let loaded = decode(&bytes, &defaults()).unwrap();
            let alpha = loaded.alpha.expect("alpha survives");
            assert!(
                alpha.iter().all(|&value| value == 128.0 / 255.0),
                "{format:?}"
            );
        }
    }

    #[test]
    fn float_tiff_is_clamped_to_the_unit_range() {
        let wild = ImageBuffer::from_pixel(2, 2, Rgba([-0.5f32, 1.5, f32::NAN, 2.0]));
        let bytes = encode_as(&DynamicImage::ImageRgba32F(wild), ImageFormat::Tiff);
        let loaded = decode(&bytes, &defaults()).unwrap();
        assert_eq!(loaded.rgb.get_pixel(1, 1).0, [0.0, 1.0, 0.0]);
        assert_eq!(
            loaded.alpha.expect("rgba tiff keeps alpha").get_pixel(1, 1)[0],
            1.0
        );
    }
}
