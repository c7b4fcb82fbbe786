//! Decoding of untrusted image bytes into a [`LoadedImage`], with every limit checked against the
//! header before a pixel buffer exists.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Seek};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use tracing::debug;

use super::error::{decode_error, io_error};
use super::jpeg_end::reaches_end_marker;
use super::pixels::split_alpha;
use super::{DecodeLimits, ImagingError, LoadedImage, Location, Result};

/// Bytes per pixel of the widest buffer a decoder may produce (RGBA in `f32`).
const MAX_DECODED_BYTES_PER_PIXEL: u64 = 16;

/// Working memory every decoder may use whatever the image size (zlib windows, Huffman tables,
/// metadata chunks), so that a small pixel limit does not starve a small image.
const MIN_DECODER_ALLOC_BYTES: u64 = 64 << 20;

/// The formats this product reads; the content signature must name one of them.
const SUPPORTED_FORMATS: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Tiff,
    ImageFormat::Bmp,
];

/// Decodes an image held in memory, detecting its format from the content.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<LoadedImage> {
    let location = Location::Memory;
    check_file_size(bytes.len() as u64, limits, &location)?;
    decode_from(Cursor::new(bytes), limits, location)
}

/// Reads and decodes an image file, detecting its format from the content rather than the name.
pub fn load(path: &Path, limits: &DecodeLimits) -> Result<LoadedImage> {
    let unreadable = |source| ImagingError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ImagingError::NotFound {
            path: path.to_path_buf(),
        },
        _ => unreadable(source),
    })?;

    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(unreadable(io::Error::other("not a regular file")));
    }

    let location = Location::File(path.to_path_buf());
    check_file_size(metadata.len(), limits, &location)?;
    decode_from(BufReader::new(file), limits, location)
}

/// Refuses empty inputs and inputs over the byte limit.
fn check_file_size(bytes: u64, limits: &DecodeLimits, location: &Location) -> Result<()> {
    if bytes == 0 {
        return Err(ImagingError::Empty {
            location: location.clone(),
        });
    }
    if bytes > limits.max_file_bytes {
        return Err(ImagingError::FileTooLarge {
            location: location.clone(),
            bytes,
            max_bytes: limits.max_file_bytes,
        });
    }
    Ok(())
}

/// Detects the format from the first bytes, checks JPEG completeness and decodes.
fn decode_from<R: BufRead + Seek>(
    reader: R,
    limits: &DecodeLimits,
    location: Location,
) -> Result<LoadedImage> {
    let reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|err| io_error(err, "unknown", &location))?;
    let Some(format) = reader.format() else {
        return Err(ImagingError::UnknownFormat { location });
    };
    if !SUPPORTED_FORMATS.contains(&format) {
        return Err(ImagingError::UnsupportedFormat {
            location,
            format: format_name(format),
            detail: "only jpeg, png, webp, tiff and bmp are read".to_owned(),
        });
    }

    if format == ImageFormat::Jpeg {
        let mut inner = reader.into_inner();
        let complete =
            reaches_end_marker(&mut inner).map_err(|err| io_error(err, "jpeg", &location))?;
        if !complete {
            return Err(ImagingError::Corrupt {
                location,
                format: format_name(format),
                detail: "the data ends before the end-of-image marker".to_owned(),
            });
        }
        return decode_with(
            ImageReader::with_format(inner, format),
            format,
            limits,
            &location,
        );
    }
    decode_with(reader, format, limits, &location)
}

/// Runs the decoder of a known format under the limits and applies the EXIF orientation.
fn decode_with<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    format: ImageFormat,
    limits: &DecodeLimits,
    location: &Location,
) -> Result<LoadedImage> {
    let format_label = format_name(format);
    let to_error = |err| decode_error(err, &format_label, location);
    reader.limits(image_limits(limits));
    let mut decoder = reader.into_decoder().map_err(to_error)?;

    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImagingError::ZeroDimension {
            location: location.clone(),
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImagingError::TooLarge {
            location: location.clone(),
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }

    // Damaged metadata should not cost the user the picture, only its rotation.
    let orientation = decoder.orientation().unwrap_or_else(|err| {
        debug!(%location, error = %err, "ignoring unreadable orientation metadata");
        Orientation::NoTransforms
    });
    let mut image = DynamicImage::from_decoder(decoder).map_err(to_error)?;
    image.apply_orientation(orientation);
    debug!(%location, format = %format_label, width, height, ?orientation, "decoded image");

    Ok(split_alpha(image))
}

/// Translates the product's limits into the decoder limits of the `image` crate.
fn image_limits(limits: &DecodeLimits) -> Limits {
    let max_side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut image_limits = Limits::default();
    image_limits.max_image_width = Some(max_side);
    image_limits.max_image_height = Some(max_side);
    image_limits.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(MAX_DECODED_BYTES_PER_PIXEL)
            .max(MIN_DECODER_ALLOC_BYTES),
    );
    image_limits
}

