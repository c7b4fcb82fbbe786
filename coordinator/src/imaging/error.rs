//! The error type of the imaging module and the mapping of `image` and I/O errors onto it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use image::ImageError;

/// The result type of every fallible function in this module.
pub type Result<T, E = ImagingError> = std::result::Result<T, E>;

/// Where the image bytes of an operation come from or go to, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Bytes held in memory, such as an upload or a network transfer.
    Memory,
    /// A file on disk.
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str("in-memory image"),
            Location::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Everything that can go wrong while reading, writing or validating an image.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The input file does not exist.
    #[error("image file not found: {path}")]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },

    /// The input file exists but could not be read.
    #[error("cannot read image file {path}")]
    Unreadable {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The input holds no bytes at all.
    #[error("{location} is empty")]
    Empty {
        /// The input that was empty.
        location: Location,
    },

    /// The input is larger than the byte limit of its [`DecodeLimits`](super::DecodeLimits).
    #[error("{location} is {bytes} bytes, over the limit of {max_bytes} bytes")]
    FileTooLarge {
        /// The input that was too large.
        location: Location,
        /// Its size in bytes.
        bytes: u64,
        /// The limit in force.
        max_bytes: u64,
    },

    /// The content matches no known image signature.
    #[error("{location} is not an image in a known format (jpeg, png, webp, tiff or bmp)")]
    UnknownFormat {
        /// The input that was not recognised.
        location: Location,
    },

    /// The content is a known format, or a variant of one, that this product does not decode.
    #[error("{location} uses an unsupported image format or feature ({format}): {detail}")]
    UnsupportedFormat {
        /// The input that was refused.
        location: Location,
        /// The format detected from the content.
        format: String,
        /// What the decoder said it cannot handle.
        detail: String,
    },

    /// The content starts like an image but is truncated or damaged.
    #[error("{location} is truncated or corrupt ({format}): {detail}")]
    Corrupt {
        /// The input that failed to decode.
        location: Location,
        /// The format detected from the content.
        format: String,
        /// The decoder's own description of the problem.
        detail: String,
    },

    /// The header announces more pixels than its [`DecodeLimits`](super::DecodeLimits) allow.
    #[error("{location} is {width}x{height} pixels, over the limit of {max_pixels} pixels")]
    TooLarge {
        /// The input that was refused.
        location: Location,
        /// The width the header claims.
        width: u32,
        /// The height the header claims.
        height: u32,
        /// The limit in force.
        max_pixels: u64,
    },

    /// The decoder would need more memory than the limits allow.
    #[error("{location} needs more memory to decode than the limits allow: {detail}")]
    LimitExceeded {
        /// The input that was refused.
        location: Location,
        /// The decoder's description of the limit it hit.
        detail: String,
    },

    /// The image has a width or height of zero.
    ///
    /// Most decoders already refuse such a header, which then surfaces as `Corrupt` or
    /// `UnsupportedFormat` with the decoder's words; this variant covers the rest and writing.
    #[error("{location} has a zero dimension ({width}x{height})")]
    ZeroDimension {
        /// The image that is empty.
        location: Location,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },

    /// The alpha plane passed for writing does not match the colour image in size.
    #[error(
        "alpha plane for {location} is {alpha_width}x{alpha_height}, image is {width}x{height}"
    )]
    AlphaSizeMismatch {
        /// The output being written.
        location: Location,
        /// Width of the colour image.
        width: u32,
        /// Height of the colour image.
        height: u32,
        /// Width of the alpha plane.
        alpha_width: u32,
        /// Height of the alpha plane.
        alpha_height: u32,
    },

    /// The output path has an extension this module cannot write.
    #[error(
        "cannot write {path}: unsupported extension {extension:?} (png, jpg, webp, tif or bmp)"
    )]
    UnsupportedOutput {
        /// The requested output path.
        path: PathBuf,
        /// The extension found, empty when there is none.
        extension: String,
    },

    /// Sixteen bits per channel were requested for a format that only holds eight.
    #[error("cannot write {path}: {format} holds 8 bits per channel, 16 bits need png or tiff")]
    UnsupportedDepth {
        /// The requested output path.
        path: PathBuf,
        /// The output format.
        format: &'static str,
    },

    /// The encoder refused the image.
    #[error("cannot encode {location} as {format}: {detail}")]
    Encode {
        /// The output being written.
        location: Location,
        /// The output format.
        format: &'static str,
        /// The encoder's description of the problem.
        detail: String,
    },

    /// Writing or renaming the output file failed.
    #[error("cannot write image file {path}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

/// Maps a decoder error to the matching [`ImagingError`] variant.
pub(super) fn decode_error(err: ImageError, format: &str, location: &Location) -> ImagingError {
    let location = location.clone();
    let format = format.to_owned();
    match err {
        ImageError::Limits(err) => ImagingError::LimitExceeded {
            location,
            detail: err.to_string(),
        },
        ImageError::Unsupported(err) => ImagingError::UnsupportedFormat {
            location,
            format,
            detail: err.to_string(),
        },
        ImageError::IoError(err) => io_error(err, &format, &location),
        other => ImagingError::Corrupt {
            location,
            format,
            detail: other.to_string(),
        },
    }
}

/// Maps an I/O error met while decoding: the end of data or bad data means a damaged image, any
/// other failure of a file means it could not be read.
pub(super) fn io_error(err: io::Error, format: &str, location: &Location) -> ImagingError {
    match (err.kind(), location) {
        (io::ErrorKind::UnexpectedEof, _) => ImagingError::Corrupt {
            location: location.clone(),
            format: format.to_owned(),
            detail: format!("the data ends early ({err})"),
        },
        (io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other, _)
        | (_, Location::Memory) => ImagingError::Corrupt {
            location: location.clone(),
            format: format.to_owned(),
            detail: err.to_string(),
        },
        (_, Location::File(path)) => ImagingError::Unreadable {
            path: path.clone(),
            source: err,
        },
    }
}
