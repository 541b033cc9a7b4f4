"""The training set kept on the training device: decoded once, indexed and augmented there in batches.

:class:`DeviceFaces` holds every training photo as ``uint8`` on the device, with its validity map,
landmarks and face masks, and builds each batch with a handful of batched tensor operations: no
DataLoader, no worker processes, no PNG decoding after the start. The batches are the per-item
path's (:class:`facefill.train.data.FaceDataset` through a DataLoader) pixel for pixel on the CPU:

* decoding and resizing are the same code (:func:`facefill.train.data.decode`);
* the flip of item ``index`` in ``epoch`` is the same draw (:func:`facefill.train.data.flip_drawn`);
* the similarity warp and colour jitter are :func:`facefill.train.augment.augment` applied to the
  whole batch, with each item's numbers drawn from ``(seed, epoch, index)`` as before;
* face masks are made from the (flipped, warped) landmarks by the same
  :func:`facefill.mask.region.face_mask`. Without the geometric warp they never change, so both
  (the photo's and its mirror's) are made once at the start and kept on the device; with it they
  are drawn on the CPU per batch (about 0.1 ms a face) and copied over.

Nothing draws from a global RNG, so an uninterrupted run and a resumed one see the same batches,
and a run with the data on the device trains exactly as one without (tested on the CPU).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from facefill.config import AugmentConfig, MaskConfig
from facefill.data.tensors import masked_input, masks_from_numpy, signed_from_uint8_tensor
from facefill.mask.region import face_mask
from facefill.train.data import FLIP_68, Sample, decode, flip_drawn

#: ``train.data_on_device = "auto"`` keeps the data on the device when it needs at most
#: ``train.data_budget_mb`` and the device is not the CPU (see :func:`use_device_data`).
DATA_ON_DEVICE_CHOICES = ("auto", "on", "off")


def device_bytes(n: int, size: int, flip: bool, augment: AugmentConfig | None) -> int:
    """Bytes :class:`DeviceFaces` keeps for ``n`` faces of ``size`` px: photos as uint8 (3 bytes a
    pixel), validity as float32 (4), and face masks as float32 unless the warp redraws them
    (4 each: the photo's, and its mirror's when flips are on)."""
    geometric = augment is not None and augment.enabled and augment.geometric
    masks = 0 if geometric else (2 if flip else 1)
    return n * size * size * (3 + 4 + 4 * masks)


def use_device_data(choice: str, n: int, size: int, flip: bool, augment: AugmentConfig | None,
                    device: torch.device, budget_mb: int) -> bool:
    """Whether to train from :class:`DeviceFaces`: ``"on"``, ``"off"``, or ``"auto"`` = on when the
    set needs at most ``budget_mb`` MiB and ``device`` is not the CPU (on the CPU the DataLoader's
    workers decode in parallel with the step; see docs/performance.md)."""
    if choice not in DATA_ON_DEVICE_CHOICES:
        raise ValueError(f"data_on_device must be one of {', '.join(DATA_ON_DEVICE_CHOICES)}, not {choice!r}")
    if choice != "auto":
        return choice == "on"
    return device.type != "cpu" and device_bytes(n, size, flip, augment) <= budget_mb * 2**20


class DeviceFaces:
    """Aligned faces decoded onto ``device`` (see the module doc). Same constructor arguments as
    :class:`~facefill.train.data.FaceDataset` plus ``device``; :meth:`batch` gives the items
    ``indices`` as one batch dict: ``real (B, 3, S, S)`` in [-1, 1], ``mask (B, 1, S, S)`` in [0, 1],
    ``masked (B, 3, S, S)``, ``landmarks (B, 68, 2)`` pixels and ``valid (B, 1, S, S)`` in [0, 1],
    all on ``device``."""

    def __init__(self, samples: list[Sample], size: int, mask: MaskConfig = MaskConfig(), flip: bool = True,
                 seed: int = 0, augment: AugmentConfig | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.size, self.mask_cfg, self.flip, self.seed = size, mask, flip, seed
        self.augment = augment if augment is not None and augment.enabled else None
        self.device, self.epoch = torch.device(device), 0
        images, valids, lms = zip(*(decode(s, size) for s in samples)) if samples else ((), (), ())
        self.images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(self.device) \
            if samples else torch.zeros(0, 3, size, size, dtype=torch.uint8, device=self.device)
        self.valid = masks_from_numpy(list(valids), self.device) if samples else \
            torch.zeros(0, 1, size, size, device=self.device)
        self.landmarks = torch.from_numpy(np.stack(lms)) if samples else torch.zeros(0, 68, 2)  # CPU
        self.masks: dict[bool, torch.Tensor] = {}
        if self.augment is None or not self.augment.geometric:
            for flipped in ((False, True) if flip else (False,)):
                self.masks[flipped] = self._face_masks(self._flip_landmarks(self.landmarks, flipped)).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def nbytes(self) -> int:
        """Bytes held on the device."""
        return sum(t.numel() * t.element_size() for t in (self.images, self.valid, *self.masks.values()))

    def _flip_landmarks(self, lm: torch.Tensor, flipped: bool | torch.Tensor) -> torch.Tensor:
        """``(B, 68, 2)`` landmarks mirrored where ``flipped`` (one bool, or one per item)."""
        mirrored = lm[:, torch.from_numpy(FLIP_68)].clone()
        mirrored[..., 0] = self.size - 1 - mirrored[..., 0]
        if isinstance(flipped, bool):
            return mirrored if flipped else lm
        return torch.where(flipped[:, None, None], mirrored, lm)

    def _face_masks(self, lm: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)`` float32 face masks (CPU) of ``(B, 68, 2)`` landmarks."""
        cfg = self.mask_cfg
        return masks_from_numpy([face_mask(p, self.size, cfg.grow, cfg.feather) for p in lm.numpy()])

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Items ``indices`` of the current epoch as one batch on the device (see the class doc)."""
        dev = self.device
        flips = torch.tensor([self.flip and flip_drawn(self.seed, self.epoch, i) for i in indices])
        at = torch.tensor(indices, device=dev)
        on_dev = flips.to(dev)[:, None, None, None]
        real = signed_from_uint8_tensor(self.images[at])
        real = torch.where(on_dev, real.flip(-1), real)
        valid = self.valid[at]
        valid = torch.where(on_dev, valid.flip(-1), valid)
        lm = self._flip_landmarks(self.landmarks[indices], flips)
        if self.augment is not None:
            from facefill.train.augment import augment

            real, lm, valid = augment(real, lm, valid, self.augment, seed=self.seed, epoch=self.epoch, index=indices)
        if self.augment is not None and self.augment.geometric:
            mask = self._face_masks(lm).to(dev, non_blocking=True)
        else:
            mask = self.masks[False][at]
            if self.flip:
                mask = torch.where(on_dev, self.masks[True][at], mask)
        return {"real": real, "mask": mask, "masked": masked_input(real, mask), "landmarks": lm.to(dev),
                "valid": valid}

    def batches(self, order: list[int], batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Whole batches of ``order``, in order (a last partial batch is dropped, as the
        DataLoader path does)."""
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield self.batch(order[start:start + batch_size])


__all__ = ["DATA_ON_DEVICE_CHOICES", "DeviceFaces", "device_bytes", "use_device_data"]
