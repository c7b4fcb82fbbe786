//! Encoding of results: atomic file writes in the format an extension names, and PNG bytes for
//! network transfer.

use std::io::{BufWriter, Cursor, Seek, Write};
use std::path::Path;

use image::codecs::bmp::BmpEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::tiff::TiffEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageBuffer, ImageError, Rgb32FImage};
use tracing::{debug, warn};

use super::{unit, BitDepth, GrayF32, ImagingError, Location, Result};

/// JPEG quality of written outputs; high because they are finished artwork.
const JPEG_QUALITY: u8 = 95;

/// A format this module writes, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Png,
    Jpeg,
    WebP,
    Tiff,
    Bmp,
}

impl OutputFormat {
    /// Picks the format named by the extension of `path`, ignoring case.
    fn from_path(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .map(|ext| ext.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match extension.as_str() {
            "png" => Ok(Self::Png),
            "jpg" | "jpeg" => Ok(Self::Jpeg),
            "webp" => Ok(Self::WebP),
            "tif" | "tiff" => Ok(Self::Tiff),
            "bmp" => Ok(Self::Bmp),
            _ => Err(ImagingError::UnsupportedOutput {
                path: path.to_path_buf(),
                extension,
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::WebP => "webp",
            Self::Tiff => "tiff",
            Self::Bmp => "bmp",
        }
    }

    fn holds_sixteen_bits(self) -> bool {
        matches!(self, Self::Png | Self::Tiff)
    }

    fn holds_alpha(self) -> bool {
        self != Self::Jpeg
    }

    /// Encodes `image` into `writer`.
    fn encode<W: Write + Seek>(
        self,
        image: &DynamicImage,
        writer: &mut W,
    ) -> image::ImageResult<()> {
        match self {
            Self::Png => image.write_with_encoder(PngEncoder::new_with_quality(
                writer,
                CompressionType::Default,
                FilterType::Adaptive,
            )),
            Self::Jpeg => {
                image.write_with_encoder(JpegEncoder::new_with_quality(writer, JPEG_QUALITY))
            }
            Self::WebP => image.write_with_encoder(WebPEncoder::new_lossless(writer)),
            Self::Tiff => image.write_with_encoder(TiffEncoder::new(writer)),
            Self::Bmp => image.write_with_encoder(BmpEncoder::new(writer)),
        }
    }
}

/// Checks, before any work, that [`save`] can write `path` at `depth`: a known extension, a
/// depth the format holds, and a directory that exists and takes a new file (a probe file is
/// made there and removed), so that a long render does not end on a bad output path.
pub fn check_output(path: &Path, depth: BitDepth) -> Result<()> {
    output_format(path, depth)?;
    tempfile::Builder::new()
        .prefix(".")
        .suffix(".probe")
        .tempfile_in(output_directory(path))
        .map_err(|source| ImagingError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// Returns the format `path`'s extension names, if it holds `depth`.
fn output_format(path: &Path, depth: BitDepth) -> Result<OutputFormat> {
    let format = OutputFormat::from_path(path)?;
    if depth == BitDepth::Sixteen && !format.holds_sixteen_bits() {
        return Err(ImagingError::UnsupportedDepth {
            path: path.to_path_buf(),
            format: format.name(),
        });
    }
    Ok(format)
}

/// Writes a PNG (a job's result) to `path` in the format its extension names: the bytes as
/// they are for `.png`, otherwise decoded and encoded again by [`save`] at `depth`.
pub fn save_png_as(path: &Path, png: &[u8], depth: BitDepth) -> Result<()> {
    let format = OutputFormat::from_path(path)?;
    if format == OutputFormat::Png {
        return save_encoded(path, png);
    }
    let image = super::decode(png, &super::DecodeLimits::default())?;
    save(path, &image.rgb, image.alpha.as_ref(), depth)
}

/// Returns the directory a file at `path` goes into (`.` for a bare file name).
fn output_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes an image to `path` in the format its extension names, atomically.
///
/// Supported extensions are `png`, `jpg`/`jpeg`, `webp` (lossless), `tif`/`tiff` and `bmp`.
/// Sixteen bits per channel are refused for anything but PNG and TIFF. The alpha plane is written
/// when the format holds one; JPEG does not, so there it is dropped with a warning. The image is
/// encoded into a hidden temporary file next to `path` and renamed over it, so a crash never
/// leaves a half-written output behind.
pub fn save(
    path: &Path,
    rgb: &Rgb32FImage,
    alpha: Option<&GrayF32>,
    depth: BitDepth,
) -> Result<()> {
    // No directory probe here: the temporary file below finds a bad directory as well.
    let format = output_format(path, depth)?;
    let alpha = match alpha {
        Some(_) if !format.holds_alpha() => {
            let format = format.name();
            warn!(path = %path.display(), format, "dropping alpha the format cannot hold");
            None
        }
        alpha => alpha,
    };
    let location = Location::File(path.to_path_buf());
    let image = quantize(rgb, alpha, depth, &location)?;

    write_image(path, format, &image)?;
    debug!(path = %path.display(), format = format.name(), ?depth, "wrote image");
    Ok(())
}

/// Encodes an image as PNG bytes for network transfer, favouring speed over size.
pub fn encode_png(rgb: &Rgb32FImage, alpha: Option<&GrayF32>, depth: BitDepth) -> Result<Vec<u8>> {
    let location = Location::Memory;
    let image = quantize(rgb, alpha, depth, &location)?;

    let mut bytes = Cursor::new(Vec::new());
    let encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Adaptive);
    image
        .write_with_encoder(encoder)
        .map_err(|err| ImagingError::Encode {
            location,
            format: OutputFormat::Png.name(),
            detail: err.to_string(),
        })?;
    Ok(bytes.into_inner())
}

/// Validates the planes and rounds them to integer channels of the requested depth.
fn quantize(
    rgb: &Rgb32FImage,
    alpha: Option<&GrayF32>,
    depth: BitDepth,
    location: &Location,
) -> Result<DynamicImage> {
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(ImagingError::ZeroDimension {
            location: location.clone(),
            width,
            height,
        });
    }
    if let Some(alpha) = alpha {
        let (alpha_width, alpha_height) = alpha.dimensions();
        if (alpha_width, alpha_height) != (width, height) {
            return Err(ImagingError::AlphaSizeMismatch {
                location: location.clone(),
                width,
                height,
                alpha_width,
                alpha_height,
            });
        }
    }

    let image = match (depth, alpha) {
        (BitDepth::Eight, None) => {
            DynamicImage::ImageRgb8(interleave(rgb, None, width, height, to_u8))
        }
        (BitDepth::Eight, Some(alpha)) => {
            DynamicImage::ImageRgba8(interleave(rgb, Some(alpha), width, height, to_u8))
        }
        (BitDepth::Sixteen, None) => {
            DynamicImage::ImageRgb16(interleave(rgb, None, width, height, to_u16))
        }
        (BitDepth::Sixteen, Some(alpha)) => {
            DynamicImage::ImageRgba16(interleave(rgb, Some(alpha), width, height, to_u16))
        }
    };
    Ok(image)
}

/// Builds an integer image buffer from the colour plane and, when given, the alpha plane.
fn interleave<P>(
    rgb: &Rgb32FImage,
    alpha: Option<&GrayF32>,
    width: u32,
    height: u32,
    convert: fn(f32) -> P::Subpixel,
) -> ImageBuffer<P, Vec<P::Subpixel>>
where
    P: image::Pixel,
{
    let channels = if alpha.is_some() { 4 } else { 3 };
    let mut samples = Vec::with_capacity(width as usize * height as usize * channels);
    match alpha {
        None => samples.extend(rgb.pixels().flat_map(|pixel| pixel.0).map(convert)),
        Some(alpha) => {
            for (pixel, opacity) in rgb.pixels().zip(alpha.pixels()) {
                samples.extend(pixel.0.into_iter().chain([opacity[0]]).map(convert));
            }
        }
    }
    ImageBuffer::from_raw(width, height, samples)
        .expect("interleaving yields exactly width * height pixels of the chosen layout")
}

/// Rounds a value in `[0, 1]` to eight bits.
fn to_u8(value: f32) -> u8 {
    (unit(value) * 255.0).round() as u8
}

/// Rounds a value in `[0, 1]` to sixteen bits.
fn to_u16(value: f32) -> u16 {
    (unit(value) * 65535.0).round() as u16
}

/// Writes an already encoded image (a PNG downloaded from a farm, say) to `path` as [`save`]
/// writes one: through a temporary file renamed over `path`, with the umask's permissions.
pub fn save_encoded(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |writer| {
        writer
            .write_all(bytes)
            .map_err(|source| ImagingError::Write {
                path: path.to_path_buf(),
                source,
            })
    })
}

/// Encodes `image` as `format` into the file `path` (see [`write_atomically`]).
fn write_image(path: &Path, format: OutputFormat, image: &DynamicImage) -> Result<()> {
    write_atomically(path, |writer| {
        format.encode(image, writer).map_err(|err| match err {
            ImageError::IoError(source) => ImagingError::Write {
                path: path.to_path_buf(),
                source,
            },
            other => ImagingError::Encode {
                location: Location::File(path.to_path_buf()),
                format: format.name(),
                detail: other.to_string(),
            },
        })
    })
}

/// Lets `fill` write into a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&std::fs::File>) -> Result<()>,
) -> Result<()> {
    let write_error = |source| ImagingError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = output_directory(path);
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();

    // Named `.<random>.<file name>.tmp`: hidden, and recognisable if a crash leaves it behind.
    let suffix = format!(".{file_name}.tmp");
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask narrows this, as it would for a file made with `File::create`.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder.tempfile_in(directory).map_err(write_error)?;

    let mut writer = BufWriter::new(temp.as_file());
    fill(&mut writer)?;
    writer.flush().map_err(write_error)?;
    drop(writer);

    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path).map_err(|err| write_error(err.error))?;
    sync_directory(directory);
    Ok(())
}

