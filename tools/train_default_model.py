"""Train the default model shipped in facefill/weights/ (see docs/model-card.md).

    python tools/train_default_model.py ALIGNED_DIR VAL_LIST RUN_DIR [--steps N] [--threads T]

ALIGNED_DIR: the output of ``facefill align RAW --faces all --upsample 2`` on the photos listed in
the model card; VAL_LIST: the held-out files, one per line. Then
``python tools/export_default_model.py RUN_DIR/generator.safetensors`` writes the fp16 copy.
"""

import argparse
import dataclasses as dc
import time

import torch

from facefill.config import get_preset
from facefill.pipeline.train import train_folder
from facefill.train.loop import Callbacks

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("val_list")
ap.add_argument("run")
ap.add_argument("--steps", type=int, default=900)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
cfg = get_preset("small")
cfg = dc.replace(cfg, train=dc.replace(cfg.train, max_steps=args.steps, batch_size=8, val_list=args.val_list,
                                       num_workers=0, sample_every=100, checkpoint_every=100, log_every=10))
t0 = time.time()


def on_step(step, total, m):
    if step % 10 == 0:
        print(f"step {step}/{total} G {m['loss/G/total']:.3f} pixel/128 {m.get('loss/G/pixel/128', 0):.4f} "
              f"{time.time() - t0:.0f}s", flush=True)


r = train_folder(args.data, args.run, cfg, device="cpu", callbacks=Callbacks(on_step=on_step))
print("done", r.steps, "steps in", round(time.time() - t0), "s ->", r.release)
