"""Copy a run's G_ema release weights into the package as the default model, stored in fp16.

    python tools/export_default_model.py RUN/generator.safetensors [--note "trained on ..."]
"""

import argparse

import torch

from facefill.pipeline.hallucinate import default_model_path
from facefill.models.release import load_generator, save_release

ap = argparse.ArgumentParser()
ap.add_argument("release")
ap.add_argument("--note", default="")
args = ap.parse_args()
G, cfg = load_generator(args.release)
path = save_release(default_model_path(), G, cfg, dtype=torch.float16,
                    extra={"note": args.note, "source": "tools/default_model_recipe.toml + tools/default_model_finetune.toml (see docs/model-card.md)"})
print(path, path.stat().st_size / 2**20, "MiB")
