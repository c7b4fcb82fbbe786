//! A structural check that a JPEG stream runs to its end-of-image marker.
//!
//! The JPEG decoder underneath `image` is lenient: when the entropy-coded data stops early it
//! paints the rest of the picture grey and reports success, so a half-uploaded photo would be
//! stylised without complaint. Walking the marker segments finds the truncation without decoding
//! a pixel. Segments are skipped by their declared length, so the end marker of an EXIF thumbnail
//! does not count, and bytes after the real end (a phone's appended video) are ignored.

use std::io::{self, BufRead, Seek, SeekFrom};

/// Start-of-image marker that every JPEG stream opens with.
const START_OF_IMAGE: [u8; 2] = [0xFF, 0xD8];

/// End-of-image marker code.
const END_OF_IMAGE: u8 = 0xD9;

/// Returns whether the JPEG stream at the reader's position reaches its end-of-image marker,
/// leaving the reader where it was.
pub(super) fn reaches_end_marker<R: BufRead + Seek>(reader: &mut R) -> io::Result<bool> {
    let start = reader.stream_position()?;
    let complete = walk_segments(reader);
    reader.seek(SeekFrom::Start(start))?;
    complete
}

/// Follows the markers from the start of the stream until the end marker or the end of data.
fn walk_segments<R: BufRead + Seek>(reader: &mut R) -> io::Result<bool> {
    let mut opening = [0u8; 2];
    if !read_full(reader, &mut opening)? || opening != START_OF_IMAGE {
        return Ok(false);
    }

    loop {
        // Between segments this finds the next marker at once; inside entropy-coded data it
        // skips the coded bytes up to the marker that ends the scan.
        if !skip_past_byte(reader, 0xFF)? {
            return Ok(false);
        }
        let Some(code) = next_marker_code(reader)? else {
            return Ok(false);
        };

        match code {
            END_OF_IMAGE => return Ok(true),
            // A stuffed zero, TEM, a restart marker or a repeated SOI: no payload follows.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {
                let mut length = [0u8; 2];
                if !read_full(reader, &mut length)? {
                    return Ok(false);
                }
                let Some(payload) = u16::from_be_bytes(length).checked_sub(2) else {
                    return Ok(false);
                };
                reader.seek_relative(i64::from(payload))?;
            }
        }
    }
}

/// Consumes bytes up to and including the next `byte`, returning false at the end of data.
fn skip_past_byte<R: BufRead>(reader: &mut R, byte: u8) -> io::Result<bool> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(false);
        }
        match buffer.iter().position(|&b| b == byte) {
            Some(index) => {
                reader.consume(index + 1);
                return Ok(true);
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
            }
        }
    }
}

/// Consumes fill bytes (0xFF) and returns the marker code after them, or none at the end of data.
fn next_marker_code<R: BufRead>(reader: &mut R) -> io::Result<Option<u8>> {
    loop {
        let buffer = reader.fill_buf()?;
        let Some(&code) = buffer.first() else {
            return Ok(None);
        };
        reader.consume(1);
        if code != 0xFF {
            return Ok(Some(code));
        }
    }
}

/// Fills `buffer` completely, returning false when the data ends first.
fn read_full<R: BufRead>(reader: &mut R, buffer: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buffer) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn complete(bytes: &[u8]) -> bool {
        let mut cursor = Cursor::new(bytes);
        let result = reaches_end_marker(&mut cursor).expect("cursor reads cannot fail");
        assert_eq!(cursor.position(), 0, "the reader is rewound");
        result
    }

    #[test]
    fn accepts_a_stream_that_ends_with_its_marker() {
        // SOI, an APP1 holding a fake thumbnail end marker, SOS with coded data, EOI, trailer.
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00, 0xFF, 0xDA, 0x00, 0x02,
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9, b'm', b'p', b'4',
        ];
        assert!(complete(&bytes));
    }

    #[test]
    fn refuses_a_stream_cut_inside_the_coded_data() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34];
        assert!(!complete(&bytes));
    }

    #[test]
    fn refuses_a_stream_whose_only_end_marker_sits_inside_a_segment() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, 0xFF, 0xD9];
        assert!(!complete(&bytes));
    }

    #[test]
    fn refuses_a_bad_segment_length_and_a_missing_start_marker() {
        assert!(!complete(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xD9]));
        assert!(!complete(&[0x00, 0xD8, 0xFF, 0xD9]));
        assert!(!complete(&[]));
    }
}
