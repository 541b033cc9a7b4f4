"""``evaluate`` over two folders: generated vs real images, paired by relative path.

Per image: ``match`` (:mod:`facefill.metrics.match`), ``ssim`` (:mod:`facefill.metrics.ssim`),
``pieapp`` and ``lpips`` (piq; lower is better). With ``masks_dir`` (the output of
``facefill mask``), also the context metrics ``ssim_context`` and ``l1_context``, computed over
the hallucinated region only (pixels outside the face mask; :mod:`facefill.metrics.context`).
Per set: ``fid`` and ``kid`` (:mod:`facefill.metrics.fid`, :mod:`facefill.metrics.kid`), from one
pass of the FID Inception (:mod:`facefill.metrics.inception`) over each side; ``seam-kid`` (and its
floor ``seam-kid-floor``), KID of patches on the face mask's border, outputs against other faces'
real photos (:func:`facefill.metrics.seam.seam_kid`), from the masks of ``masks_dir`` or the
``<name>.mask.png`` beside each generated image.

Padding: an aligned real image may have a ``<name>.valid.png`` beside it (``facefill align``: 0 where
the eye-centred frame left the photo; :func:`facefill.align.sidecar.read_valid`). Its invalid pixels
are left out of ``ssim`` (the SSIM map is averaged over the valid window centres) and of the
context metrics; for ``fid``/``kid`` the generated image gets the real image's padding pasted in
(``match_padding``) so that the two sides differ only where the photo has content. Pairs without a
``.valid.png`` are scored exactly as before.

Every precondition (weights present, pairs complete, same sizes, enough images for FID/KID, a
``real_stats`` cache that holds what is asked) is checked before any metric is computed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facefill.data.batch import Progress
from facefill.data.io import MASK_SUFFIX, list_images, read_image, write_bytes
from facefill.data.tensors import from_uint8
from facefill.errors import FacefillError
from facefill.metrics import (CONTEXT_METRICS, DEFAULT_METRICS, METRICS, SEAM_METRICS, SET_METRICS,  # the one list
                              SUMMARY_ONLY)
from facefill.pipeline.outputs import Write, check_write_plan

HIGHER_IS_BETTER = {"match": True, "ssim": True, "fid": False, "kid": False, "pieapp": False, "lpips": False,
                    "ssim_context": True, "l1_context": False, "seam-kid": False, "seam-kid-floor": False}
#: weight files (keys of facefill.weights.WEIGHTS) each metric loads from torch hub's cache
PIQ_WEIGHTS = {"pieapp": ("pieapp",), "lpips": ("lpips", "vgg16")}


def check_weights(metric: str) -> None:
    """WeightsNotFoundError naming every missing file of ``metric`` and where it goes."""
    from facefill.errors import WeightsNotFoundError
    from facefill.weights import WEIGHTS, hub_checkpoints, locate

    missing = [WEIGHTS[k] for k in PIQ_WEIGHTS.get(metric, ()) if locate(k)[0] is None or locate(k)[0].parent != hub_checkpoints()]
    if missing:
        steps = "; ".join(f"download {w.how} into {hub_checkpoints()}/" for w in missing)
        raise WeightsNotFoundError(f"{metric} needs weights that are not on this machine: {steps} "
                                   "(or set TORCH_HOME to a folder whose hub/checkpoints holds them)")


def _key(path: Path, root: Path) -> str:
    return str(path.relative_to(root).with_suffix(""))


_VARIANT = re.compile(r"^(.*)_v(\d+)$")


def pair_folders(gen_dir: Path, real_dir: Path, variant: int | None = None) -> list[tuple[Path, Path, str]]:
    """Match files by relative path (extension-insensitive). Raises listing unpaired files.

    ``variant`` K: the generated images are a ``hallucinate --variants`` run's ``<name>_v<K>``
    outputs only (the other variants are left out), each paired with ``<name>`` in ``real_dir``;
    the pair's key is ``<name>``."""
    gen_dir, real_dir = Path(gen_dir), Path(real_dir)
    for d, what in ((gen_dir, "generated"), (real_dir, "real")):
        if not d.is_dir():
            raise FacefillError(f"{d} ({what} folder) does not exist")
    gen = {_key(p, gen_dir): p for p in list_images(gen_dir)}
    if variant is not None:
        picked = {m.group(1): p for k, p in gen.items() if (m := _VARIANT.match(k)) and int(m.group(2)) == variant}
        if not picked:
            raise FacefillError(f"--variant {variant}: {gen_dir} holds no <name>_v{variant} outputs of a "
                                "'hallucinate --variants' run")
        gen = picked
    real = {_key(p, real_dir): p for p in list_images(real_dir)}
    if not gen:
        raise FacefillError(f"no images in {gen_dir}")
    only_gen, only_real = sorted(set(gen) - set(real)), sorted(set(real) - set(gen))
    if only_gen:
        hint = ""
        if variant is None and any((m := _VARIANT.match(k)) and m.group(1) in real for k in only_gen):
            hint = ("; they are a 'hallucinate --variants' run's outputs: evaluate one variant at a time "
                    "with --variant K (0 = each face's best donor)")
        raise FacefillError(f"{len(only_gen)} generated images have no real image of the same relative path in "
                            f"{real_dir}: {', '.join(only_gen[:10])}{' ...' if len(only_gen) > 10 else ''}{hint}")
    if only_real:
        raise FacefillError(f"{len(only_real)} real images have no generated counterpart in {gen_dir}: "
                            f"{', '.join(only_real[:10])}{' ...' if len(only_real) > 10 else ''} "
                            "(evaluate a matching subset: copy or link the pairs into two folders)")
    return [(gen[k], real[k], k) for k in sorted(gen)]


