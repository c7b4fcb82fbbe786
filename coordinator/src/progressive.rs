//! Phased tiles and the progressive canvas they start from.
//!
//! A tiled scale runs its tiles in four phases by the parity of their column and row, so no two
//! tiles of a phase are neighbours and a phase's tiles can run in parallel. Each tile starts from
//! a [`ProgressiveCanvas`]: the scale's start image with the finished tiles of earlier phases
//! blended in, so a tile's overlap begins from what its neighbours made instead of averaging two
//! unrelated textures. The embedded renderer (`deepstyle render`) and the farm's job manager both
//! use this module, which is what keeps their outputs equal.

use image::Rgb32FImage;

use crate::stitch::{Result, StitchError};
use crate::tiling::{Tile, TilePlan};

/// Number of tile phases of a tiled scale.
pub const NUM_PHASES: usize = 4;

/// Returns the phase of a tile: `col % 2 + 2 * (row % 2)`.
pub fn phase_of(tile: &Tile) -> usize {
    (tile.col % 2 + 2 * (tile.row % 2)) as usize
}

/// Groups a plan's tiles into [`NUM_PHASES`] phases, in run order, each in tile-index order.
pub fn tile_phases(plan: &TilePlan) -> [Vec<&Tile>; NUM_PHASES] {
    let mut phases: [Vec<&Tile>; NUM_PHASES] = Default::default();
    for tile in plan.tiles() {
        phases[phase_of(tile)].push(tile);
    }
    phases
}

/// A scale's canvas while its tiles finish: where finished tiles cover a pixel, their blend
/// normalised by the weight they have there (`sum w * tile / sum w`); elsewhere the start image.
///
/// Normalising matters: a later tile's overlap then starts from its finished neighbour's texture
/// itself, not from a fade between that texture and the blurry upsampled start, so blending the
/// two at the end does not wash the texture out. The weights are a partition of unity, so once
/// every tile is in, the canvas is the stitched image.
#[derive(Debug, Clone)]
pub struct ProgressiveCanvas {
    base: Rgb32FImage,
    /// `sum w * tile` over finished tiles.
    sum: Rgb32FImage,
    /// `sum w` over finished tiles, one value per pixel.
    weight: Vec<f32>,
    canvas: Rgb32FImage,
    added: Vec<bool>,
}

impl ProgressiveCanvas {
    /// Starts a canvas from the scale's start image (the plan's size).
    pub fn new(base: Rgb32FImage) -> Self {
        let (width, height) = base.dimensions();
        Self {
            sum: Rgb32FImage::new(width, height),
            weight: vec![0.0; width as usize * height as usize],
            canvas: base.clone(),
            base,
            added: Vec::new(),
        }
    }

    /// Returns the canvas as it is now.
    pub fn image(&self) -> &Rgb32FImage {
        &self.canvas
    }

    /// Blends a finished tile's pixels (exactly its rect's size) into the canvas.
    pub fn blend(&mut self, plan: &TilePlan, tile: &Tile, pixels: &Rgb32FImage) -> Result<()> {
        let r = tile.rect;
        if !plan.contains_tile(tile) || self.base.dimensions() != (plan.width(), plan.height()) {
            return Err(StitchError::UnknownTile {
                index: tile.index,
                rect: r,
            });
        }
        if pixels.dimensions() != (r.width, r.height) {
            return Err(StitchError::SizeMismatch {
                index: tile.index,
                expected_width: r.width,
                expected_height: r.height,
                width: pixels.width(),
                height: pixels.height(),
            });
        }
        if self.added.len() < plan.num_tiles() {
            self.added.resize(plan.num_tiles(), false);
        }
        if self.added[tile.index] {
            return Err(StitchError::DuplicateTile { index: tile.index });
        }
        let weights = plan.axis_weights(tile);
        for (dy, wy) in weights.ys.iter().enumerate() {
            for (dx, wx) in weights.xs.iter().enumerate() {
                let (x, y) = (r.x + dx as u32, r.y + dy as u32);
                let w = wx * wy;
                let value = pixels.get_pixel(dx as u32, dy as u32).0;
                let sum = &mut self.sum.get_pixel_mut(x, y).0;
                for c in 0..3 {
                    sum[c] += w * value[c];
                }
                let total = &mut self.weight[y as usize * self.base.width() as usize + x as usize];
                *total += w;
                let out = &mut self.canvas.get_pixel_mut(x, y).0;
                if *total > 0.0 {
                    for c in 0..3 {
                        out[c] = sum[c] / *total;
                    }
                }
            }
        }
        self.added[tile.index] = true;
        Ok(())
    }

    /// Returns the stitched image once every tile of `plan` is in.
    pub fn finish(self, plan: &TilePlan) -> Result<Rgb32FImage> {
        let missing: Vec<usize> = (0..plan.num_tiles())
            .filter(|&i| !self.added.get(i).copied().unwrap_or(false))
            .collect();
        if !missing.is_empty() {
            return Err(StitchError::MissingTiles {
                missing,
                total: plan.num_tiles(),
            });
        }
        Ok(self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stitch::{crop, Stitcher};
    use crate::tiling::plan_tiles;

    fn gradient(width: u32, height: u32, k: f32) -> Rgb32FImage {
        Rgb32FImage::from_fn(width, height, |x, y| {
            image::Rgb([k * x as f32 / width as f32, y as f32 / height as f32, k])
        })
    }

    #[test]
    fn phases_hold_no_neighbours_and_cover_every_tile() {
        let plan = plan_tiles(300, 200, 100, 20).unwrap();
        let phases = tile_phases(&plan);
        assert_eq!(phases.iter().map(Vec::len).sum::<usize>(), plan.num_tiles());
        for (p, phase) in phases.iter().enumerate() {
            for a in phase {
                assert_eq!(phase_of(a), p);
                for b in phase.iter().filter(|b| b.index != a.index) {
                    let near = a.col.abs_diff(b.col) <= 1 && a.row.abs_diff(b.row) <= 1;
                    assert!(!near, "tiles {} and {} are neighbours", a.index, b.index);
                }
            }
        }
    }

    #[test]
    fn finished_canvas_equals_the_stitched_image() {
        let plan = plan_tiles(300, 200, 100, 20).unwrap();
        let target = gradient(300, 200, 0.8);
        let mut canvas = ProgressiveCanvas::new(gradient(300, 200, 0.1));
        let mut stitcher = Stitcher::new(&plan).unwrap();
        for phase in tile_phases(&plan) {
            for tile in phase {
                let pixels = crop(&target, tile.rect);
                canvas.blend(&plan, tile, &pixels).unwrap();
                stitcher.add(tile, &pixels).unwrap();
            }
        }
        let (a, b) = (canvas.finish(&plan).unwrap(), stitcher.finish().unwrap());
        let diff = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "canvas differs from the stitcher by {diff}");
    }

    #[test]
    fn unfinished_canvas_names_missing_tiles() {
        let plan = plan_tiles(300, 200, 100, 20).unwrap();
        let mut canvas = ProgressiveCanvas::new(gradient(300, 200, 0.1));
        let tile = plan.tile(0).unwrap();
        canvas
            .blend(&plan, tile, &crop(&gradient(300, 200, 0.5), tile.rect))
            .unwrap();
        let err = canvas.finish(&plan).unwrap_err();
        assert!(matches!(err, StitchError::MissingTiles { ref missing, .. }
            if missing.len() == plan.num_tiles() - 1));
    }
}
