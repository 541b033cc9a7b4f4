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
    from facefill.pipeline.evaluate import evaluate
    from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder, load_model
    from facefill.pipeline.mask import mask_folder

    real = args.out / "real"
    if args.list is not None:
        names = {line.strip() for line in args.list.read_text().splitlines() if line.strip()}
        shutil.rmtree(real, ignore_errors=True)
        real.mkdir(parents=True)
        for p in list_images(args.aligned):
            if p.name in names:
                for companion in (p, p.with_suffix(".json"), p.with_name(p.stem + ".valid.png")):
                    if companion.is_file():
                        shutil.copy(companion, real / companion.name)
    else:
        real = args.aligned
    masked = args.out / "masked"
    mask_folder(real, masked, overwrite=True)
    rows = {}
    for method in args.methods:
        if method == "masked":
            gen = args.out / "masked_only"
            shutil.rmtree(gen, ignore_errors=True)
            gen.mkdir()
            for p in list_images(masked):
                shutil.copy(p, gen / p.name)
        else:
            gen = args.out / method
            G, cfg = load_model(args.checkpoint) if method == "model" else (None, None)
            hallucinate_folder(masked, gen, G, cfg, HallucinateOptions(method=method, overwrite=True, batch_size=32),
                               checkpoint=args.checkpoint)
        result = evaluate(gen, real, tuple(args.metrics), masks_dir=masked)
        rows[method] = {m: s.get("mean", s.get("value")) for m, s in result.summary.items()}
        rows[method]["n"] = len(result.rows)
        print(method, json.dumps(rows[method]), flush=True)
    cols = ["ssim", "ssim_context", "l1_context"] + [m for m in ("match", "fid") if m in args.metrics]
    lines = ["| method | " + " | ".join(cols) + " | N |", "|---" * (len(cols) + 2) + "|"]
    for method, r in rows.items():
        lines.append(f"| {method} | " + " | ".join(f"{r[c]:.3f}" if c != "fid" else f"{r[c]:.1f}" for c in cols)
                     + f" | {r['n']} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "compare.md").write_text(table + "\n")
    (args.out / "compare.json").write_text(json.dumps(rows, indent=2))
    if args.grid is not None:
        files = sorted(p.name for p in list_images(real))[: args.grid_rows]
        dirs = [real, masked] + [args.out / ("masked_only" if m == "masked" else m) for m in args.methods if m != "masked"]
        write_contact_sheet(args.grid, [[read_image(d / f) for d in dirs] for f in files])
        print(f"contact sheet ({' | '.join(d.name for d in dirs)}): {args.grid}")


if __name__ == "__main__":
    main()
