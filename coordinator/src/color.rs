//! Keeping the content's colours: luminance-only transfer.
//!
//! Gatys et al., "Preserving Color in Neural Artistic Style Transfer" (2016):
//! take the luminance (Y of BT.601 YUV) of the stylised image and the chroma
//! (U, V) of the content image. This is neural-style's `-original_colors 1`.
//!
//! Applied to a render's final output, by the coordinator for farm jobs and by
//! `deepstyle render` for embedded ones.

use image::{Rgb, Rgb32FImage};

/// Returns `styled` with its chroma replaced by that of `content` (same size: callers resize).
///
/// Pixels outside `content` (a caller bug) keep the styled image's colour.
pub fn keep_original_colors(styled: &Rgb32FImage, content: &Rgb32FImage) -> Rgb32FImage {
    Rgb32FImage::from_fn(styled.width(), styled.height(), |x, y| {
        let (luma, _, _) = to_yuv(styled.get_pixel(x, y));
        let (_, u, v) = to_yuv(
            content
                .get_pixel_checked(x, y)
                .unwrap_or(styled.get_pixel(x, y)),
        );
        from_yuv(luma, u, v)
    })
}

fn to_yuv(p: &Rgb<f32>) -> (f32, f32, f32) {
    let [r, g, b] = p.0;
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    (y, 0.492 * (b - y), 0.877 * (r - y))
}

fn from_yuv(y: f32, u: f32, v: f32) -> Rgb<f32> {
    let r = y + v / 0.877;
    let b = y + u / 0.492;
    let g = (y - 0.299 * r - 0.114 * b) / 0.587;
    Rgb([r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_round_trip_is_exact() {
        let p = Rgb([0.2, 0.7, 0.4]);
        let (y, u, v) = to_yuv(&p);
        let q = from_yuv(y, u, v);
        for c in 0..3 {
            assert!((p.0[c] - q.0[c]).abs() < 1e-6, "{p:?} {q:?}");
        }
    }

    #[test]
    fn gray_styled_takes_content_colour_and_keeps_luminance() {
        let styled = Rgb32FImage::from_pixel(2, 2, Rgb([0.5, 0.5, 0.5]));
        let content = Rgb32FImage::from_pixel(2, 2, Rgb([0.8, 0.3, 0.2]));
        let out = keep_original_colors(&styled, &content);
        let (y_out, u_out, v_out) = to_yuv(out.get_pixel(1, 1));
        let (_, u_c, v_c) = to_yuv(content.get_pixel(1, 1));
        assert!((y_out - 0.5).abs() < 1e-5);
        assert!((u_out - u_c).abs() < 1e-5 && (v_out - v_c).abs() < 1e-5);
    }
}