@dataclass
class EvalResult:
    generated: str = ""
    real: str = ""
    rows: list[dict] = field(default_factory=list)  # one per pair: {"file", metric: value}
    #: metric -> {"mean", "std", "n"}, one shape for every metric: fid is one number over the set
    #: (its std is None, null in JSON); kid adds "subsets" and "subset_size"
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"generated": self.generated, "real": self.real, "summary": self.summary,
                           "rows": self.rows, "notes": self.notes}, indent=2)

    def to_csv(self) -> str:
        """Per-image rows (``file`` then one column per per-image metric), then ``# metric`` summary rows."""
        cols = ["file"] + [m for m in self.summary if m not in SUMMARY_ONLY]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for row in self.rows:
            w.writerow([row["file"]] + [f"{row[c]:.6f}" for c in cols[1:]])
        for m, s in self.summary.items():
            w.writerow([f"# {m}"] + [f"{s['mean']:.6f}"])
        return buf.getvalue()

    def write(self, path: str | os.PathLike, fmt: str) -> Path:
        """Write the JSON or CSV report to ``path`` atomically (OutputError if it cannot)."""
        return write_bytes(path, (self.to_json() if fmt == "json" else self.to_csv()).encode())


def _mask_for(masks_dir: Path, key: str, shape: tuple[int, int]) -> np.ndarray:
    """The ``(H, W) float32`` face mask (1 = face) of pair ``key`` from ``--masks``."""
    from facefill.data.io import read_mask

    path = masks_dir / (key + MASK_SUFFIX)
    m = read_mask(path, shape)
    if m is None:
        raise FacefillError(f"{path}: missing, unreadable or not {shape[1]}x{shape[0]}; --masks must be the "
                            "output folder of 'facefill mask' for these faces")
    return m


