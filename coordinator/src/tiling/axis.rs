//! One axis of a tile plan: where the tiles start and where consecutive tiles hand over.
//!
//! The rules (even spreading, raised-cosine blend zones, the midpoint split of a strip that
//! three tiles cover) are described in the [`super`] module documentation.

use std::f32::consts::PI;

use super::Span;

/// One axis of a plan: the spans of the tiles and the blend zones between consecutive spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AxisPlan {
    pub(super) spans: Vec<Span>,
    // zones[k] is where span k hands over to span k + 1; zones are ordered and disjoint.
    pub(super) zones: Vec<Span>,
}

impl AxisPlan {
    pub(super) fn new(len: u32, tile_size: u32, overlap: u32) -> Self {
        let spans = axis_spans(len, tile_size, overlap);
        let zones = blend_zones(&spans);
        Self { spans, zones }
    }

    /// Returns the weight of span `index` at pixel `pos`, 0 outside the span or for a bad index.
    pub(super) fn weight(&self, index: usize, pos: u32) -> f32 {
        let Some(span) = self.spans.get(index) else {
            return 0.0;
        };
        if pos < span.start || pos >= span.end() {
            return 0.0;
        }
        if index > 0 {
            let zone = self.zones[index - 1];
            if pos < zone.start {
                return 0.0;
            }
            if pos < zone.end() {
                return 1.0 - ramp_down(zone, pos);
            }
        }
        if let Some(&zone) = self.zones.get(index) {
            if pos >= zone.end() {
                return 0.0;
            }
            if pos >= zone.start {
                return ramp_down(zone, pos);
            }
        }
        1.0
    }

