"""MediaPipe's selfie (person) segmentation network in PyTorch.

Source and licence: the two models ``selfie_segmentation.tflite`` (general, 256x256 input) and
``selfie_segmentation_landscape.tflite`` (144x256) in ``mediapipe/modules/selfie_segmentation/``
of the ``mediapipe`` 0.10.21 wheel, by Google, under the **Apache License 2.0**. Their weights
were converted by ``tools/convert_selfie_segmenter.py`` into
``facefill/weights/selfie_segmentation.safetensors`` (float16, as stored in the .tflite files,
so the conversion is lossless); this module is an independent re-implementation of the graph.

The network (read from the .tflite graph) is a MobileNetV3-style encoder with a light U-Net
decoder:

* input: ``(B, 3, H, W)`` RGB in [0, 1] (MediaPipe's ``ImageToTensorCalculator`` stretches the
  image to the model size, no aspect-ratio padding, range [0, 1]);
* stem: 3x3/2 conv to 16, hard-swish;
* 8 inverted-residual blocks (1x1 expand + act, kxk depthwise + act, optional squeeze-excite
  ``x * sigmoid(W2 relu(W1 mean(x)))``, 1x1 project, identity skip when shapes allow):
  ``(cin, expand, cout, k, stride, act, se)`` as in :data:`BLOCKS`;
* head at 1/16: ``relu(conv(x)) * sigmoid(conv(mean(x)))`` (128 channels);
* three decoder stages (to 1/8, 1/4, 1/2): bilinear 2x upsampling (``half_pixel_centers``), a
  1x1 conv ``u``; with the encoder feature ``s`` at that size, ``y = s * gate(s + u) + u`` where
  ``gate`` is a squeeze-excite (relu, sigmoid) on the sum; then ``r = relu(conv1x1(y))`` and
  ``r + relu(depthwise3x3(r))``;
* output: a 2x2/2 transposed conv to one channel (MediaPipe's custom op
  ``Convolution2DTransposeBias``) and a sigmoid: the person probability at the input size.

TFLite's SAME padding puts the extra pixel at the bottom/right for stride-2 convolutions; this is
reproduced with an explicit pad. Global average pools are plain means.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from facefill.weights import WEIGHTS, find, home_path


#: where the converted weights ship (facefill.weights key ``selfie-segmenter``; the name is kept there)
WEIGHTS_FILE = home_path(WEIGHTS["selfie-segmenter"])

#: model input size (H, W) per variant; the network itself is fully convolutional
INPUT_SIZE = {"general": (256, 256), "landscape": (144, 256)}

#: (cin, expand, cout, kernel, stride, activation, squeeze-excite channels or 0)
BLOCKS = [
    (16, 16, 16, 3, 2, "relu", 8),
    (16, 72, 24, 3, 2, "relu", 0),
    (24, 88, 24, 3, 1, "relu", 0),
    (24, 96, 32, 5, 2, "hswish", 24),
    (32, 128, 32, 5, 1, "hswish", 32),
    (32, 128, 32, 5, 1, "hswish", 32),
    (32, 96, 32, 5, 1, "hswish", 24),
    (32, 96, 32, 5, 1, "hswish", 24),
]
#: decoder stages: (channels in, channels out); their skips are the features at 1/8, 1/4, 1/2
DECODER = [(128, 24), (24, 16), (16, 16)]


def _act(x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.hardswish(x) if kind == "hswish" else F.relu(x)


class SameConv(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's SAME padding (the odd extra pixel at the bottom/right)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride=stride, groups=groups, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k > 1:
            pads = []
            for size in (x.shape[3], x.shape[2]):  # F.pad order: left, right, top, bottom
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expand: int, cout: int, k: int, stride: int, act: str, se: int) -> None:
        super().__init__()
        self.act = act
        self.expand = nn.Conv2d(cin, expand, 1)
        self.dw = SameConv(expand, expand, k, stride, groups=expand)
        self.se = SqueezeExcite(expand, se) if se else None
        self.project = nn.Conv2d(expand, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _act(self.dw(_act(self.expand(x), self.act)), self.act)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class DecoderStage(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(cin, cout, 1)
        self.gate = SqueezeExcite(cout, cout)
        self.fuse = nn.Conv2d(cout, cout, 1)
        self.dw = SameConv(cout, cout, 3, groups=cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        u = self.lateral(x)
        y = skip * self.gate.gate(skip + u) + u
        r = F.relu(self.fuse(y))
        return r + F.relu(self.dw(r))


class SelfieSegNet(nn.Module):
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` person probability (H, W multiples of
    16; MediaPipe feeds 256x256 to the general model and 144x256 to the landscape one)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv(3, 16, 3, 2)
        self.blocks = nn.ModuleList(InvertedResidual(*b) for b in BLOCKS)
        self.head = nn.Conv2d(32, 128, 1)
        self.head_gate = nn.Conv2d(32, 128, 1)
        self.decoder = nn.ModuleList(DecoderStage(*d) for d in DECODER)
        self.out = nn.ConvTranspose2d(16, 1, 2, stride=2)

    def layers(self) -> list[nn.Module]:
        """The weighted layers in the order the .tflite graph runs them (used by the converter)."""
        out: list[nn.Module] = [self.stem]
        for b in self.blocks:
            out += [b.expand, b.dw] + ([b.se.reduce, b.se.expand] if b.se is not None else []) + [b.project]
        out += [self.head, self.head_gate]
        for d in self.decoder:
            out += [d.lateral, d.gate.reduce, d.gate.expand, d.fuse, d.dw]
        return out + [self.out]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.stem(x))
        skips = [x]
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in (0, 2):  # the 1/4 and 1/8 features
                skips.append(x)
        x = F.relu(self.head(x)) * torch.sigmoid(self.head_gate(x.mean((2, 3), keepdim=True)))
        for stage, skip in zip(self.decoder, reversed(skips)):
            x = stage(x, skip)
        return self.out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def load_selfie_segnet(variant: str = "general", path: str | os.PathLike | None = None,
                       dtype: torch.dtype = torch.float32) -> SelfieSegNet:
    """The port with MediaPipe's weights (``variant`` general or landscape), in eval mode,
    weights frozen. ``path``: the .safetensors file (default: found by
    :func:`facefill.weights.find`, key ``selfie-segmenter``, shipped inside facefill)."""
    from safetensors.torch import load_file

    if variant not in INPUT_SIZE:
        raise ValueError(f"variant must be one of {', '.join(INPUT_SIZE)}, not {variant!r}")
    path = find("selfie-segmenter", path)
    tensors = load_file(str(path))
    prefix = variant + "."
    state = {k[len(prefix):]: v.to(dtype) for k, v in tensors.items() if k.startswith(prefix)}
    net = SelfieSegNet().to(dtype)
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


__all__ = ["BLOCKS", "DECODER", "INPUT_SIZE", "SelfieSegNet", "WEIGHTS_FILE", "load_selfie_segnet"]