def _valid_for(real_path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The real image's ``(H, W)`` validity mask (1 = from the photo), or None when every pixel is
    valid (no ``.valid.png``, or one without a 0)."""
    from facefill.align.sidecar import read_valid, valid_path

    path = valid_path(real_path)
    if not path.is_file():
        return None
    v = read_valid(real_path)
    if v is None or v.shape != shape:
        raise FacefillError(f"{path}: unreadable or not {shape[1]}x{shape[0]}; it must be the .valid.png "
                            f"'facefill align' wrote beside {real_path.name} (delete it to count every pixel)")
    return v if (v < 0.5).any() else None


def valid_ssim(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``(B,)`` of ``(B, 3, H, W)`` images in [0, 1], the SSIM map (facefill's
    settings) averaged over the window centres on valid pixels, ``valid`` ``(B, 1, H, W)`` in {0, 1}
    (1 = from the photo): :func:`facefill.metrics.context.context_ssim` with the padding as its
    excluded region. NaN for an image with no valid window centre."""
    from facefill.metrics.context import context_ssim

    return context_ssim(x, y, 1.0 - valid)


@dataclass
class _Plan:
    """What :func:`evaluate_folders` checked before computing anything: the pairs, what to compute, and
    where the real set's Inception statistics come from."""

    pairs: list[tuple[Path, Path, str]]
    metrics: tuple[str, ...]
    masks_dir: Path | None
    #: a ``real_stats`` file to read (None: compute the real side, and save it to ``real_stats`` if given)
    cache: Path | None
    #: what a ``real_stats`` cache is computed from (:func:`_real_set`); None without fid/kid or ``real_stats``
    real_set: dict | None

    @property
    def use_inception(self) -> bool:
        return any(m in self.metrics for m in SET_METRICS)

    @property
    def seam(self) -> bool:
        return any(m in self.metrics for m in SEAM_METRICS)

    @property
    def per_image(self) -> list[str]:
        return [m for m in self.metrics if m not in SUMMARY_ONLY] + (list(CONTEXT_METRICS) if self.masks_dir else [])

    @property
    def need_valid(self) -> bool:
        """Padding matters to ssim, the context metrics and the Inception input: read ``.valid.png`` only then."""
        return "ssim" in self.metrics or self.masks_dir is not None or self.use_inception or self.seam


def check_request(gen_dir: Path, real_dir: Path, metrics: tuple[str, ...], real_stats: str | os.PathLike | None,
                  inception_weights: str | os.PathLike | None, masks_dir: str | os.PathLike | None,
                  result: EvalResult, variant: int | None = None) -> _Plan:
    """Pair the folders and check every precondition of :func:`evaluate_folders` (known metrics, enough
    images for fid/kid, paths that do not overlap, weights present, masks present, a usable
    ``real_stats`` cache) before any metric is computed; warnings go to ``result.notes``."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise FacefillError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    pairs = pair_folders(gen_dir, real_dir, variant)
    if gen_dir.resolve() == real_dir.resolve():
        result.notes.append(f"warning: the generated and real folders are the same folder ({gen_dir}): "
                            "every score compares an image with itself")
    elif all(g.read_bytes() == r.read_bytes() for g, r, _ in pairs[:8]):
        result.notes.append("warning: the first generated files are byte-identical to the real ones: "
                            "is the generated folder a copy of the real one?")
    for m in SET_METRICS:
        if m in metrics and len(pairs) < 2:
            raise FacefillError(f"{m} needs at least 2 images per side, {gen_dir} has {len(pairs)}; "
                                f"leave {m} out (--metrics match ssim) or evaluate more images")
    check_write_plan([Write("--real-stats", real_stats, folder=False)], {
        "generated folder": gen_dir, "real folder": real_dir, "--masks": masks_dir, "--inception-weights": inception_weights})
    plan = _Plan(pairs, metrics, Path(masks_dir) if masks_dir is not None else None, None, None)
    if plan.use_inception and real_stats is not None:
        plan.cache = Path(real_stats) if Path(real_stats).is_file() else None
        plan.real_set = _real_set(real_dir, pairs)
    if plan.cache is not None and "kid" in metrics:
        from facefill.metrics.fid import has_features

        if not has_features(plan.cache):
            raise FacefillError(f"--real-stats {plan.cache} holds FID statistics only (written before kid existed); kid "
                                "needs the real features: delete the file (the next run rewrites it with them) or leave kid out")
    for m in metrics:
        check_weights(m)
    if plan.seam:
        _check_seam(plan, gen_dir)
    if plan.masks_dir is not None:
        if not plan.masks_dir.is_dir():
            raise FacefillError(f"--masks {plan.masks_dir} does not exist; give the output folder of 'facefill mask'")
        missing = [k for _, _, k in pairs if not (plan.masks_dir / (k + MASK_SUFFIX)).is_file()]
        if missing:
            raise FacefillError(f"{len(missing)} pairs have no {MASK_SUFFIX} in {plan.masks_dir}: {', '.join(missing[:10])}")
    return plan


def _seam_mask_path(plan: _Plan, gen: Path, key: str) -> Path:
    """Where pair ``key``'s face mask for seam-kid is: in ``--masks``, else beside the generated image."""
    from facefill.data.io import companion_path

    return plan.masks_dir / (key + MASK_SUFFIX) if plan.masks_dir is not None else companion_path(gen, MASK_SUFFIX)


def _check_seam(plan: _Plan, gen_dir: Path) -> None:
    """seam-kid needs 4 pairs or more (two halves of 2) and every pair's face mask."""
    if len(plan.pairs) < 4:
        raise FacefillError(f"seam-kid needs at least 4 images per side (two halves of 2 faces), {gen_dir} has "
                            f"{len(plan.pairs)}; leave seam-kid out or evaluate more images")
    if plan.masks_dir is None:
        missing = [k for g, _, k in plan.pairs if not _seam_mask_path(plan, g, k).is_file()]
        if missing:
            raise FacefillError(f"seam-kid needs each face's mask: {len(missing)} generated images have no {MASK_SUFFIX} "
                                f"beside them in {gen_dir} ({', '.join(missing[:5])}); give --masks MASKED_DIR (the "
                                "output folder of 'facefill mask' for these faces)")


def _load_nets(metrics: tuple[str, ...], device: torch.device) -> dict[str, torch.nn.Module]:
    """The per-image metric networks asked for: ``match`` (dlib ResNet), ``pieapp``, ``lpips`` (piq)."""
    nets: dict[str, torch.nn.Module] = {}
    if "match" in metrics:
        from facefill.models.embedders import FaceEmbedder

        nets["match"] = FaceEmbedder().to(device)
    if "pieapp" in metrics or "lpips" in metrics:
        from facefill.runtime import import_piq
        from facefill.weights import vet_third_party

        for metric in ("pieapp", "lpips"):  # piq loads them with torch.load(weights_only=False)
            if metric in metrics:
                for key in PIQ_WEIGHTS[metric]:
                    vet_third_party(key)
        piq = import_piq()
        if "pieapp" in metrics:
            nets["pieapp"] = piq.PieAPP(reduction="none", stride=27).to(device)
        if "lpips" in metrics:
            nets["lpips"] = piq.LPIPS(reduction="none").to(device)
    return nets


@dataclass
class _Batch:
    """One batch of pairs, read: ``x`` generated and ``y`` real ``(B, 3, H, W)`` in [0, 1], ``valid``
    ``(B, 1, H, W)`` in {0, 1} (1 = from the photo), ``padded`` the indices with padding."""

    names: list[str]
    x: torch.Tensor
    y: torch.Tensor
    landmarks: list[np.ndarray | None]
    valid: torch.Tensor
    padded: list[int]
    face_masks: list[np.ndarray]
    #: for seam-kid: each pair's face mask ``(H, W)`` in {0, 1} (empty without seam-kid)
    seam_masks: list[np.ndarray] = field(default_factory=list)


def _read_batch(chunk: list[tuple[Path, Path, str]], plan: _Plan, device: torch.device,
                mismatched: list[str]) -> _Batch | None:
    """Read one batch of pairs; pairs of different sizes go to ``mismatched`` (None is returned
    once there is one: no result is used then)."""
    from facefill.align.sidecar import read_sidecar

    gens, reals, lms, names, masks, valids, seam = [], [], [], [], [], [], []
    for g, r, key in chunk:
        gi, ri = read_image(g), read_image(r)
        if gi.shape != ri.shape:
            mismatched.append(f"{key} ({gi.shape[1]}x{gi.shape[0]} vs {ri.shape[1]}x{ri.shape[0]})")
            continue
        side = read_sidecar(r)
        lms.append(np.asarray(side["landmarks"], np.float32) if side and "landmarks" in side else None)
        gens.append(gi), reals.append(ri), names.append(key)
        valids.append(_valid_for(r, ri.shape[:2]) if plan.need_valid else None)
        if plan.masks_dir is not None:
            masks.append(_mask_for(plan.masks_dir, key, gi.shape[:2]))
        if plan.seam:
            seam.append(masks[-1] if plan.masks_dir is not None else _seam_mask(_seam_mask_path(plan, g, key), gi.shape[:2]))
    if mismatched or not gens:
        return None
    x, y = from_uint8(gens, device, signed=False), from_uint8(reals, device, signed=False)
    padded = [i for i, v in enumerate(valids) if v is not None]
    valid = torch.ones(len(names), 1, *x.shape[-2:], device=device)  # 1 = from the photo
    for i in padded:
        valid[i, 0] = torch.from_numpy(valids[i]).to(device)
    return _Batch(names, x, y, lms, valid, padded, masks, seam)


def _seam_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from facefill.data.io import read_mask

    m = read_mask(path, shape)
    if m is None:
        raise FacefillError(f"{path}: unreadable or not {shape[1]}x{shape[0]}; seam-kid needs the face mask "
                            "'facefill mask' or 'hallucinate' wrote for this image")
    return m


@torch.no_grad()
def _seam_features(b: _Batch, inception: torch.nn.Module, match_padding: bool, points: int,
                   patch: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Inception features ``(P, 2048)`` of the generated and the real border patches of one batch
    (``points`` per face, :func:`facefill.metrics.seam.border_points`, ``patch`` px), and the batch
    index of each patch's face. The generated image gets the real one's padding first, as for fid/kid."""
    from facefill.metrics.seam import border_patches, border_points

    xg = torch.where(b.valid > 0.5, b.x, b.y) if match_padding and b.padded else b.x
    gen, real, faces = [], [], []
    for i, m in enumerate(b.seam_masks):
        pts = border_points(m, points)
        g = border_patches(xg[i].permute(1, 2, 0).cpu().numpy(), pts, patch)
        r = border_patches(b.y[i].permute(1, 2, 0).cpu().numpy(), pts, patch)
        gen.append(torch.from_numpy(g))
        real.append(torch.from_numpy(r))
        faces += [i] * len(pts)
    dev = b.x.device
    gen_t, real_t = (torch.cat(t).permute(0, 3, 1, 2).to(dev) for t in (gen, real))
    return inception(gen_t).cpu(), inception(real_t).cpu(), faces


@torch.no_grad()
def _score_batch(b: _Batch, metrics: tuple[str, ...], nets: dict[str, torch.nn.Module]) -> list[dict]:
    """The per-image metrics of one batch: one row ``{"file", metric: value}`` per pair."""
    from facefill.metrics.match import match_scores
    from facefill.metrics.ssim import ssim

    rows = [{"file": n} for n in b.names]

    def put(metric: str, values) -> None:
        for row, v in zip(rows, values):
            row[metric] = float(v)

    x, y = b.x, b.y
    if "ssim" in metrics:
        values = ssim(x, y)
        if b.padded:  # only the padded images change: the rest keep piq's plain mean
            sel = torch.tensor(b.padded, device=x.device)
            values[sel] = valid_ssim(x[sel], y[sel], b.valid[sel]).to(values.dtype)
        put("ssim", values.tolist())
    if "match" in metrics:
        put("match", match_scores(nets["match"], x, y, b.landmarks))
    for m in ("pieapp", "lpips"):
        if m in metrics:
            put(m, nets[m](x, y).reshape(len(b.names)).tolist())
    if b.face_masks:
        from facefill.metrics.context import context_l1, context_ssim

        fm = torch.from_numpy(np.stack(b.face_masks))[:, None].to(x.device)
        fm = torch.maximum(fm, 1.0 - b.valid)  # padding is no context: left out like the face
        put("ssim_context", context_ssim(x, y, fm).reshape(-1).tolist())
        put("l1_context", context_l1(x, y, fm).reshape(-1).tolist())
    return rows


@torch.no_grad()
def _inception_features(b: _Batch, inception: torch.nn.Module, match_padding: bool,
                        real_side: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, 2048)`` Inception features of the generated side (and of the real side when
    ``real_side``), on the CPU. With ``match_padding`` the real image's padding is pasted into the
    generated one, so both sides differ only where the photo has content (``torch.where``: images
    without padding stay bit-identical)."""
    xg = torch.where(b.valid > 0.5, b.x, b.y) if match_padding and b.padded else b.x
    return inception(xg).cpu(), inception(b.y).cpu() if real_side else None


def _summarise(result: EvalResult, plan: _Plan, n_padded: int, match_padding: bool) -> None:
    """Mean, std and n of each per-image metric into ``result.summary``, and a note on padding."""
    for m in plan.per_image:
        vals = np.array([row[m] for row in result.rows], np.float64)
        result.summary[m] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": len(vals)}
    if not n_padded:
        return
    what = []
    if "ssim" in plan.metrics or plan.masks_dir is not None:
        what.append("valid pixels only in " + ("ssim and the context metrics" if "ssim" in plan.metrics and plan.masks_dir
                                               is not None else "ssim" if "ssim" in plan.metrics else "the context metrics"))
    if plan.use_inception:
        what.append("fid/kid saw each generated image with its real image's padding pasted in "
                    "(--no-match-padding turns this off)" if match_padding else
                    "fid/kid saw the generated images as they are, padding not matched (--no-match-padding)")
    result.notes.append(f"{n_padded} of {len(result.rows)} real images have padding (a .valid.png from "
                        f"'facefill align'): {'; '.join(what)}")


def evaluate_folders(
    gen_dir: str | os.PathLike,
    real_dir: str | os.PathLike,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    real_stats: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    progress: Progress | None = None,
    masks_dir: str | os.PathLike | None = None,
    match_padding: bool = True,
    seam_points: int = 8,
    seam_patch: int = 32,
    variant: int | None = None,
) -> EvalResult:
    """Compute ``metrics`` over all pairs (plus the context metrics with ``masks_dir``).

    ``real_stats``: an ``.npz`` holding the real set's FID statistics and Inception features, read
    if it exists (no real image goes through the Inception then), else written. Files written
    before KID hold no features: they still serve ``fid``, and asking ``kid`` with one is an error.
    ``match_padding``: for ``fid``/``kid``, replace each generated image's pixels where its real
    image is padding (``.valid.png`` 0) by the real pixels there; False feeds them as they are
    (seam-kid's patches likewise). ``seam_points``, ``seam_patch``: seam-kid's border points per
    face and patch side in pixels. ``variant`` K: a ``hallucinate --variants`` run's K-th outputs
    against the real images of their faces (:func:`pair_folders`)."""
    device = torch.device(device)
    gen_dir, real_dir = Path(gen_dir), Path(real_dir)
    result = EvalResult(str(gen_dir), str(real_dir))
    plan = check_request(gen_dir, real_dir, tuple(metrics), real_stats, inception_weights, masks_dir, result, variant)
    nets = _load_nets(plan.metrics, device)
    inception = None
    if plan.use_inception or plan.seam:
        from facefill.metrics.inception import load_inception

        inception = load_inception(inception_weights).to(device)
        if plan.cache is not None:
            _check_cache(plan.cache, plan.real_set, inception.source, result)
    feats_gen, feats_real, mismatched, n_padded = [], [], [], 0
    seam_gen, seam_real, seam_faces = [], [], []
    for start in range(0, len(plan.pairs), batch_size):
        chunk = plan.pairs[start:start + batch_size]
        batch = _read_batch(chunk, plan, device, mismatched)
        if batch is None:
            continue  # sizes differ somewhere: reported below, before any result is used
        result.rows.extend(_score_batch(batch, plan.metrics, nets))
        n_padded += len(batch.padded)
        if plan.use_inception:
            gen, real = _inception_features(batch, inception, match_padding, real_side=plan.cache is None)
            feats_gen.append(gen)
            feats_real += [real] if real is not None else []
        if plan.seam:
            gen, real, faces = _seam_features(batch, inception, match_padding, seam_points, seam_patch)
            seam_gen.append(gen)
            seam_real.append(real)
            seam_faces += [start + f for f in faces]
        if progress is not None:
            progress(min(start + batch_size, len(plan.pairs)), len(plan.pairs), chunk[-1][2])
    if mismatched:
        raise FacefillError(f"{len(mismatched)} pairs differ in size: {', '.join(mismatched[:10])}"
                            f"{' ...' if len(mismatched) > 10 else ''}; both sides must be aligned faces of one size "
                            f"(e.g. 128x128): run 'facefill align' on photos first (facefill align {real_dir} "
                            f"{real_dir.name}-aligned) and compare with its output")
    _summarise(result, plan, n_padded, match_padding)
    if plan.seam:
        _seam_summary(result, torch.cat(seam_gen), torch.cat(seam_real), np.asarray(seam_faces), seam_points, seam_patch)
    if plan.use_inception:
        _set_metrics(result, plan.metrics, torch.cat(feats_gen), torch.cat(feats_real) if feats_real else None,
                     plan.cache, real_stats, inception.source, plan.real_set)
    return result


def _seam_summary(result: EvalResult, gen: torch.Tensor, real: torch.Tensor, faces: np.ndarray, points: int,
                  patch: int) -> None:
    """``seam-kid`` and ``seam-kid-floor`` into ``result.summary`` (:func:`facefill.metrics.seam.seam_kid`)."""
    from facefill.metrics.seam import seam_kid

    s = seam_kid(gen, real, faces)
    extra = {"n": s["n"], "faces": int(len(np.unique(faces))), "points": points, "patch": patch}
    result.summary["seam-kid"] = {"mean": s["score"], "std": s["score_std"], **extra}
    result.summary["seam-kid-floor"] = {"mean": s["floor"], "std": s["floor_std"], **extra}
    result.notes.append(f"seam-kid: {patch} px patches at {points} points on each face mask's border, outputs of one half "
                        f"of the faces against the real photos of the other ({s['n']} patches a side, mean over 10 seeded "
                        "splits); seam-kid-floor is real photos against real photos the same way")


def _real_set(real_dir: Path, pairs: list[tuple[Path, Path, str]]) -> dict:
    """What a ``--real-stats`` cache is computed from: the real folder, its image count, and a
    digest of the real images' names and contents."""
    from facefill.pipeline.outputs import file_digest

    lines = "".join(f"{key}\t{file_digest(r)}\n" for _, r, key in pairs)
    return {"real": str(real_dir.resolve()), "n": len(pairs), "digest": hashlib.sha256(lines.encode()).hexdigest()[:16]}


def _check_cache(cache: Path, real_set: dict, source: str, result: EvalResult) -> None:
    """Refuse a ``--real-stats`` cache computed from other real images or another Inception network."""
    from facefill.metrics.fid import load_meta, load_stats

    meta, cached_source = load_meta(cache), load_stats(cache)[2]
    if cached_source and cached_source != source:
        raise FacefillError(f"--real-stats {cache} was computed with another Inception network ({cached_source}, here "
                            f"{source}); delete it to recompute it, or give another --real-stats file")
    if not meta:
        result.notes.append(f"warning: --real-stats {cache} does not record which real images it was computed from "
                            "(written by an older facefill), so it cannot be checked against these; delete it to "
                            "recompute it with that record")
    elif meta.get("digest") != real_set["digest"]:
        raise FacefillError(f"--real-stats {cache} was computed from other real images ({meta.get('n')} in "
                            f"{meta.get('real')}) than the {real_set['n']} in {real_set['real']}; delete it to recompute "
                            "it, or give another --real-stats file for this real set")


def _set_metrics(result: EvalResult, metrics: tuple[str, ...], feats_gen: torch.Tensor, feats_real: torch.Tensor | None,
                 cache: Path | None, real_stats: str | os.PathLike | None, source: str, real_set: dict | None = None) -> None:
    """fid and kid from the ``(N, 2048)`` features of both sides; the real side's come from
    ``cache`` when ``feats_real`` is None, and are saved to ``real_stats`` otherwise."""
    from facefill.metrics.fid import feature_stats, frechet_distance, load_features, load_stats, save_stats
    from facefill.metrics.kid import kid, kid_subsets

    n = len(result.rows)
    if cache is not None:
        result.notes.append(f"real feature statistics read from {cache}")
        mu_r, s_r = load_stats(cache)[:2] if "fid" in metrics else (None, None)
    else:
        mu_r, s_r = feature_stats(feats_real)
        if real_stats is not None:  # the whole cache, whichever of fid/kid was asked
            save_stats(real_stats, mu_r, s_r, source, len(feats_real), features=feats_real.numpy(), meta=real_set)
            result.notes.append(f"real feature statistics and features saved to {real_stats}")
    if "fid" in metrics:
        mu_g, s_g = feature_stats(feats_gen)
        value = frechet_distance(mu_g, s_g, mu_r, s_r)
        result.summary["fid"] = {"mean": value, "std": None, "n": n}
        if n < 2048:
            result.notes.append(f"FID on {n} images is biased upwards (the standard uses >= 10k; "
                                "compare FIDs only at equal N)")
    if "kid" in metrics:
        real = torch.from_numpy(load_features(cache)) if cache is not None else feats_real
        count, size = kid_subsets(len(feats_gen), len(real))
        mean, std = kid(feats_gen, real)
        result.summary["kid"] = {"mean": mean, "std": std, "n": n, "subsets": count, "subset_size": size}
        if count == 1:
            result.notes.append(f"kid on {n} images: every subset of min(1000, N) images is the whole set, so it is "
                                "one value with std 0 (the spread over subsets needs N > 1000)")
