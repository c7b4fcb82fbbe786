//! VGG19's layer names and geometry, without the network itself.
//!
//! The coordinator needs them to validate job specs and to size tile halos;
//! the worker's network (which holds the weights) builds on the same list.

/// The convolutions of VGG19 in network order.
pub const CONV_NAMES: [&str; 16] = [
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1", "conv5_2", "conv5_3", "conv5_4",
];

/// Returns every layer name in network order (`input_norm`, `conv1_1`, `relu1_1`, ..., `pool1`, ...).
pub fn layer_names() -> Vec<String> {
    let mut names = vec!["input_norm".to_owned()];
    let mut block = b'1';
    for conv in CONV_NAMES {
        let this_block = conv.as_bytes()[4];
        if this_block != block {
            names.push(format!("pool{}", block as char));
            block = this_block;
        }
        names.push(conv.to_owned());
        names.push(conv.replace("conv", "relu"));
    }
    names
}

/// Returns the position of a layer in network order, or `None` for an unknown name.
pub fn layer_position(name: &str) -> Option<usize> {
    layer_names().iter().position(|n| n == name)
}

/// Returns the receptive field of a layer in input pixels (relu4_2: 84, relu5_1: 156).
///
/// Tiles get a halo of half this on each side, so that features near a tile's
/// border see the same context as in an untiled render.
pub fn receptive_field(name: &str) -> Option<u32> {
    let pos = layer_position(name)?;
    let (mut field, mut stride) = (1, 1);
    for step in &layer_names()[..=pos] {
        if step.starts_with("conv") {
            field += 2 * stride;
        } else if step.starts_with("pool") {
            field += stride;
            stride *= 2;
        }
    }
    Some(field)
}

/// Returns how many 2x2 poolings come before a layer, which sets the least image size.
pub fn poolings_before(name: &str) -> Option<u32> {
    let pos = layer_position(name)?;
    Some(
        layer_names()[..pos]
            .iter()
            .filter(|n| n.starts_with("pool"))
            .count() as u32,
    )
}

/// Returns the least side an image needs for `layer`: each ceil-mode pooling halves it, and
/// reflection padding needs two pixels at the deepest level.
pub fn min_side(layer: &str) -> Option<u32> {
    Some((1 << poolings_before(layer)?) + 1)
}

/// Returns the deepest of `layers` in network order, or `None` if empty or any name is unknown.
pub fn deepest<'a>(layers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for layer in layers {
        let pos = layer_position(layer)?;
        if best.is_none_or(|(p, _)| pos >= p) {
            best = Some((pos, layer));
        }
    }
    best.map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_order_matches_vgg19() {
        let names = layer_names();
        assert_eq!(names.len(), 1 + 16 * 2 + 4);
        assert_eq!(names[1], "conv1_1");
        assert_eq!(names[5], "pool1");
        assert_eq!(names.last().unwrap(), "relu5_4");
        assert_eq!(poolings_before("relu1_1"), Some(0));
        assert_eq!(poolings_before("relu4_2"), Some(3));
        assert_eq!(poolings_before("relu5_1"), Some(4));
        assert_eq!(layer_position("relu6_1"), None);
    }

    #[test]
    fn receptive_fields_match_the_design_brief() {
        assert_eq!(receptive_field("relu1_1"), Some(3));
        assert_eq!(receptive_field("relu4_2"), Some(84));
        assert_eq!(receptive_field("relu5_1"), Some(156));
    }

    #[test]
    fn deepest_picks_the_last_in_network_order() {
        assert_eq!(
            deepest(["relu4_2", "relu1_1", "relu5_1", "relu3_1"]),
            Some("relu5_1")
        );
        assert_eq!(deepest(["relu4_2", "bogus"]), None);
        assert_eq!(deepest([]), None);
    }
}
