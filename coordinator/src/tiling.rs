//! Tile planning: cutting an output canvas into overlapping tiles and the weights that blend
//! them back together.
//!
//! A fine scale too large for one worker is split into a grid of square-ish tiles of side
//! `tile_size` (overlap included). Each axis is planned on its own: when the axis is no longer
//! than a tile it gets a single span of its full length; otherwise it gets
//! `n = ceil((L - overlap) / (tile_size - overlap))` spans, all exactly `tile_size` long, whose
//! starts are spread evenly from `0` to `L - tile_size`. Spreading keeps every overlap at least
//! `overlap` pixels wide and never leaves a thin sliver at the far edge.
//!
//! # Blend weights
//!
//! Weights are separable (`w(x, y) = wx(x) * wy(y)`) and each axis is a partition of unity, so
//! the weights of all tiles at any pixel sum to one up to float rounding. On an axis, each pair
//! of consecutive spans gets a *blend zone* inside their overlap; across the middle
//! [`FEATHER_FRACTION`] of it the earlier span ramps from 1 to 0 with a raised cosine (Hann) and
//! the later one takes the exact complement. Elsewhere a pixel belongs to one span with weight 1.
//!
//! The blend zone of a pair is normally their whole overlap. But even spreading, just after
//! the span count steps up, can pull spans so close that three cover the same pixels (with
//! `overlap < tile_size / 2`, never four); then the two neighbouring overlaps intersect, and
//! that contested strip is split at its midpoint between the two blend zones. So zones never
//! intersect, each pixel is blended from at most two spans per axis, and no renormalisation
//! is needed. The split holds for any layout, so it does not rely on the "never four".

use thiserror::Error;

use self::axis::{axis_count, AxisPlan};

mod axis;

/// Fraction of each blend zone (the overlap of two tiles) over which their weights ramp,
/// centred on its middle; on either side of the ramp one tile has all the weight.
///
/// Averaging two tiles' textures washes out fine texture, while too short a ramp lets borders
/// show. Measured on the CI tiled render (cli/tests/tiled.rs) when it was 192x144 with 76 px
/// cores and every tile aimed at the plain style target:
/// fraction 1.0 gave border/elsewhere gradient 1.135 and tiled/untiled style loss 2.24x;
/// 0.5 gave 0.957 and 2.36x; 0.25 gave 0.934 and 2.58x.
pub const FEATHER_FRACTION: f32 = 0.5;

/// Halo rects start at multiples of this (the stride of VGG19's relu5_1), so a tile's pooling
/// grid lines up with the whole image's and its features are the whole image's own.
pub const HALO_ALIGN: u32 = 16;

/// Returns the core side of tiles whose halo rects, aligned to [`HALO_ALIGN`], are at most
/// `tile_size` pixels on a side, or `None` when `tile_size` leaves no room inside the halo.
pub fn tile_core(tile_size: u32, halo: u32) -> Option<u32> {
    tile_size
        .checked_sub(2 * halo + HALO_ALIGN - 1)
        .filter(|&core| core > 0)
}

/// The most tiles one plan may hold, a guard against absurd sizes before anything is allocated.
pub const MAX_TILES: u64 = 1 << 20;

/// Errors raised while planning tiles.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TilingError {
    /// The output has a zero width or height.
    #[error("output size must be positive, got {width}x{height}")]
    EmptyImage {
        /// Requested output width in pixels.
        width: u32,
        /// Requested output height in pixels.
        height: u32,
    },
    /// The tile size is zero.
    #[error("tile size must be positive, got {tile_size}")]
    EmptyTile {
        /// Requested tile side in pixels.
        tile_size: u32,
    },
    /// The overlap leaves no core in the tile (it must be less than half the tile size).
    #[error("overlap {overlap} must be less than half the tile size {tile_size}")]
    OverlapTooLarge {
        /// Requested tile side in pixels.
        tile_size: u32,
        /// Requested overlap in pixels.
        overlap: u32,
    },
    /// The plan would hold more than [`MAX_TILES`] tiles.
    #[error("{width}x{height} with tile size {tile_size} needs {num_tiles} tiles, above {max}")]
    TooManyTiles {
        /// Requested output width in pixels.
        width: u32,
        /// Requested output height in pixels.
        height: u32,
        /// Requested tile side in pixels.
        tile_size: u32,
        /// Number of tiles the plan would need.
        num_tiles: u64,
        /// The limit, [`MAX_TILES`].
        max: u64,
    },
}

