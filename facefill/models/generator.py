"""The multi-scale generator: five blocks ``b8 .. b128``, pixel-shuffle upscalers between them.

Every block ``bN`` maps an ``(B, C_in, N, N)`` image in [-1, 1] to an ``(B, 3, N, N)`` image in
[-1, 1] (tanh). Architecture, at width multiplier 1, exactly as the paper's table:

- ``conv0``: 3x3, stride 1, dilation 2, 128 filters.
- encoder: 3x3 stride-2 convs, each followed by a residual block (RB, two 3x3 convs) of the
  same width; ``b8`` instead has one 3x3 stride-1 dilation-2 conv of 1024 (+ RB) and stays 8x8.
- ``fc1`` 512, ``fc2`` 16,384 reshaped to (1024, 4, 4).
- decoder: 3x3 conv with 4*C filters + pixel shuffle x2 (C channels at twice the size), one
  stage per doubling from 4 to N.
- last conv 5x5 to 3 channels, tanh (released generators pad the output block's by
  replication: zero padding drew a 2 px frame). Leaky ReLU (slope 0.1) after every other layer.

A width multiplier ``w`` scales every channel count, fc1 and fc2 included (fc2 stays
4 x 4 x C_bottleneck), so the small presets are the same code. Widths come from the one table
:data:`WIDTHS`; :func:`scaled` applies the multiplier.

(A little over 250 lines: the block, the upscaler, their init and the cascade read best together.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCALES: tuple[int, ...] = (8, 16, 32, 64, 128)

#: The paper's table, width multiplier 1. ``encoder``: widths of the stride-2 conv + RB stages
#: (for b8: the single stride-1 conv + RB). ``decoder``: C of each conv(4*C) + pixel-shuffle.
WIDTHS: dict[str, object] = {
    "conv0": 128,
    "fc1": 512,
    "bottleneck": 1024,  # fc2 = 4 * 4 * bottleneck
    "upscaler": 64,
    "encoder": {
        8: (1024,),
        16: (512, 1024),
        32: (256, 512, 1024),
        64: (128, 256, 512, 1024),
        128: (64, 128, 256, 512, 1024),
    },
    "decoder": {
        8: (512,),
        16: (512, 256),
        32: (512, 256, 128),
        64: (512, 256, 128, 64),
        128: (512, 256, 128, 64, 64),
    },
}


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


class ResidualBlock(nn.Module):
    """``x + lrelu(conv(lrelu(conv(x))))``: two 3x3 stride-1 convs, channels unchanged."""

    def __init__(self, channels: int, slope: float = 0.1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), self.slope)
        return x + F.leaky_relu(self.conv2(y), self.slope)


class GeneratorBlock(nn.Module):
    """Block ``b{resolution}``: ``(B, in_channels, N, N)`` in [-1, 1] -> ``(B, 3, N, N)`` in [-1, 1].

    Args:
        resolution: N, one of 8, 16, 32, 64, 128.
        width: channel multiplier (1.0 = paper).
        in_channels: 3 for an RGB input, 6 when the face mask is concatenated (``mask_skip``).
        slope: leaky-ReLU negative slope.
        out_padding: padding mode of the last conv (see :meth:`CascadedGenerator.pad_output`).
    """

    def __init__(
        self, resolution: int, width: float = 1.0, in_channels: int = 3, slope: float = 0.1,
        out_padding: str = "zeros",
    ) -> None:
        super().__init__()
        if resolution not in WIDTHS["encoder"]:  # type: ignore[operator]
            raise ValueError(f"resolution must be one of {SCALES}, got {resolution}")
        self.resolution = resolution
        self.slope = slope
        c0 = scaled(WIDTHS["conv0"], width)  # type: ignore[arg-type]
        cb = scaled(WIDTHS["bottleneck"], width)  # type: ignore[arg-type]
        cfc = scaled(WIDTHS["fc1"], width)  # type: ignore[arg-type]
        self.bottleneck = cb

        self.conv0 = nn.Conv2d(in_channels, c0, 3, padding=2, dilation=2)
        layers: list[nn.Module] = []
        prev = c0
        for w in WIDTHS["encoder"][resolution]:  # type: ignore[index]
            c = scaled(w, width)
            if resolution == 8:
                layers.append(nn.Conv2d(prev, c, 3, stride=1, padding=2, dilation=2))
            else:
                layers.append(nn.Conv2d(prev, c, 3, stride=2, padding=1))
            layers.append(nn.LeakyReLU(slope))
            layers.append(ResidualBlock(c, slope))
            prev = c
        self.encoder = nn.Sequential(*layers)
        enc_size = 8 if resolution == 8 else 4
        self.fc1 = nn.Linear(enc_size * enc_size * prev, cfc)
        self.fc2 = nn.Linear(cfc, 4 * 4 * cb)

        stages: list[nn.Module] = []
        prev = cb
        for w in WIDTHS["decoder"][resolution]:  # type: ignore[index]
            c = scaled(w, width)
            stages += [nn.Conv2d(prev, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(slope)]
            prev = c
        self.decoder = nn.Sequential(*stages)
        self.last = nn.Conv2d(prev, 3, 5, padding=2, padding_mode=out_padding)

        init_weights(self, slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.resolution
        if x.shape[-2:] != (n, n):
            raise ValueError(f"b{n} expects (B, C, {n}, {n}) input, got {tuple(x.shape)}")
        h = F.leaky_relu(self.conv0(x), self.slope)
        h = self.encoder(h)
        h = F.leaky_relu(self.fc1(h.flatten(1)), self.slope)
        h = F.leaky_relu(self.fc2(h), self.slope)
        h = self.decoder(h.view(-1, self.bottleneck, 4, 4))
        return torch.tanh(self.last(h))


class Upscaler(nn.Module):
    """Pixel-shuffle x2 between blocks: ``(B, 3, N, N)`` in [-1, 1] -> ``(B, 3, 2N, 2N)`` in [-1, 1].

    conv 3x3 (3 -> 4*C) + pixel shuffle (C channels at 2N) + leaky ReLU + conv 3x3 (C -> 3) + tanh,
    with C = 64 * width.
    """

    def __init__(self, width: float = 1.0, slope: float = 0.1) -> None:
        super().__init__()
        c = scaled(WIDTHS["upscaler"], width)  # type: ignore[arg-type]
        self.conv = nn.Conv2d(3, 4 * c, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        self.slope = slope
        init_weights(self, slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.shuffle(self.conv(x)), self.slope)
        return torch.tanh(self.out(h))


def init_weights(module: nn.Module, slope: float, residual_scale: float = 0.1) -> None:
    """He (Kaiming) normal init for leaky ReLU on every conv and linear layer, zero biases; the
    second conv of each residual block is scaled by ``residual_scale`` so the stacked RBs start
    near the identity. PyTorch's default init shrinks the signal at every layer; through a
    block's ~14 layers the input's influence on the output all but vanished (measured: 1e-8)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=slope, nonlinearity="leaky_relu")
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, ResidualBlock):
            with torch.no_grad():
                m.conv2.weight.mul_(residual_scale)


