"""Rewrite tests/models/golden/default_small.json after the default model changed (run it only
then: the golden file pins the shipped weights' outputs).

    python tools/update_default_golden.py
"""

import json
from pathlib import Path

import torch

from facefill.models.release import load_generator
from facefill.pipeline.hallucinate import default_model_path

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "models" / "golden" / "default_small.json"
G, _ = load_generator(default_model_path())
torch.manual_seed(0)
x = torch.rand(2, 3, 128, 128) * 2 - 1
with torch.no_grad():
    out = G(x)
outputs = {str(k): {"mean": float(v.double().mean()), "abs_mean": float(v.double().abs().mean()),
                    "first": [round(float(a), 6) for a in v.flatten()[:8]]} for k, v in out.items()}
GOLDEN.write_text(json.dumps({"input": "torch.manual_seed(0); torch.rand(2, 3, 128, 128) * 2 - 1",
                              "outputs": outputs}, indent=1) + "\n")
print("wrote", GOLDEN)
