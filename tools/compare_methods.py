"""Score the model next to the classical baselines on the same aligned faces (the model card's table).

    python tools/compare_methods.py ALIGNED_DIR OUT_DIR [--checkpoint G.safetensors] [--list val.txt]
        [--methods model telea ns mean masked] [--grid sheet.png] [--metrics ssim match fid]

ALIGNED_DIR holds aligned real faces (output of 'facefill align'); ``--list`` keeps only the files
named in it (e.g. facefill/data/splits/celeba_val.txt). Every method gets the same masked input
(``facefill mask``) and is scored by ``facefill evaluate`` against the same real faces, whole image
and context only (``--masks``). ``masked`` is the masked input itself (the floor). Writes
OUT_DIR/<method>/ images, OUT_DIR/compare.{json,md}, and with ``--grid`` a contact sheet
(real | masked | each method).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path



def _real_folder(aligned: Path, out: Path, names_file: Path | None) -> Path:
    """The real faces to compare on: ``aligned`` itself, or with ``--list`` a copy of the listed
    crops (and their sidecars) in ``out/real``."""
    from facefill.data.io import list_images

    if names_file is None:
        return aligned
    real = out / "real"
    names = {line.strip() for line in names_file.read_text().splitlines() if line.strip()}
    shutil.rmtree(real, ignore_errors=True)
    real.mkdir(parents=True)
    for p in list_images(aligned):
        if p.name in names:
            for companion in (p, p.with_suffix(".json"), p.with_name(p.stem + ".valid.png")):
                if companion.is_file():
                    shutil.copy(companion, real / companion.name)
    return real


def _method_dir(out: Path, method: str) -> Path:
    return out / ("masked_only" if method == "masked" else method)


def _generate(method: str, masked: Path, out: Path, checkpoint: Path | None) -> Path:
    """``method``'s outputs for the masked faces (``masked``: the masked input itself, as a floor)."""
    from facefill.data.io import list_images
    from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder

    gen = _method_dir(out, method)
    if method == "masked":
        shutil.rmtree(gen, ignore_errors=True)
        gen.mkdir()
        for p in list_images(masked):
            shutil.copy(p, gen / p.name)
        return gen
    hallucinate_folder(masked, gen, HallucinateOptions(method=method, overwrite=True, batch_size=32,
                                                      checkpoint=checkpoint if method == "model" else None))
    return gen


def _write_table(rows: dict[str, dict], metrics: list[str], out: Path) -> None:
    """The Markdown table (printed, and out/compare.md) and out/compare.json."""
    cols = ["ssim", "ssim_context", "l1_context"] + [m for m in ("match", "fid") if m in metrics]
    lines = ["| method | " + " | ".join(cols) + " | N |", "|---" * (len(cols) + 2) + "|"]
    for method, r in rows.items():
        lines.append(f"| {method} | " + " | ".join(f"{r[c]:.3f}" if c != "fid" else f"{r[c]:.1f}" for c in cols)
                     + f" | {r['n']} |")
    table = "\n".join(lines)
    print(table)
    (out / "compare.md").write_text(table + "\n")
    (out / "compare.json").write_text(json.dumps(rows, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("aligned", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--list", type=Path, default=None)
    ap.add_argument("--methods", nargs="+", default=["model", "telea", "ns", "mean", "masked"])
    ap.add_argument("--metrics", nargs="+", default=["ssim", "match", "fid"])
    ap.add_argument("--grid", type=Path, default=None)
    ap.add_argument("--grid-rows", type=int, default=8)
    args = ap.parse_args()

    from facefill.data.io import list_images, read_image
    from facefill.data.sheet import write_contact_sheet
    from facefill.pipeline.evaluate import evaluate_folders as evaluate
    from facefill.pipeline.mask import mask_folder

    real = _real_folder(args.aligned, args.out, args.list)
    masked = args.out / "masked"
    mask_folder(real, masked, overwrite=True)
    rows = {}
    for method in args.methods:
        gen = _generate(method, masked, args.out, args.checkpoint)
        result = evaluate(gen, real, tuple(args.metrics), masks_dir=masked)
        rows[method] = {m: s.get("mean", s.get("value")) for m, s in result.summary.items()}
        rows[method]["n"] = len(result.rows)
        print(method, json.dumps(rows[method]), flush=True)
    _write_table(rows, args.metrics, args.out)
    if args.grid is not None:
        files = sorted(p.name for p in list_images(real))[: args.grid_rows]
        dirs = [real, masked] + [_method_dir(args.out, m) for m in args.methods if m != "masked"]
        write_contact_sheet(args.grid, [[read_image(d / f) for d in dirs] for f in files])
        print(f"contact sheet ({' | '.join(d.name for d in dirs)}): {args.grid}")


if __name__ == "__main__":
    main()