    pub(super) fn span_weights(&self, index: usize) -> Vec<f32> {
        match self.spans.get(index) {
            Some(span) => (span.start..span.end())
                .map(|pos| self.weight(index, pos))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Returns the raised-cosine weight, falling from 1 to 0 across the middle
/// [`super::FEATHER_FRACTION`] of `zone`, at pixel `pos`.
fn ramp_down(zone: Span, pos: u32) -> f32 {
    // Sample at pixel centres so the ramp is symmetric about the zone's middle.
    let t = ((pos - zone.start) as f32 + 0.5) / zone.len as f32;
    let t = ((t - 0.5) / super::FEATHER_FRACTION + 0.5).clamp(0.0, 1.0);
    0.5 * (1.0 + (PI * t).cos())
}

/// Spreads the spans of one axis evenly (see the parent module).
fn axis_spans(len: u32, tile_size: u32, overlap: u32) -> Vec<Span> {
    if len <= tile_size {
        return vec![Span { start: 0, len }];
    }
    let count = axis_count(len, tile_size, overlap);
    let travel = u64::from(len - tile_size);
    let gaps = count - 1;
    (0..count)
        .map(|i| {
            // Integer rounding of i * travel / gaps, half up, so the plan is exact and portable.
            let start = (i * travel + gaps / 2) / gaps;
            Span {
                start: start as u32,
                len: tile_size,
            }
        })
        .collect()
}

/// Returns how many spans an axis of `len` pixels needs.
pub(super) fn axis_count(len: u32, tile_size: u32, overlap: u32) -> u64 {
    if len <= tile_size {
        return 1;
    }
    let stride = u64::from(tile_size - overlap);
    (u64::from(len - overlap)).div_ceil(stride)
}

/// Places the blend zone of every pair of consecutive spans (see the parent module).
fn blend_zones(spans: &[Span]) -> Vec<Span> {
    let num_pairs = spans.len().saturating_sub(1);
    // split[k] is where zone k ends and zone k + 1 begins when spans k and k + 2 overlap.
    let split = |k: usize| -> Option<u32> {
        let after = spans.get(k + 2)?;
        let end = spans[k].end();
        (after.start < end).then(|| after.start + (end - after.start) / 2)
    };
    (0..num_pairs)
        .map(|k| {
            let overlap_start = spans[k + 1].start;
            let overlap_end = spans[k].end();
            let start = match k.checked_sub(1).and_then(split) {
                Some(mid) => mid.max(overlap_start),
                None => overlap_start,
            };
            let end = split(k).map_or(overlap_end, |mid| mid.min(overlap_end));
            Span {
                start,
                len: end.saturating_sub(start),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Checks one axis: coverage, bounds, equal lengths, minimum overlap and partition of unity.
    fn check_axis(len: u32, tile_size: u32, overlap: u32) {
        let axis = AxisPlan::new(len, tile_size, overlap);
        let spans = &axis.spans;
        assert_eq!(spans[0].start, 0);
        assert_eq!(spans.last().unwrap().end(), len);
        if len <= tile_size {
            assert_eq!(spans, &[Span { start: 0, len }]);
        } else {
            let expected = u64::from(len - overlap).div_ceil(u64::from(tile_size - overlap));
            assert_eq!(spans.len() as u64, expected);
            assert!(spans.iter().all(|s| s.len == tile_size && s.end() <= len));
        }
        for pair in spans.windows(2) {
            assert!(
                pair[0].start < pair[1].start,
                "starts must increase: {pair:?}"
            );
            assert!(
                pair[0].end() >= pair[1].start + overlap,
                "overlap below {overlap}: {pair:?}"
            );
        }
        for pos in 0..len {
            let weights: Vec<f32> = (0..spans.len()).map(|i| axis.weight(i, pos)).collect();
            let sum: f32 = weights.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-6,
                "sum {sum} at {pos} for {len}/{tile_size}/{overlap}"
            );
            assert!(
                weights.iter().filter(|&&w| w > 0.0).count() <= 2,
                "{weights:?} at {pos}"
            );
            assert!(weights.iter().all(|w| (0.0..=1.0).contains(w)));
        }
    }

    proptest! {
        #[test]
        fn axis_plans_cover_and_blend(
            len in 1u32..600,
            tile_size in 1u32..200,
            seed in 0u32..1000,
        ) {
            let overlap = seed % tile_size.div_ceil(2);
            check_axis(len, tile_size, overlap);
        }
    }

    #[test]
    fn splits_contested_strip_when_three_tiles_cover_a_pixel() {
        // 17 px, tile 10, overlap 4: spans 0..10, 4..14, 7..17 all cover pixels 7..10.
        let axis = AxisPlan::new(17, 10, 4);
        let starts: Vec<u32> = axis.spans.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0, 4, 7]);
        assert_eq!(
            axis.zones,
            [Span { start: 4, len: 4 }, Span { start: 8, len: 6 }]
        );
        assert_eq!(axis.weight(0, 8), 0.0);
        assert_eq!(axis.weight(2, 7), 0.0);
        check_axis(17, 10, 4);

        // A small overlap does not prevent it: 191 px, tile 100, overlap 10 gives 0, 46, 91.
        let axis = AxisPlan::new(191, 100, 10);
        let starts: Vec<u32> = axis.spans.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0, 46, 91]);
        let zones = [Span { start: 46, len: 49 }, Span { start: 95, len: 51 }];
        assert_eq!(axis.zones, zones);
        check_axis(191, 100, 10);
    }

    #[test]
    fn ramps_are_raised_cosines_over_the_middle_of_the_overlap() {
        let axis = AxisPlan::new(16, 10, 4);
        assert_eq!(axis.zones, [Span { start: 6, len: 4 }]);
        // With FEATHER_FRACTION = 0.5 the ramp spans pixels 7 and 8 of the zone 6..10.
        assert_eq!(super::super::FEATHER_FRACTION, 0.5);
        assert_eq!(axis.weight(0, 6), 1.0);
        let expected = 0.5 * (1.0 + (PI / 4.0).cos());
        assert!((axis.weight(0, 7) - expected).abs() < 1e-6);
        assert!((axis.weight(0, 8) - (1.0 - expected)).abs() < 1e-6);
        assert_eq!(axis.weight(0, 9), 0.0);
        assert_eq!(axis.weight(0, 5), 1.0);
        assert_eq!(axis.weight(1, 10), 1.0);
        assert_eq!(axis.weight(1, 5), 0.0);
    }
}
