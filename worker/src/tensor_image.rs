//! Moving images between `image` buffers and `[1, 3, H, W]` tensors.

use image::Rgb32FImage;
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Copies an RGB image (values in [0, 1]) to a `[1, 3, H, W]` float tensor on `device`.
pub fn to_tensor(image: &Rgb32FImage, device: Device) -> Result<Tensor> {
    let (w, h) = image.dimensions();
    let hwc = Tensor::f_from_slice(image.as_raw())?.f_reshape([h as i64, w as i64, 3])?;
    Ok(hwc
        .f_permute([2, 0, 1])?
        .f_unsqueeze(0)?
        .f_contiguous()?
        .f_to_device(device)?)
}

/// Copies a `[1, 3, H, W]` tensor back to an RGB image, clamping to [0, 1].
pub fn to_image(xs: &Tensor) -> Result<Rgb32FImage> {
    let (_, _, h, w) = xs.size4()?;
    let hwc = xs
        .f_detach()?
        .f_to_kind(Kind::Float)?
        .f_clamp(0.0, 1.0)?
        .f_squeeze_dim(0)?
        .f_permute([1, 2, 0])?
        .f_contiguous()?
        .f_to_device(Device::Cpu)?;
    let data = Vec::<f32>::try_from(hwc.f_reshape([-1])?)?;
    Ok(Rgb32FImage::from_raw(w as u32, h as u32, data).expect("tensor size matches its shape"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_pixels_and_layout() {
        let image = Rgb32FImage::from_fn(5, 3, |x, y| {
            image::Rgb([x as f32 / 5.0, y as f32 / 3.0, 0.25])
        });
        let xs = to_tensor(&image, Device::Cpu).unwrap();
        assert_eq!(xs.size(), [1, 3, 3, 5]);
        // Channel 0 at row 2, column 4 is x / 5.
        assert!((xs.double_value(&[0, 0, 2, 4]) - 0.8).abs() < 1e-6);
        assert!((xs.double_value(&[0, 1, 2, 4]) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(to_image(&xs).unwrap(), image);
    }
}