/// Makes the rename durable; failure only weakens durability, so it is logged, not returned.
fn sync_directory(directory: &Path) {
    #[cfg(unix)]
    if let Err(err) = std::fs::File::open(directory).and_then(|dir| dir.sync_all()) {
        debug!(directory = %directory.display(), error = %err, "cannot sync output directory");
    }
    #[cfg(not(unix))]
    let _ = directory;
}

#[cfg(test)]
mod tests {
    use image::{Luma, Rgb};

    use super::*;
    use crate::imaging::{decode, load, DecodeLimits};

    /// A colour plane whose values are exact in eight bits.
    fn colours(width: u32, height: u32) -> Rgb32FImage {
        Rgb32FImage::from_fn(width, height, |x, y| {
            Rgb([
                (x * 20) as f32 / 255.0,
                (y * 30) as f32 / 255.0,
                ((x + y) * 5) as f32 / 255.0,
            ])
        })
    }

    fn ramp_alpha(width: u32, height: u32) -> GrayF32 {
        GrayF32::from_fn(width, height, |x, y| {
            Luma([((x + y * width) * 9 % 256) as f32 / 255.0])
        })
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_output_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let rgb = colours(12, 9);
        let alpha = ramp_alpha(12, 9);
        for name in [
            "out.png", "out.webp", "out.tiff", "out.tif", "out.bmp", "OUT.PNG",
        ] {
            let path = dir.path().join(name);
            save(&path, &rgb, Some(&alpha), BitDepth::Eight).unwrap();
            let loaded = load(&path, &DecodeLimits::default()).unwrap();
            assert_eq!(loaded.rgb, rgb, "{name}");
            assert_eq!(loaded.alpha.as_ref(), Some(&alpha), "{name}");
        }

        for name in ["out.jpg", "out.jpeg"] {
            let path = dir.path().join(name);
            let flat = Rgb32FImage::from_pixel(16, 16, Rgb([0.2, 0.6, 0.9]));
            save(&path, &flat, Some(&ramp_alpha(16, 16)), BitDepth::Eight).unwrap();
            let loaded = load(&path, &DecodeLimits::default()).unwrap();
            assert!(loaded.alpha.is_none(), "jpeg drops alpha");
            let worst = loaded
                .rgb
                .iter()
                .zip(flat.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 0.02, "{name}: worst channel error {worst}");
        }
    }