/// Result alias for tile planning.
pub type Result<T> = std::result::Result<T, TilingError>;

/// An axis-aligned pixel rectangle, `x..x + width` by `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge, inclusive.
    pub x: u32,
    /// Top edge, inclusive.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// Creates a rectangle from its top-left corner and size.
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// Returns the exclusive right edge, widened so it cannot overflow.
    pub fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.width)
    }

    /// Returns the exclusive bottom edge, widened so it cannot overflow.
    pub fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.height)
    }

    /// Returns the number of pixels in the rectangle.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Tells whether the rectangle holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Tells whether the pixel `(x, y)` lies inside the rectangle.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && u64::from(x) < self.right() && y >= self.y && u64::from(y) < self.bottom()
    }

    /// Tells whether `other` lies entirely inside this rectangle.
    pub fn contains_rect(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// Returns the pixels common to both rectangles, or `None` when they do not intersect.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= u64::from(x) || bottom <= u64::from(y) {
            return None;
        }
        // Both extents are bounded by an input's width or height, so they fit in u32.
        Some(Rect::new(
            x,
            y,
            (right - u64::from(x)) as u32,
            (bottom - u64::from(y)) as u32,
        ))
    }

    /// Returns this rectangle in the coordinates of `outer`, or `None` if it is not inside it.
    pub fn relative_to(&self, outer: &Rect) -> Option<Rect> {
        outer
            .contains_rect(self)
            .then(|| Rect::new(self.x - outer.x, self.y - outer.y, self.width, self.height))
    }
}

/// A one-dimensional run of pixels, `start..start + len`, along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// First pixel, inclusive.
    pub start: u32,
    /// Length in pixels.
    pub len: u32,
}

impl Span {
    /// Returns the exclusive end of the span, saturating at `u32::MAX`.
    pub fn end(&self) -> u32 {
        self.start.saturating_add(self.len)
    }
}

/// One tile of a plan: its position in the grid and the pixels it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Position in the plan's tile list, row-major.
    pub index: usize,
    /// Column of the tile in the grid.
    pub col: u32,
    /// Row of the tile in the grid.
    pub row: u32,
    /// The output pixels the tile covers, overlap included.
    pub rect: Rect,
}

/// Blend weights of one tile along each axis, indexed relative to the tile's rect.
#[derive(Debug, Clone, PartialEq)]
pub struct TileWeights {
    /// Weight of each column of the tile, `rect.width` values.
    pub xs: Vec<f32>,
    /// Weight of each row of the tile, `rect.height` values.
    pub ys: Vec<f32>,
}

impl TileWeights {
    /// Returns the weight at `(dx, dy)` relative to the tile's top-left corner, 0 outside it.
    pub fn at(&self, dx: usize, dy: usize) -> f32 {
        match (self.xs.get(dx), self.ys.get(dy)) {
            (Some(wx), Some(wy)) => wx * wy,
            _ => 0.0,
        }
    }
}

/// A deterministic tiling of a `width` x `height` output, with its blend weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePlan {
    width: u32,
    height: u32,
    tile_size: u32,
    overlap: u32,
    tiles: Vec<Tile>,
    cols: AxisPlan,
    rows: AxisPlan,
}