/// Names a format the way error messages and logs spell it (`jpeg`, `png`, `gif`).
fn format_name(format: ImageFormat) -> String {
    format!("{format:?}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};
    use jpeg_encoder::ColorType;

    use super::*;
    use crate::imaging::samples::{
        assert_close, encode_as, exif_orientation, jpeg, pattern, png_bomb, png_chunk,
    };
    use crate::imaging::DEFAULT_MAX_PIXELS;

    fn defaults() -> DecodeLimits {
        DecodeLimits::default()
    }

    /// Decodes bytes that must be refused, without printing a whole image when they are not.
    fn refusal(bytes: &[u8], limits: &DecodeLimits) -> ImagingError {
        match decode(bytes, limits) {
            Ok(loaded) => panic!(
                "decoded a {:?} image that should be refused",
                loaded.dimensions()
            ),
            Err(err) => err,
        }
    }

    fn pattern_jpeg(configure: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>)) -> Vec<u8> {
        jpeg(pattern(48, 32).as_raw(), 48, 32, ColorType::Rgb, configure)
    }

    #[test]
    fn empty_input_is_refused() {
        let err = refusal(&[], &defaults());
        assert!(
            matches!(
                err,
                ImagingError::Empty {
                    location: Location::Memory
                }
            ),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.png");
        std::fs::write(&path, b"").unwrap();
        let Err(err) = load(&path, &defaults()) else {
            panic!("an empty file decoded")
        };
        assert!(matches!(&err, ImagingError::Empty { location: Location::File(p) } if *p == path));
        assert!(err.to_string().contains("empty.png"), "{err}");
    }

    #[test]
    fn garbage_is_an_unknown_format() {
        let err = refusal(b"this is plain text, not a picture", &defaults());
        assert!(matches!(err, ImagingError::UnknownFormat { .. }), "{err}");
    }

    #[test]
    fn a_known_but_unsupported_format_is_named() {
        let err = refusal(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &defaults());
        assert!(
            matches!(&err, ImagingError::UnsupportedFormat { format, .. } if format == "gif"),
            "{err}"
        );
    }

    #[test]
    fn damaged_png_data_is_corrupt() {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend(png_chunk(b"IHDR", &[0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0, 0, 0]));
        bytes.extend(png_chunk(b"IDAT", b"definitely not zlib data"));
        bytes.extend(png_chunk(b"IEND", &[]));
        let err = refusal(&bytes, &defaults());
        assert!(matches!(err, ImagingError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn truncated_jpeg_is_corrupt() {
        let bytes = pattern_jpeg(|_| {});
        for cut in [bytes.len() / 2, bytes.len() - 2, 30] {
            let err = refusal(&bytes[..cut], &defaults());
            assert!(
                matches!(&err, ImagingError::Corrupt { format, .. } if format == "jpeg"),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn truncated_png_is_corrupt() {
        let bytes = encode_as(&DynamicImage::ImageRgb8(pattern(64, 64)), ImageFormat::Png);
        // Cuts inside the pixel data and the header; a missing IEND alone loses no pixel.
        for cut in [bytes.len() * 2 / 3, bytes.len() - 16, 30] {
            let err = refusal(&bytes[..cut], &defaults());
            assert!(
                matches!(&err, ImagingError::Corrupt { format, .. } if format == "png"),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("png"), "{err}");
        }
    }

    #[test]
    fn png_bomb_is_refused_before_allocation() {
        let err = refusal(&png_bomb(100_000, 100_000), &defaults());
        assert!(
            matches!(
                err,
                ImagingError::TooLarge { width: 100_000, height: 100_000, max_pixels, .. }
                    if max_pixels == DEFAULT_MAX_PIXELS
            ),
            "{err}"
        );
        assert!(err.to_string().contains("100000x100000"), "{err}");

        let tight = DecodeLimits {
            max_pixels: 1000,
            ..defaults()
        };
        let err = refusal(&png_bomb(40, 30), &tight);
        assert!(
            matches!(
                err,
                ImagingError::TooLarge {
                    width: 40,
                    height: 30,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_side_longer_than_the_pixel_limit_trips_the_decoder_limits() {
        // Longer than 2^28 on one side: `image` refuses it from the header alone.
        let err = refusal(&png_bomb(300_000_000, 1), &defaults());
        assert!(matches!(err, ImagingError::LimitExceeded { .. }), "{err}");
    }

    #[test]
    fn zero_width_header_is_refused_by_the_decoder() {
        let err = refusal(&png_bomb(0, 10), &defaults());
        assert!(
            matches!(&err, ImagingError::Corrupt { detail, .. } if detail.contains("dimensions"))
        );
    }

    #[test]
    fn input_over_the_byte_limit_is_refused() {
        let bytes = pattern_jpeg(|_| {});
        let limits = DecodeLimits {
            max_file_bytes: 100,
            ..defaults()
        };
        let err = refusal(&bytes, &limits);
        assert!(
            matches!(err, ImagingError::FileTooLarge { max_bytes: 100, .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_and_directory_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-photo.jpg");
        let Err(err) = load(&missing, &defaults()) else {
            panic!("a missing file decoded")
        };
        assert!(matches!(&err, ImagingError::NotFound { path } if *path == missing));
        assert!(err.to_string().contains("no-such-photo.jpg"), "{err}");

        let Err(err) = load(dir.path(), &defaults()) else {
            panic!("a directory decoded")
        };
        assert!(matches!(err, ImagingError::Unreadable { .. }), "{err}");
    }

    #[test]
    fn load_detects_the_format_from_content_and_names_the_file_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let misnamed = dir.path().join("actually-a-png.jpg");
        let image = pattern(9, 7);
        std::fs::write(
            &misnamed,
            encode_as(&DynamicImage::ImageRgb8(image.clone()), ImageFormat::Png),
        )
        .unwrap();
        assert_close(&load(&misnamed, &defaults()).unwrap(), &image, 0.0);

        let garbage = dir.path().join("notes.png");
        std::fs::write(&garbage, b"shopping list").unwrap();
        let Err(err) = load(&garbage, &defaults()) else {
            panic!("a text file decoded")
        };
        assert!(matches!(err, ImagingError::UnknownFormat { .. }), "{err}");
        assert!(err.to_string().contains("notes.png"), "{err}");
    }

    #[test]
    fn baseline_and_progressive_jpeg_decode_close_to_the_source() {
        for progressive in [false, true] {
            let bytes = pattern_jpeg(|encoder| encoder.set_progressive(progressive));
            let loaded = decode(&bytes, &defaults()).unwrap();
            assert!(loaded.alpha.is_none());
            assert_close(&loaded, &pattern(48, 32), 0.12);
        }
    }

    #[test]
    fn grayscale_jpeg_expands_to_equal_channels() {
        let gray: Vec<u8> = (0..16 * 16).map(|i| (i % 16 * 16) as u8).collect();
        let loaded = decode(&jpeg(&gray, 16, 16, ColorType::Luma, |_| {}), &defaults()).unwrap();
        assert_eq!(loaded.dimensions(), (16, 16));
        for pixel in loaded.rgb.pixels() {
            assert_eq!(pixel[0], pixel[1]);
            assert_eq!(pixel[1], pixel[2]);
        }
        assert!((loaded.rgb.get_pixel(15, 3)[0] - 240.0 / 255.0).abs() < 0.05);
    }

    #[test]
    fn cmyk_jpeg_converts_to_rgb() {
        // Full magenta and yellow ink, no cyan or black, is red; the encoder stores the ink
        // inverted as Adobe does, which the decoder undoes.
        let cmyk: Vec<u8> = [0u8, 255, 255, 0].repeat(16 * 16);
        let loaded = decode(&jpeg(&cmyk, 16, 16, ColorType::Cmyk, |_| {}), &defaults()).unwrap();
        let expected = RgbImage::from_pixel(16, 16, Rgb([255, 0, 0]));
        assert_close(&loaded, &expected, 0.05);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 32x16 blue picture with a red 8x8 block in its top-left corner.
        let source = RgbImage::from_fn(32, 16, |x, y| {
            if x < 8 && y < 8 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let is_red = |pixel: &Rgb<f32>| pixel[0] > 0.7 && pixel[2] < 0.3;

        // Orientation 6 turns the picture clockwise: the block moves to the top-right.
        let exif = exif_orientation(6);
        let bytes = jpeg(source.as_raw(), 32, 16, ColorType::Rgb, |encoder| {
            encoder.add_exif_metadata(&exif).unwrap();
        });
        let loaded = decode(&bytes, &defaults()).unwrap();
        assert_eq!(loaded.dimensions(), (16, 32));
        assert!(is_red(loaded.rgb.get_pixel(12, 3)));
        assert!(!is_red(loaded.rgb.get_pixel(3, 3)));

        // Orientation 8 turns it anticlockwise: the block moves to the bottom-left.
        let exif = exif_orientation(8);
        let bytes = jpeg(source.as_raw(), 32, 16, ColorType::Rgb, |encoder| {
            encoder.add_exif_metadata(&exif).unwrap();
        });
        let loaded = decode(&bytes, &defaults()).unwrap();
        assert_eq!(loaded.dimensions(), (16, 32));
        assert!(is_red(loaded.rgb.get_pixel(3, 28)));
        assert!(!is_red(loaded.rgb.get_pixel(3, 3)));
    }
}