    #[test]
    fn sixteen_bits_keep_their_precision() {
        let dir = tempfile::tempdir().unwrap();
        let deep = Rgb32FImage::from_fn(7, 5, |x, y| {
            let step = (1000 + 997 * x + 13 * y) as f32 / 65535.0;
            Rgb([step, 1.0 - step, step / 2.0])
        });
        let alpha = GrayF32::from_fn(7, 5, |x, _| Luma([(40_000 + x) as f32 / 65535.0]));
        for name in ["deep.png", "deep.tiff"] {
            let path = dir.path().join(name);
            save(&path, &deep, Some(&alpha), BitDepth::Sixteen).unwrap();
            let loaded = load(&path, &DecodeLimits::default()).unwrap();

            // Half a sixteen-bit step is 7.6e-6, far below an eight-bit step of 3.9e-3.
            let worst = loaded
                .rgb
                .iter()
                .zip(deep.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 8e-6, "{name}: worst channel error {worst}");
            let alpha_back = loaded.alpha.expect("alpha survives");
            assert!((alpha_back.get_pixel(6, 0)[0] - 40_006.0 / 65535.0).abs() < 8e-6);
        }
    }

    #[test]
    fn sixteen_bits_are_refused_for_eight_bit_formats() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["out.jpg", "out.webp", "out.bmp"] {
            let path = dir.path().join(name);
            let Err(err) = save(&path, &colours(2, 2), None, BitDepth::Sixteen) else {
                panic!("refused input was written")
            };
            assert!(
                matches!(err, ImagingError::UnsupportedDepth { .. }),
                "{name}: {err}"
            );
            assert!(!path.exists());
        }
    }

    #[test]
    fn unknown_output_extensions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["out.gif", "out", "out.png.bak"] {
            let Err(err) = save(
                &dir.path().join(name),
                &colours(2, 2),
                None,
                BitDepth::Eight,
            ) else {
                panic!("refused input was written")
            };
            assert!(
                matches!(err, ImagingError::UnsupportedOutput { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn atomic_save_leaves_only_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.png");
        std::fs::write(&path, b"previous render").unwrap();

        save(&path, &colours(8, 8), None, BitDepth::Eight).unwrap();
        assert_eq!(entries(dir.path()), ["result.png"]);
        assert_eq!(
            load(&path, &DecodeLimits::default()).unwrap().rgb,
            colours(8, 8)
        );

        let missing_dir = dir.path().join("missing").join("result.png");
        let Err(err) = save(&missing_dir, &colours(8, 8), None, BitDepth::Eight) else {
            panic!("wrote into a missing directory")
        };
        assert!(matches!(err, ImagingError::Write { .. }), "{err}");
        assert_eq!(entries(dir.path()), ["result.png"]);
    }

    #[test]
    fn bad_planes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        let Err(err) = save(&path, &Rgb32FImage::new(0, 4), None, BitDepth::Eight) else {
            panic!("refused input was written")
        };
        assert!(
            matches!(
                err,
                ImagingError::ZeroDimension {
                    width: 0,
                    height: 4,
                    ..
                }
            ),
            "{err}"
        );

        let Err(err) = encode_png(&colours(4, 4), Some(&ramp_alpha(4, 3)), BitDepth::Eight) else {
            panic!("refused input was written")
        };
        assert!(
            matches!(
                err,
                ImagingError::AlphaSizeMismatch {
                    alpha_height: 3,
                    height: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let wild = Rgb32FImage::from_pixel(2, 1, Rgb([-0.5, 1.5, f32::NAN]));
        let bytes = encode_png(&wild, None, BitDepth::Eight).unwrap();
        let loaded = decode(&bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(loaded.rgb.get_pixel(1, 0).0, [0.0, 1.0, 0.0]);
    }

    #[cfg(unix)]
    #[test]
    fn save_encoded_replaces_the_file_with_the_umasks_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        std::fs::write(&path, b"old").unwrap();
        save_encoded(&path, b"new bytes").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new bytes");
        // Not the temporary file's 0600: what `File::create` would give (a child shares the umask).
        let umask = std::process::Command::new("sh")
            .args(["-c", "umask"])
            .output()
            .unwrap();
        let umask = u32::from_str_radix(String::from_utf8_lossy(&umask.stdout).trim(), 8).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666 & !umask);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn encode_png_round_trips_for_transfer() {
        let rgb = colours(10, 6);
        let alpha = ramp_alpha(10, 6);
        let bytes = encode_png(&rgb, Some(&alpha), BitDepth::Sixteen).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        let loaded = decode(&bytes, &DecodeLimits::default()).unwrap();
        let worst = loaded
            .rgb
            .iter()
            .zip(rgb.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 8e-6, "worst channel error {worst}");
        assert!(loaded.alpha.is_some());
    }

    #[test]
    fn output_checks_find_a_missing_directory_and_leave_no_probe() {
        let dir = tempfile::tempdir().unwrap();
        check_output(&dir.path().join("out.png"), BitDepth::Eight).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("no/such/out.png");
        let err = check_output(&missing, BitDepth::Eight).unwrap_err();
        assert!(matches!(err, ImagingError::Write { .. }), "{err}");
        assert!(err.to_string().contains("no/such/out.png"), "{err}");
    }

    #[test]
    fn png_results_are_written_in_the_format_the_extension_names() {
        let dir = tempfile::tempdir().unwrap();
        let image = Rgb32FImage::from_pixel(8, 4, image::Rgb([0.25, 0.5, 0.75]));
        let png = encode_png(&image, None, BitDepth::Eight).unwrap();
        let as_png = dir.path().join("a.png");
        save_png_as(&as_png, &png, BitDepth::Eight).unwrap();
        assert_eq!(std::fs::read(&as_png).unwrap(), png);
        let as_jpeg = dir.path().join("a.jpg");
        save_png_as(&as_jpeg, &png, BitDepth::Eight).unwrap();
        assert_eq!(&std::fs::read(&as_jpeg).unwrap()[..3], &[0xFF, 0xD8, 0xFF]);
        let gif = dir.path().join("a.gif");
        assert!(save_png_as(&gif, &png, BitDepth::Eight).is_err());
        assert!(!gif.exists());
    }
}