/// Plans the tiles of a `width` x `height` output with tiles of side `tile_size` overlapping by
/// at least `overlap` pixels.
pub fn plan_tiles(width: u32, height: u32, tile_size: u32, overlap: u32) -> Result<TilePlan> {
    if width == 0 || height == 0 {
        return Err(TilingError::EmptyImage { width, height });
    }
    if tile_size == 0 {
        return Err(TilingError::EmptyTile { tile_size });
    }
    if u64::from(overlap) * 2 >= u64::from(tile_size) {
        return Err(TilingError::OverlapTooLarge { tile_size, overlap });
    }
    let num_tiles = axis_count(width, tile_size, overlap) * axis_count(height, tile_size, overlap);
    if num_tiles > MAX_TILES {
        return Err(TilingError::TooManyTiles {
            width,
            height,
            tile_size,
            num_tiles,
            max: MAX_TILES,
        });
    }

    let cols = AxisPlan::new(width, tile_size, overlap);
    let rows = AxisPlan::new(height, tile_size, overlap);
    let mut tiles = Vec::with_capacity(cols.spans.len() * rows.spans.len());
    for (row, ys) in rows.spans.iter().enumerate() {
        for (col, xs) in cols.spans.iter().enumerate() {
            tiles.push(Tile {
                index: tiles.len(),
                col: col as u32,
                row: row as u32,
                rect: Rect::new(xs.start, ys.start, xs.len, ys.len),
            });
        }
    }
    tracing::debug!(
        width,
        height,
        tile_size,
        overlap,
        num_tiles = tiles.len(),
        "planned tiles"
    );
    Ok(TilePlan {
        width,
        height,
        tile_size,
        overlap,
        tiles,
        cols,
        rows,
    })
}

impl TilePlan {
    /// Returns the output width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Returns the output height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Returns the requested tile side in pixels.
    pub fn tile_size(&self) -> u32 {
        self.tile_size
    }

    /// Returns the requested minimum overlap in pixels.
    pub fn overlap(&self) -> u32 {
        self.overlap
    }

    /// Returns all tiles, row-major, each at the position given by its `index`.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Returns the tile at `index`, if any.
    pub fn tile(&self, index: usize) -> Option<&Tile> {
        self.tiles.get(index)
    }

    /// Returns the number of tiles.
    pub fn num_tiles(&self) -> usize {
        self.tiles.len()
    }

    /// Returns the horizontal spans of the tile columns, left to right.
    pub fn cols(&self) -> &[Span] {
        &self.cols.spans
    }

    /// Returns the vertical spans of the tile rows, top to bottom.
    pub fn rows(&self) -> &[Span] {
        &self.rows.spans
    }

    /// Returns the rectangle of the whole output.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// Tells whether `tile` is exactly the tile this plan holds at `tile.index`.
    pub fn contains_tile(&self, tile: &Tile) -> bool {
        self.tiles.get(tile.index) == Some(tile)
    }

    /// Returns the tile's rect grown by `halo` pixels on each side, clamped to the output (so
    /// empty for a made-up tile outside it).
    ///
    /// The optimiser sees this region for context; the halo is cropped away afterwards (see
    /// [`TilePlan::inner_rect`]).
    pub fn halo_rect(&self, tile: &Tile, halo: u32) -> Rect {
        let x = tile.rect.x.saturating_sub(halo) / HALO_ALIGN * HALO_ALIGN;
        let y = tile.rect.y.saturating_sub(halo) / HALO_ALIGN * HALO_ALIGN;
        let right = (tile.rect.right() + u64::from(halo)).min(u64::from(self.width));
        let bottom = (tile.rect.bottom() + u64::from(halo)).min(u64::from(self.height));
        // Clamped to the output, whose size fits in u32; empty for a tile lying outside it.
        Rect::new(
            x,
            y,
            right.saturating_sub(u64::from(x)) as u32,
            bottom.saturating_sub(u64::from(y)) as u32,
        )
    }

    /// Returns the tile's rect in the coordinates of its halo rect, the crop that drops the halo.
    pub fn inner_rect(&self, tile: &Tile, halo: u32) -> Rect {
        let outer = self.halo_rect(tile, halo);
        Rect::new(
            tile.rect.x.saturating_sub(outer.x),
            tile.rect.y.saturating_sub(outer.y),
            tile.rect.width,
            tile.rect.height,
        )
    }

