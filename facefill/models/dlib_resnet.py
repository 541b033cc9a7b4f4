"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network (dlib's ``anet_type``): a 150x150 RGB face chip, ``(x - mean) / 256``; a 7x7/2 conv
(32), affine, ReLU, 3x3/2 max pool; residual stages of 3 x 32, 4 x 64, 3 x 128, 3 x 256 and 1 x
256 channels (the first block of each stage after the first halves the size); global average
pool; 128-d linear without bias. "affine" is batch norm folded into ``gamma * x + beta``.
Strided convs and pools pad 0, stride-1 convs pad 1. A downsampling block's skip path is a 2x2
average pool. Where the two branches differ in size or channels, the smaller one is zero-padded
at the bottom/right, as dlib's ``add_prev`` does.

Weights are read from the ``.dat`` file in the ``face_recognition_models`` package by
:func:`read_dlib_tensors`. Each parameter tensor is stored as a version int (2), four packed
ints (num_samples, k, nr, nc) and raw little-endian float32 data, in network order from the
input. dlib is not needed at run time, and the port runs on GPU and is differentiable.

The face chip (dlib's ``get_face_chip(img, shape, 150, 0.25)``) is reproduced by
:func:`chip_matrices`: a least-squares similarity from a mean-face template to the landmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facefill.errors import WeightsNotFoundError
from facefill.weights import find

MEAN_RGB = (122.782, 117.001, 104.298)

#: (channels, blocks, first block downsamples) per stage, input side first.
STAGES = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]


class Affine(nn.Module):
    """Per-channel ``gamma * x + beta`` (dlib's folded batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` where the smaller is zero-padded (channels, bottom, right) to the larger."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t):
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class DlibBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.aff2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, skip))


class DlibFaceResNet(nn.Module):
    """``(B, 3, 150, 150)`` RGB chips in [0, 255] -> ``(B, 128)`` descriptors (not normalised;
    dlib's own are about unit length and same-person pairs are < 0.6 apart).

    :meth:`features` also returns the intermediate maps (after the stem and each stage) for a
    face-specific perceptual loss.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.aff = Affine(32)
        blocks = []
        cin = 32
        for cout, n, down in STAGES:
            for i in range(n):
                blocks.append(DlibBlock(cin, cout, down and i == 0))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        ends, total = [], 0
        for _, n, _ in STAGES:
            total += n
            ends.append(total - 1)
        self._stage_ends = set(ends)

    def features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # channels-last activations: oneDNN's convolutions run about 20 % faster on the CPU (the
        # same descriptors to ~4e-7); every later map follows the input's layout
        x = ((chips - self.mean) / 256.0).contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(F.relu(self.aff(self.conv(x))), 3, 2)
        feats = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self._stage_ends:
                feats.append(x)
        return self.fc(x.mean(dim=(2, 3))), feats

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.features(chips)[0]


def _packed_int(data: bytes, pos: int) -> tuple[int, int]:
    """dlib's packed int: one byte (length, 0x80 = negative), then little-endian bytes."""
    head = data[pos]
    n = head & 0x0F
    value = int.from_bytes(data[pos + 1: pos + 1 + n], "little")
    return (-value if head & 0x80 else value), pos + 1 + n


def _header(data: bytes, pos: int) -> tuple[tuple[int, ...], int] | None:
    try:
        version, p = _packed_int(data, pos)
        if version != 2:
            return None
        dims = []
        for _ in range(4):
            v, p = _packed_int(data, p)
            dims.append(v)
        return tuple(dims), p
    except IndexError:
        return None


def read_dlib_tensors(path: str | os.PathLike, sizes: list[int]) -> list[np.ndarray]:
    """Read the parameter tensors of a dlib DNN file, in order, given their element counts.

    Between tensors the file holds layer names and settings. Each tensor is found as the next
    header (version 2 + four packed dims) whose element count is the expected one, and its data
    is skipped over, so float data is never mistaken for a header.
    """
    data = Path(path).read_bytes()
    out, pos = [], 0
    for size in sizes:
        while True:
            pos = data.find(b"\x01\x02", pos)
            if pos < 0:
                raise ValueError(f"{path}: tensor of {size} values not found; not a dlib ResNet v1 file?")
            hdr = _header(data, pos)
            if hdr is not None and int(np.prod(hdr[0])) == size:
                start = hdr[1]
                out.append(np.frombuffer(data, dtype="<f4", count=size, offset=start).copy())
                pos = start + 4 * size
                break
            pos += 1
    return out


def load_dlib_resnet(path: str | os.PathLike | None = None) -> DlibFaceResNet:
    """The port with dlib's weights, in eval mode (weights frozen). ``path`` defaults to
    :func:`facefill.weights.find` of ``dlib-resnet`` (``$FACEFILL_DLIB_RESNET``, else the file in
    the ``face_recognition_models`` package); WeightsNotFoundError if missing."""
    path = find("dlib-resnet", path)
    net = DlibFaceResNet()
    convs: list[nn.Conv2d] = [net.conv]
    affs: list[Affine] = [net.aff]
    for b in net.blocks:
        convs += [b.conv1, b.conv2]
        affs += [b.aff1, b.aff2]
    layers: list[nn.Module] = [m for pair in zip(convs, affs) for m in pair] + [net.fc]
    sizes = []
    for m in layers:
        if isinstance(m, nn.Conv2d):
            sizes.append(m.weight.numel() + m.bias.numel())
        elif isinstance(m, Affine):
            sizes.append(2 * m.gamma.numel())
        else:
            sizes.append(m.weight.numel())
    try:
        arrays = read_dlib_tensors(path, sizes)
    except ValueError as exc:
        raise WeightsNotFoundError(str(exc)) from None
    with torch.no_grad():
        for m, arr in zip(layers, arrays):
            t = torch.from_numpy(arr)
            if isinstance(m, nn.Conv2d):
                n = m.weight.numel()
                m.weight.copy_(t[:n].view_as(m.weight))
                m.bias.copy_(t[n:])
            elif isinstance(m, Affine):
                k = m.gamma.numel()
                m.gamma.copy_(t[:k])
                m.beta.copy_(t[k:])
            else:  # dlib fc stores (inputs, outputs), row-major
                m.weight.copy_(t.view(256, 128).T)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
