"""Rewrite tests/models/golden/default_small.json after the default model changed (run it only
then: the golden file pins the shipped weights' outputs). The summary is computed by the test's
own ``golden_outputs``, so the file and the check cannot drift apart.

    python tools/update_default_golden.py
"""

import importlib.util
import json
from pathlib import Path

from facefill.models.release import load_generator
from facefill.pipeline.hallucinate import default_model_path

TEST = Path(__file__).resolve().parents[1] / "tests" / "models" / "test_release.py"
spec = importlib.util.spec_from_file_location("test_release", TEST)
test = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test)
G, _ = load_generator(default_model_path())
test.GOLDEN.write_text(json.dumps({"input": test.GOLDEN_INPUT, "outputs": test.golden_outputs(G)}, indent=1) + "\n")
print("wrote", test.GOLDEN)
