"""What a run writes besides checkpoints: metrics.csv, TensorBoard scalars, sample grids, and
the validation metrics of G_ema.

``metrics.csv`` is long format, ``step,epoch,kind,name,value`` with ``kind`` = ``train`` or
``val`` and hierarchical names (``loss/G/pixel/64``, ``loss/D/total``, ``val/l1``,
``val/ssim``, ``speed/img_per_s``, ``progressive/stage``...). TensorBoard gets the same scalars
under the same names. A resumed run first drops the rows (and TensorBoard events) written after
the step it resumes from, so a step is never logged twice.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from facefill.data.tensors import to_uint8
from facefill.models.generator import pyramid

METRICS_HEADER = ["step", "epoch", "kind", "name", "value"]


class MetricsLog:
    """Appends rows to ``run_dir/metrics.csv`` (and TensorBoard when installed). ``enabled``
    False (DDP ranks > 0) makes every call a no-op. ``resume_step``: drop rows after it."""

    def __init__(self, run_dir: Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.csv"
        self.enabled = enabled
        self.board = None
        if not enabled:
            return
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as fh:
                rows = [r for r in csv.reader(fh)]
            keep = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= resume_step]
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerows(keep)
        self.board = _tensorboard(run_dir / "tensorboard", None if resume_step is None else resume_step + 1)

    def log(self, step: int, epoch: int, kind: str, values: dict[str, float | int]) -> None:
        if not self.enabled or not values:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(METRICS_HEADER)
            for name, v in values.items():
                w.writerow([step, epoch, kind, name, f"{v:.6g}" if isinstance(v, float) else v])
                if self.board is not None:
                    self.board.add_scalar(name, float(v), step)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


class LossMeter:
    """Sums each step's metrics between two log lines, on the device: :meth:`add` never reads a
    value back (values may be floats or 0-dim tensors); :meth:`flush` reads them all at once.
    ``loss/*`` values are averaged over the steps since the last flush, others (``progressive/*``)
    are the last step's; ``speed/img_per_s`` counts the images over the wall time since then."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor | float] = {}
        self.last: dict[str, torch.Tensor | float] = {}
        self.steps = self.images = 0
        self.since = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor | float], images: int) -> None:
        for name, v in metrics.items():
            v = v.detach() if isinstance(v, torch.Tensor) else v
            self.sums[name] = self.sums[name] + v if name in self.sums and name.startswith("loss/") else v
        self.last = dict(metrics)
        self.steps, self.images = self.steps + 1, self.images + images

    def flush(self) -> dict[str, float]:
        """The metrics since the last flush as Python numbers (one device read-back), then reset."""
        names = [k for k, v in self.sums.items() if isinstance(v, torch.Tensor)]
        read = torch.stack([self.sums[k].float().reshape(()) for k in names]).tolist() if names else []
        values = {**self.sums, **dict(zip(names, read))}
        out = {k: (v / self.steps if k.startswith("loss/") else v) for k, v in values.items()}
        now = time.perf_counter()
        out["speed/img_per_s"] = self.images / max(now - self.since, 1e-9)
        self.sums, self.steps, self.images, self.since = {}, 0, 0, now
        return out


def _tensorboard(log_dir: Path, purge_step: int | None):
    """A TensorBoard SummaryWriter when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


@torch.no_grad()
def sample_grid(G_ema: torch.nn.Module, batch: dict[str, torch.Tensor], path: Path, stage: int | None = None,
                alpha: float = 1.0, rows: int = 4) -> Path:
    """Write a PNG: one row per image (at most ``rows``); columns: masked input | each scale's
    output, nearest-upsampled | real."""
    from facefill.data.io import write_image

    outputs = G_ema(batch["masked"], stage=stage, alpha=alpha)
    size = batch["real"].shape[-1]
    cols = [batch["masked"][:rows]]
    cols += [F.interpolate(o[:rows].float(), size=(size, size), mode="nearest") for o in outputs.values()]
    cols.append(batch["real"][:rows])
    grid = torch.cat([torch.cat(list(c.cpu()), dim=1) for c in cols], dim=2)  # (3, rows*S, cols*S)
    return write_image(path, to_uint8(grid))


@torch.no_grad()
def validate(G_ema: torch.nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
             stage: int | None = None, alpha: float = 1.0) -> dict[str, float]:
    """``val/l1`` and ``val/ssim`` of G_ema's largest output (128 px, or the progressive stage's
    scale) against the held-out real photos.

    ``val/l1``: mean absolute difference in [-1, 1] units over valid pixels. ``val/ssim``: piq's
    SSIM with :data:`facefill.metrics.ssim.SSIM_SETTINGS` (the settings ``facefill evaluate``
    reports) on [0, 1] images whose invalid pixels are the real's; not computed below 16 px
    (smaller than the 11x11 window). ``val/ssim_keep``: the same SSIM with the real face pasted
    over the fake (:func:`facefill.losses.structure.keep_face`, the face mask the dataset makes),
    which is what ``facefill hallucinate`` delivers and ``evaluate`` scores; only when the dataset
    gives a ``mask``.
    """
    from facefill.losses.pixel import fill_invalid
    from facefill.losses.structure import keep_face
    from facefill.metrics.ssim import SSIM_SETTINGS, ssim

    l1_sum = weight = ssim_sum = keep_sum = 0.0
    has_mask = False
    n_images = 0
    g = torch.Generator().manual_seed(0)  # a loader draws a seed: never from the global RNG
    for batch in DataLoader(dataset, batch_size=batch_size, generator=g):
        out = G_ema(batch["masked"].to(device), stage=stage, alpha=alpha)
        fake = out[max(out)].float()
        n = fake.shape[-1]
        real = pyramid(batch["real"].to(device), (n,))[n]
        valid = pyramid(batch["valid"].to(device), (n,))[n] if "valid" in batch else torch.ones_like(real[:, :1])
        l1_sum += float(((fake - real).abs() * valid).sum())
        weight += float(valid.sum()) * real.shape[1]
        if n >= SSIM_SETTINGS["kernel_size"]:
            filled = fill_invalid(fake.clamp(-1, 1), real, valid)
            ssim_sum += float(ssim((filled + 1) / 2, (real + 1) / 2).sum())
            if "mask" in batch:
                has_mask = True
                kept = keep_face(filled, real, pyramid(batch["mask"].to(device), (n,))[n])
                keep_sum += float(ssim((kept + 1) / 2, (real + 1) / 2).sum())
        n_images += len(real)
    result = {"val/l1": l1_sum / max(weight, 1e-8)}
    if n_images and n >= SSIM_SETTINGS["kernel_size"]:
        result["val/ssim"] = ssim_sum / n_images
        if has_mask:
            result["val/ssim_keep"] = keep_sum / n_images
    return result
