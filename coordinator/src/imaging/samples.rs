//! Images built in code for the imaging tests, so that no fixture file is needed.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

use super::LoadedImage;

/// Builds an 8-bit pattern in which neighbouring pixels differ in every channel.
pub(super) fn pattern(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let red = (x * 255 / width.max(2)) as u8;
        let green = (y * 255 / height.max(2)) as u8;
        let blue = ((x + y) * 37 % 256) as u8;
        Rgb([red, green, blue])
    })
}

/// Encodes an image with the `image` crate's own encoder for `format`.
pub(super) fn encode_as(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, format)
        .expect("test images are valid for their format");
    bytes.into_inner()
}

/// Encodes raw samples with `jpeg-encoder` after `configure` has set options on the encoder.
pub(super) fn jpeg(
    samples: &[u8],
    width: u16,
    height: u16,
    color: jpeg_encoder::ColorType,
    configure: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 95);
    configure(&mut encoder);
    encoder
        .encode(samples, width, height, color)
        .expect("test samples match their size");
    bytes
}

/// Builds the TIFF body of an EXIF block holding only an orientation tag.
pub(super) fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    exif.extend_from_slice(&1u16.to_le_bytes());
    // Tag 0x0112 (Orientation), type SHORT, one value, stored inline.
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&orientation.to_le_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_le_bytes());
    exif
}

/// Frames a PNG chunk with its length and CRC.
pub(super) fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let length = u32::try_from(data.len()).expect("test chunks are small");
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);

    let mut chunk = length.to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    chunk
}

/// Builds a well-formed PNG whose header claims `width` x `height` 8-bit RGB pixels but whose
/// data is a dozen bytes: a decompression bomb.
pub(super) fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);

    // A zlib stream with one stored block holding a single zero byte.
    let data = [
        0x78, 0x01, 0x01, 0x01, 0x00, 0xFE, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &header));
    png.extend(png_chunk(b"IDAT", &data));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// Encodes a 2x2 palette PNG with the `png` crate, which `image` cannot write.
pub(super) fn palette_png(palette: &[[u8; 3]; 4]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 2, 2);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette.concat());
    let mut writer = encoder.write_header().expect("palette header is valid");
    writer
        .write_image_data(&[0, 1, 2, 3])
        .expect("four indices fill 2x2 pixels");
    writer.finish().expect("palette png finishes");
    bytes
}

/// Asserts that every channel of `loaded` lies within `tolerance` of the 8-bit `expected`.
pub(super) fn assert_close(loaded: &LoadedImage, expected: &RgbImage, tolerance: f32) {
    assert_eq!(loaded.dimensions(), expected.dimensions());
    let worst = loaded
        .rgb
        .iter()
        .zip(expected.iter())
        .map(|(&got, &want)| (got - f32::from(want) / 255.0).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance,
        "worst channel error {worst} over {tolerance}"
    );
}