    /// Returns the blend weight of `tile` at output pixel `(x, y)`, 0 outside the tile or for a
    /// tile not in this plan.
    pub fn blend_weight(&self, tile: &Tile, x: u32, y: u32) -> f32 {
        if !self.contains_tile(tile) {
            return 0.0;
        }
        self.cols.weight(tile.col as usize, x) * self.rows.weight(tile.row as usize, y)
    }

    /// Returns the per-column and per-row weights of `tile`, empty for a tile not in this plan.
    pub fn axis_weights(&self, tile: &Tile) -> TileWeights {
        if !self.contains_tile(tile) {
            return TileWeights {
                xs: Vec::new(),
                ys: Vec::new(),
            };
        }
        TileWeights {
            xs: self.cols.span_weights(tile.col as usize),
            ys: self.rows.span_weights(tile.row as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn plans_cover_every_pixel_with_unit_weight(
            width in 1u32..300,
            height in 1u32..300,
            tile_size in 2u32..160,
            overlap_frac in 0.0f64..0.5,
        ) {
            let overlap = ((f64::from(tile_size) * overlap_frac) as u32).min((tile_size - 1) / 2);
            let plan = plan_tiles(width, height, tile_size, overlap).unwrap();
            let mut sums = vec![0.0f32; (width * height) as usize];
            let mut covered = vec![0u8; (width * height) as usize];
            for (i, tile) in plan.tiles().iter().enumerate() {
                prop_assert_eq!(tile.index, i);
                prop_assert!(plan.bounds().contains_rect(&tile.rect));
                if width > tile_size {
                    prop_assert_eq!(tile.rect.width, tile_size);
                }
                if height > tile_size {
                    prop_assert_eq!(tile.rect.height, tile_size);
                }
                let weights = plan.axis_weights(tile);
                for dy in 0..tile.rect.height {
                    for dx in 0..tile.rect.width {
                        let (x, y) = (tile.rect.x + dx, tile.rect.y + dy);
                        let w = weights.at(dx as usize, dy as usize);
                        prop_assert_eq!(w, plan.blend_weight(tile, x, y));
                        sums[(y * width + x) as usize] += w;
                        covered[(y * width + x) as usize] += 1;
                    }
                }
            }
            prop_assert!(covered.iter().all(|&c| c > 0));
            for (i, sum) in sums.iter().enumerate() {
                prop_assert!((sum - 1.0).abs() < 1e-5, "sum {} at pixel {}", sum, i);
            }
        }
    }

    #[test]
    fn spreads_tiles_evenly_with_known_starts() {
        // 1000 px, tile 512, overlap 128: ceil(872 / 384) = 3 tiles, starts 0, 244, 488.
        let plan = plan_tiles(1000, 300, 512, 128).unwrap();
        let starts: Vec<u32> = plan.cols().iter().map(|s| s.start).collect();
        assert_eq!(starts, [0, 244, 488]);
        assert_eq!(plan.rows(), &[Span { start: 0, len: 300 }]);
        assert_eq!(plan.num_tiles(), 3);
        assert_eq!(plan.tile(2).unwrap().rect, Rect::new(488, 0, 512, 300));
    }

    #[test]
    fn halo_rect_is_clamped_and_inner_rect_undoes_it() {
        let plan = plan_tiles(1000, 700, 512, 128).unwrap();
        let first = plan.tile(0).unwrap();
        assert_eq!(plan.halo_rect(first, 64), Rect::new(0, 0, 576, 576));
        assert_eq!(plan.inner_rect(first, 64), Rect::new(0, 0, 512, 512));
        let last = plan.tiles().last().unwrap();
        assert_eq!(last.rect, Rect::new(488, 188, 512, 512));
        // 488 - 64 and 188 - 64 round down to multiples of HALO_ALIGN.
        assert_eq!(plan.halo_rect(last, 64), Rect::new(416, 112, 584, 588));
        assert_eq!(plan.inner_rect(last, 64), Rect::new(72, 76, 512, 512));
        let halo = plan.halo_rect(last, 64);
        assert_eq!(
            last.rect.relative_to(&halo),
            Some(plan.inner_rect(last, 64))
        );
    }

    #[test]
    fn aligned_halo_rects_fit_the_tile_size() {
        assert_eq!(tile_core(256, 42), Some(157));
        assert_eq!(tile_core(99, 42), None);
        assert_eq!(tile_core(98, 42), None);
        for (width, height, tile_size, halo, overlap) in [
            (1000, 700, 512, 78, 128),
            (777, 333, 300, 42, 40),
            (4097, 65, 200, 13, 7),
        ] {
            let core = tile_core(tile_size, halo).unwrap();
            let plan = plan_tiles(width, height, core, overlap).unwrap();
            for tile in plan.tiles() {
                let outer = plan.halo_rect(tile, halo);
                assert_eq!(outer.x % HALO_ALIGN, 0, "{outer:?}");
                assert_eq!(outer.y % HALO_ALIGN, 0, "{outer:?}");
                assert!(
                    outer.width <= tile_size && outer.height <= tile_size,
                    "{outer:?}"
                );
                let inner = plan.inner_rect(tile, halo);
                assert!(inner.x >= halo.min(tile.rect.x) && inner.y >= halo.min(tile.rect.y));
            }
        }
    }

    #[test]
    fn rect_helpers_work_on_edges() {
        let a = Rect::new(10, 20, 30, 40);
        assert_eq!(a.right(), 40);
        assert_eq!(a.bottom(), 60);
        assert_eq!(a.area(), 1200);
        assert!(a.contains(10, 20) && a.contains(39, 59));
        assert!(!a.contains(40, 20) && !a.contains(9, 20));
        assert_eq!(
            a.intersect(&Rect::new(30, 50, 100, 100)),
            Some(Rect::new(30, 50, 10, 10))
        );
        assert_eq!(a.intersect(&Rect::new(40, 20, 5, 5)), None);
        assert_eq!(Rect::new(0, 0, 5, 5).relative_to(&a), None);
        assert!(Rect::new(0, 0, 0, 3).is_empty());
    }

    #[test]
    fn rejects_bad_sizes_and_overlaps() {
        assert_eq!(
            plan_tiles(0, 10, 8, 2),
            Err(TilingError::EmptyImage {
                width: 0,
                height: 10
            })
        );
        assert_eq!(
            plan_tiles(10, 10, 0, 0),
            Err(TilingError::EmptyTile { tile_size: 0 })
        );
        assert_eq!(
            plan_tiles(10, 10, 8, 4),
            Err(TilingError::OverlapTooLarge {
                tile_size: 8,
                overlap: 4
            })
        );
        let err = plan_tiles(u32::MAX, u32::MAX, 2, 0).unwrap_err();
        assert!(matches!(err, TilingError::TooManyTiles { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "4294967295x4294967295 with tile size 2 needs 4611686018427387904 tiles, above 1048576"
        );
        assert_eq!(
            plan_tiles(10, 10, 8, 4).unwrap_err().to_string(),
            "overlap 4 must be less than half the tile size 8"
        );
    }

    #[test]
    fn ignores_tiles_from_other_plans() {
        let plan = plan_tiles(100, 100, 64, 16).unwrap();
        let mut foreign = *plan.tile(0).unwrap();
        foreign.rect.width += 1;
        assert_eq!(plan.blend_weight(&foreign, 0, 0), 0.0);
        assert!(plan.axis_weights(&foreign).xs.is_empty());
        foreign.rect.x = 5000;
        assert!(plan.halo_rect(&foreign, 8).is_empty());
        assert_eq!(plan.blend_weight(plan.tile(0).unwrap(), 0, 0), 1.0);
    }
}
