//! Stitching: blending optimised tiles back into one canvas.
//!
//! After the workers of a scale return their tiles, the coordinator adds each one to a
//! [`Stitcher`], which accumulates `weight * pixel` into a canvas the size of the scale. The
//! weights come from [`TilePlan`] and form a partition of unity, so no per-pixel weight sum is
//! kept and the finished canvas is the blended image as is.

use image::{ImageBuffer, Rgb32FImage};
use thiserror::Error;

use crate::tiling::{Rect, Tile, TilePlan};

/// Channels per pixel of an [`Rgb32FImage`].
const CHANNELS: usize = 3;

/// How many missing tile indices an error message lists before eliding the rest.
const MAX_LISTED_MISSING: usize = 16;

/// Errors raised while stitching tiles.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StitchError {
    /// The canvas would not fit in memory (or its size overflows).
    #[error("cannot allocate a {width}x{height} canvas ({bytes} bytes)")]
    CanvasTooLarge {
        /// Canvas width in pixels.
        width: u32,
        /// Canvas height in pixels.
        height: u32,
        /// Bytes the canvas needs, saturated at `u64::MAX`.
        bytes: u64,
    },
    /// The tile is not part of the plan this stitcher was made for.
    #[error("tile {index} at {rect:?} is not part of this plan")]
    UnknownTile {
        /// Index the tile claims.
        index: usize,
        /// Rect the tile claims.
        rect: Rect,
    },
    /// The tile's pixels do not have the size of its rect.
    #[error("tile {index} must be {expected_width}x{expected_height}, got {width}x{height}")]
    SizeMismatch {
        /// Index of the tile.
        index: usize,
        /// Width of the tile's rect.
        expected_width: u32,
        /// Height of the tile's rect.
        expected_height: u32,
        /// Width of the pixels given.
        width: u32,
        /// Height of the pixels given.
        height: u32,
    },
    /// The tile was already added.
    #[error("tile {index} was already added")]
    DuplicateTile {
        /// Index of the tile.
        index: usize,
    },
    /// Some tiles were never added.
    #[error("{} of {total} tiles missing: {}", .missing.len(), list_indices(.missing))]
    MissingTiles {
        /// Indices of the missing tiles, ascending.
        missing: Vec<usize>,
        /// Number of tiles in the plan.
        total: usize,
    },
}

/// Result alias for stitching.
pub type Result<T> = std::result::Result<T, StitchError>;

