"""Rewrite tests/models/golden/default_small.json after the default model changed (run it only
then: the golden file pins the shipped weights' outputs).

    python tools/update_default_golden.py

:func:`golden_outputs` is the one definition of what the file stores; the check in
tests/models/test_release.py loads it from this file, so the file and the check cannot drift
apart. This tool reads no test code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "models" / "golden" / "default_small.json"
#: how the input of :func:`golden_outputs` is made (stored in the file, checked by the test)
GOLDEN_INPUT = "torch.manual_seed(0); torch.rand(2, 3, 128, 128) * 2 - 1"


def golden_outputs(G: torch.nn.Module) -> dict:
    """Per scale: mean, mean absolute value and the first 8 values of the generator ``G``'s
    output on ``GOLDEN_INPUT`` (``(2, 3, 128, 128)`` in [-1, 1]): what default_small.json stores."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        out = G(x)
    return {str(k): {"mean": float(v.double().mean()), "abs_mean": float(v.double().abs().mean()),
                     "first": [round(float(a), 6) for a in v.flatten()[:8]]} for k, v in out.items()}


def main() -> None:
    from facefill.models.release import load_generator
    from facefill.pipeline.hallucinate import default_model_path

    G, _ = load_generator(default_model_path())
    GOLDEN.write_text(json.dumps({"input": GOLDEN_INPUT, "outputs": golden_outputs(G)}, indent=1) + "\n")
    print("wrote", GOLDEN)


if __name__ == "__main__":
    main()
