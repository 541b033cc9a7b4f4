#!/usr/bin/env python3
"""Contact sheet of donor context with variants, for counting what FID cannot see.

    python tools/donor_sheet.py MASKED REAL BANK SHEET.png [--names LIST] [--variants 3] [--max 24]

Runs ``facefill hallucinate --method donor --variants K`` on MASKED (the faces named in LIST, a
file of ``<name>.png`` lines such as ``facefill/data/splits/other_unseen.txt``, or the first
``--max``), and writes one row per face: masked input | variant 0 (the best-fitting donor) ..
variant K-1 | the real photo (from REAL, same name), with the donor names printed for each face
on stdout. Count on it gender and age mismatches, seams and colour casts. Keep SHEET outside
the repository when the bank holds CelebA photos (non-commercial research only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("masked", type=Path)
    ap.add_argument("real", type=Path)
    ap.add_argument("bank", type=Path)
    ap.add_argument("sheet", type=Path)
    ap.add_argument("--names", type=Path)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--max", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from facefill.data.io import read_image
    from facefill.data.sheet import write_contact_sheet
    from facefill.donor import DonorHallucinator, DonorSettings, load_index
    from facefill.fill.donor import DonorFill
    from facefill.pipeline.hallucinate import HallucinateOptions, hallucinate_folder

    if args.names:
        names = [n.strip() for n in args.names.read_text().split() if (args.masked / n.strip()).is_file()]
    else:
        names = sorted(p.name for p in args.masked.glob("*.png") if p.name.count(".") == 1)
    names = names[:args.max]
    donor = DonorHallucinator(load_index(args.bank), DonorSettings(variants=args.variants, seed=args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for n in names:
            for f in args.masked.glob(Path(n).stem + ".*"):
                (src / f.name).symlink_to(f.resolve())
        picks: dict[str, list[str]] = {}

        class Recorder:  # the hallucinator, remembering which donors it used
            def __getattr__(self, name):  # everything else is the hallucinator's own
                return getattr(donor, name)

            def run(self, images, masks, landmarks, seeds, *args, **kwargs):
                res = donor.run(images, masks, landmarks, seeds, *args, **kwargs)
                for s, row in zip(seeds, res.picks):
                    picks[s] = [donor.index.names[i] for i in row if i >= 0]
                return res

        from facefill.donor import name_seed

        opts = HallucinateOptions(method="donor", donors=args.bank, variants=args.variants, seed=args.seed)
        report = hallucinate_folder(src, out, opts, filler=DonorFill(hallucinator=Recorder()))
        if report.failed:
            print(report.failed, file=sys.stderr)
        rows = []
        for n in names:
            stem = Path(n).stem
            outs = [read_image(out / (f"{stem}_v{k}.png" if args.variants > 1 else f"{stem}.png"))
                    for k in range(args.variants)]
            real = args.real / n
            rows.append([read_image(args.masked / n), *outs, read_image(real) if real.is_file() else None])
            print(stem, " ".join(picks.get(name_seed(n), [])))
    write_contact_sheet(args.sheet, rows)
    print(f"wrote {args.sheet}: {len(rows)} rows of masked | {args.variants} variants | real", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