fn list_indices(indices: &[usize]) -> String {
    let shown: Vec<String> = indices
        .iter()
        .take(MAX_LISTED_MISSING)
        .map(|i| i.to_string())
        .collect();
    if indices.len() > MAX_LISTED_MISSING {
        format!("{}, ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Blends the tiles of one [`TilePlan`] into a canvas of the plan's size.
///
/// Peak memory is the canvas, `12 * width * height` bytes (3 GiB for 16384 x 16384), plus the
/// plan (about 40 bytes per tile), one flag per tile and, during [`Stitcher::add`], the tile's
/// axis weights (`8 * tile_size` bytes); the tile pixels belong to the caller. The canvas is
/// zeroed lazily by the allocator, so resident memory grows as tiles arrive.
#[derive(Debug)]
pub struct Stitcher {
    plan: TilePlan,
    canvas: Rgb32FImage,
    added: Vec<bool>,
    num_added: usize,
}

impl Stitcher {
    /// Creates a stitcher with an all-zero canvas for `plan`.
    pub fn new(plan: &TilePlan) -> Result<Self> {
        let (width, height) = (plan.width(), plan.height());
        let too_large = || StitchError::CanvasTooLarge {
            width,
            height,
            bytes: (u64::from(width) * u64::from(height))
                .saturating_mul((CHANNELS * size_of::<f32>()) as u64),
        };
        let len = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(CHANNELS))
            .ok_or_else(too_large)?;
        // Fallible allocation first, so an absurd size is an error rather than an abort; the
        // zeroed vector after it is a calloc whose pages are only touched when written.
        Vec::<f32>::new()
            .try_reserve_exact(len)
            .map_err(|_| too_large())?;
        let canvas = ImageBuffer::from_raw(width, height, vec![0.0f32; len])
            .expect("buffer length is width * height * 3 by construction");
        Ok(Self {
            plan: plan.clone(),
            canvas,
            added: vec![false; plan.num_tiles()],
            num_added: 0,
        })
    }

    /// Returns the plan this stitcher blends.
    pub fn plan(&self) -> &TilePlan {
        &self.plan
    }

    /// Returns how many tiles have been added.
    pub fn num_added(&self) -> usize {
        self.num_added
    }

    /// Tells whether every tile of the plan has been added.
    pub fn is_complete(&self) -> bool {
        self.num_added == self.added.len()
    }

    /// Returns the indices of the tiles not added yet, ascending.
    pub fn missing_tiles(&self) -> Vec<usize> {
        (0..self.added.len()).filter(|&i| !self.added[i]).collect()
    }

    /// Blends `pixels`, the optimised content of `tile` (exactly its rect's size), into the canvas.
    pub fn add(&mut self, tile: &Tile, pixels: &Rgb32FImage) -> Result<()> {
        if !self.plan.contains_tile(tile) {
            return Err(StitchError::UnknownTile {
                index: tile.index,
                rect: tile.rect,
            });
        }
        let rect = tile.rect;
        if pixels.dimensions() != (rect.width, rect.height) {
            return Err(StitchError::SizeMismatch {
                index: tile.index,
                expected_width: rect.width,
                expected_height: rect.height,
                width: pixels.width(),
                height: pixels.height(),
            });
        }
        if self.added[tile.index] {
            return Err(StitchError::DuplicateTile { index: tile.index });
        }

        let weights = self.plan.axis_weights(tile);
        // One weight per value rather than per pixel keeps the inner loop flat, so it vectorises.
        let channel_weights: Vec<f32> = weights.xs.iter().flat_map(|&wx| [wx; CHANNELS]).collect();
        let canvas_row_len = self.canvas.width() as usize * CHANNELS;
        let tile_row_len = rect.width as usize * CHANNELS;
        let first = rect.y as usize * canvas_row_len + rect.x as usize * CHANNELS;
        let canvas: &mut [f32] = &mut self.canvas;
        let rows = pixels.as_raw().chunks_exact(tile_row_len);
        for (dy, (src, &wy)) in rows.zip(&weights.ys).enumerate() {
            let start = first + dy * canvas_row_len;
            let dst = &mut canvas[start..start + tile_row_len];
            for ((d, s), &wx) in dst.iter_mut().zip(src).zip(&channel_weights) {
                *d += (wx * wy) * s;
            }
        }

        self.added[tile.index] = true;
        self.num_added += 1;
        Ok(())
    }

    /// Returns the blended canvas once every tile has been added.
    pub fn finish(self) -> Result<Rgb32FImage> {
        if !self.is_complete() {
            return Err(StitchError::MissingTiles {
                missing: self.missing_tiles(),
                total: self.added.len(),
            });
        }
        Ok(self.canvas)
    }
}

/// Copies the pixels of `rect` out of `img`, clamping `rect` to the image (so a rect partly
/// outside gives a smaller image, and one fully outside gives an empty one).
pub fn crop(img: &Rgb32FImage, rect: Rect) -> Rgb32FImage {
    let Some(rect) = rect.intersect(&Rect::new(0, 0, img.width(), img.height())) else {
        return Rgb32FImage::new(0, 0);
    };
    let src_row_len = img.width() as usize * CHANNELS;
    let row_len = rect.width as usize * CHANNELS;
    let mut out = Vec::with_capacity(row_len * rect.height as usize);
    for y in rect.y..rect.y + rect.height {
        let start = y as usize * src_row_len + rect.x as usize * CHANNELS;
        out.extend_from_slice(&img.as_raw()[start..start + row_len]);
    }
    ImageBuffer::from_raw(rect.width, rect.height, out)
        .expect("cropped buffer holds width * height * 3 values by construction")
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;
    use crate::tiling::plan_tiles;

    /// Fills an image with deterministic pseudo-random values in [0, 1) (splitmix64).
    fn random_image(width: u32, height: u32, seed: u64) -> Rgb32FImage {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        };
        ImageBuffer::from_fn(width, height, |_, _| Rgb([next(), next(), next()]))
    }

    fn max_abs_diff(a: &Rgb32FImage, b: &Rgb32FImage) -> f32 {
        assert_eq!(a.dimensions(), b.dimensions());
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn stitch_crops(image: &Rgb32FImage, plan: &TilePlan) -> Rgb32FImage {
        let mut stitcher = Stitcher::new(plan).unwrap();
        // Reverse order: the result must not depend on arrival order beyond rounding.
        for tile in plan.tiles().iter().rev() {
            stitcher.add(tile, &crop(image, tile.rect)).unwrap();
        }
        assert!(stitcher.is_complete());
        stitcher.finish().unwrap()
    }

    #[test]
    fn stitching_crops_of_one_image_gives_it_back() {
        for (width, height, tile_size, overlap, seed) in [
            (257, 199, 64, 16, 1),
            (300, 130, 50, 24, 2),
            (17, 40, 10, 4, 3),
            (33, 21, 64, 8, 4),
        ] {
            let image = random_image(width, height, seed);
            let plan = plan_tiles(width, height, tile_size, overlap).unwrap();
            let stitched = stitch_crops(&image, &plan);
            let diff = max_abs_diff(&stitched, &image);
            assert!(
                diff < 1e-6,
                "diff {diff} for {width}x{height} tile {tile_size}/{overlap}"
            );
        }
    }

    #[test]
    fn blends_overlaps_with_the_plan_weights() {
        // Two tiles of constant 0 and 1: the overlap shows the first tile's falling ramp.
        let plan = plan_tiles(16, 1, 10, 4).unwrap();
        let mut stitcher = Stitcher::new(&plan).unwrap();
        let [left, right] = plan.tiles() else {
            panic!("expected two tiles")
        };
        stitcher
            .add(left, &Rgb32FImage::from_pixel(10, 1, Rgb([0.0; 3])))
            .unwrap();
        stitcher
            .add(right, &Rgb32FImage::from_pixel(10, 1, Rgb([1.0; 3])))
            .unwrap();
        let out = stitcher.finish().unwrap();
        for x in 0..16 {
            let expected = plan.blend_weight(right, x, 0);
            assert!((out.get_pixel(x, 0)[1] - expected).abs() < 1e-7, "x {x}");
        }
        assert_eq!(out.get_pixel(5, 0)[0], 0.0);
        assert_eq!(out.get_pixel(10, 0)[2], 1.0);
        assert!(out.get_pixel(7, 0)[0] > 0.0 && out.get_pixel(7, 0)[0] < 0.5);
    }

    #[test]
    fn rejects_wrong_size_duplicate_and_foreign_tiles() {
        let plan = plan_tiles(100, 80, 64, 16).unwrap();
        let mut stitcher = Stitcher::new(&plan).unwrap();
        let tile = *plan.tile(1).unwrap();
        let err = stitcher.add(&tile, &Rgb32FImage::new(63, 64)).unwrap_err();
        assert_eq!(
            err,
            StitchError::SizeMismatch {
                index: 1,
                expected_width: 64,
                expected_height: 64,
                width: 63,
                height: 64
            }
        );
        assert_eq!(err.to_string(), "tile 1 must be 64x64, got 63x64");
        assert_eq!(stitcher.num_added(), 0);

        stitcher.add(&tile, &Rgb32FImage::new(64, 64)).unwrap();
        let err = stitcher.add(&tile, &Rgb32FImage::new(64, 64)).unwrap_err();
        assert_eq!(err, StitchError::DuplicateTile { index: 1 });

        let foreign = Tile { index: 7, ..tile };
        let err = stitcher
            .add(&foreign, &Rgb32FImage::new(64, 64))
            .unwrap_err();
        assert_eq!(
            err,
            StitchError::UnknownTile {
                index: 7,
                rect: tile.rect
            }
        );
        assert_eq!(stitcher.num_added(), 1);
    }

    #[test]
    fn finish_names_missing_tiles() {
        let plan = plan_tiles(100, 80, 64, 16).unwrap();
        assert_eq!(plan.num_tiles(), 4);
        let mut stitcher = Stitcher::new(&plan).unwrap();
        stitcher
            .add(plan.tile(2).unwrap(), &Rgb32FImage::new(64, 64))
            .unwrap();
        assert_eq!(stitcher.missing_tiles(), [0, 1, 3]);
        let err = stitcher.finish().unwrap_err();
        assert_eq!(
            err,
            StitchError::MissingTiles {
                missing: vec![0, 1, 3],
                total: 4
            }
        );
        assert_eq!(err.to_string(), "3 of 4 tiles missing: 0, 1, 3");
    }

    #[test]
    fn missing_list_is_elided_when_long() {
        let text = list_indices(&(0..20).collect::<Vec<_>>());
        assert!(text.ends_with("14, 15, ..."), "{text}");
    }

    #[test]
    fn crop_clamps_to_the_image() {
        let image = random_image(20, 10, 5);
        let inside = crop(&image, Rect::new(3, 2, 5, 4));
        assert_eq!(inside.dimensions(), (5, 4));
        assert_eq!(inside.get_pixel(0, 0), image.get_pixel(3, 2));
        assert_eq!(inside.get_pixel(4, 3), image.get_pixel(7, 5));
        assert_eq!(crop(&image, Rect::new(15, 8, 10, 10)).dimensions(), (5, 2));
        assert_eq!(crop(&image, Rect::new(20, 0, 1, 1)).dimensions(), (0, 0));
    }
}