def pyramid(image: torch.Tensor, scales: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """``(B, C, H, W)`` -> ``{N: (B, C, N, N)}`` by area averaging (the identity at N == H)."""
    out = {}
    for n in scales:
        out[n] = image if image.shape[-1] == n else F.interpolate(image, size=(n, n), mode="area")
    return out


class CascadedGenerator(nn.Module):
    """``b8 -> up -> b16 -> up -> ... -> b128``, returning every scale's hallucination.

    Input: the masked face ``(B, 3, S, S)`` in [-1, 1] with S the largest scale (pixels outside
    the face region blanked). It is area-downsampled to 8x8 for ``b8``. Block 2N's input is the
    upscaled output of block N (the paper's cascade); with ``mask_skip`` the masked face at
    scale 2N is concatenated to it (6 channels), so every block sees the real face pixels at its
    own resolution instead of only the 8x8 summary that reached it through the chain.

    Output: ``{N: (B, 3, N, N)}`` in [-1, 1], one entry per scale up to ``stage``.

    Both regimes use this one class: the progressive regime (ProGAN) passes the stage it has
    grown to and the fade-in ``alpha`` to :meth:`forward` on every call. Neither is stored in
    the module, so a state_dict holds weights only.
    """

    def __init__(
        self,
        width: float = 1.0,
        scales: tuple[int, ...] = SCALES,
        mask_skip: bool = False,
        slope: float = 0.1,
    ) -> None:
        super().__init__()
        scales = tuple(scales)
        if not scales or scales[0] != 8 or any(b != 2 * a for a, b in zip(scales, scales[1:])):
            raise ValueError(f"scales must double from 8, e.g. (8, 16, 32, 64, 128); got {scales}")
        if scales[-1] > 128:
            raise ValueError(f"the largest scale is 128, got {scales[-1]}")
        self.scales = scales
        self.mask_skip = mask_skip
        self.blocks = nn.ModuleDict()
        self.upscalers = nn.ModuleDict()
        for i, n in enumerate(scales):
            in_ch = 6 if (mask_skip and i > 0) else 3
            self.blocks[f"b{n}"] = GeneratorBlock(n, width, in_ch, slope)
            if i > 0:
                self.upscalers[f"up{n}"] = Upscaler(width, slope)

    @property
    def resolution(self) -> int:
        return self.scales[-1]

    def pad_output(self, mode: str = "replicate") -> "CascadedGenerator":
        """Set the padding mode of the output block's last 5x5 conv (the weights stay).

        Trained with zeros, whose 2 px reach drew a frame round every output (edge step 13 grey
        levels against 3.4 inside); replicating the edge there removes it without retraining and
        moves no metric beyond noise (docs/model-card.md, "The border"), so released generators
        are run with ``"replicate"`` (:func:`facefill.pipeline.hallucinate.load_model`). Training
        keeps zeros: a 30-step overfit test learned slower with replication. The inner blocks keep
        zeros too: their edges feed the next block, which learned on them (replicating there as
        well cost 0.0005 unseen SSIM)."""
        self.blocks[f"b{self.resolution}"].last.padding_mode = mode
        return self

    def forward(
        self, masked: torch.Tensor, stage: int | None = None, alpha: float = 1.0
    ) -> dict[int, torch.Tensor]:
        """Run blocks ``0..stage`` (default: all; stage 0 is ``b8`` alone). ``alpha`` < 1 fades
        the last block in over the upscaled previous output (ProGAN):
        ``alpha * new + (1 - alpha) * nearest_up(prev)``."""
        last = len(self.scales) - 1
        stage = last if stage is None else int(stage)
        if not 0 <= stage <= last:
            raise ValueError(f"stage must be in [0, {last}], got {stage}")
        alpha = float(min(max(alpha, 0.0), 1.0))
        if masked.dim() != 4 or masked.shape[1] != 3 or masked.shape[-1] != masked.shape[-2]:
            raise ValueError(f"expected a (B, 3, S, S) masked face, got {tuple(masked.shape)}")
        inputs = pyramid(masked, self.scales[: stage + 1])
        outputs: dict[int, torch.Tensor] = {}
        prev = None
        for n in self.scales[: stage + 1]:
            if prev is None:
                x = inputs[n]
            else:
                x = self.upscalers[f"up{n}"](prev)
                if self.mask_skip:
                    x = torch.cat([x, inputs[n]], dim=1)
            out = self.blocks[f"b{n}"](x)
            if prev is not None and n == self.scales[stage] and alpha < 1.0:
                out = alpha * out + (1.0 - alpha) * F.interpolate(prev, scale_factor=2, mode="nearest")
            outputs[n] = out
            prev = out
        return outputs


#: Buffers that facefill <= 0.1's ProgressiveGenerator stored with the weights (the progressive
#: stage and fade-in alpha). :func:`split_legacy_buffers` takes them out of old files.
LEGACY_BUFFERS = ("stage", "alpha")


def split_legacy_buffers(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int | None]:
    """``(state without the legacy stage/alpha buffers, the stored stage or None)``."""
    stage = state.get("stage")
    clean = {k: v for k, v in state.items() if k not in LEGACY_BUFFERS}
    return clean, (int(stage) if stage is not None else None)
