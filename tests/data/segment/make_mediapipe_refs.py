"""Write MediaPipe's own selfie-segmentation outputs for the tests (run once, needs mediapipe).

    python tests/data/segment/make_mediapipe_refs.py

In an environment with ``mediapipe==0.10.21`` (see docs/replace-bg.md). For each input it runs
``mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0 or 1)`` and stores the
probability map as a 16-bit PNG (``round(p * 65535)``, so within 7.7e-6 of MediaPipe's float):
``mp_<variant>_<name>.png``. Inputs: the aligned 128x128 photos here, and
``tests/data/faces/obama2.jpg`` (400x209: its width scale 209/256 makes OpenCV's rounding ties
matter, which the port must reproduce) as ``<name>_raw``.
"""

from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

HERE = Path(__file__).parent
INPUTS = {p.stem: p for p in sorted(HERE.glob("*.png")) if not p.stem.startswith("mp_")}
INPUTS["obama2_raw"] = HERE.parents[1] / "data" / "faces" / "obama2.jpg"
LANDSCAPE = ("obama2", "obama2_raw")

for variant, selection in (("general", 0), ("landscape", 1)):
    for name, path in INPUTS.items():
        if variant == "landscape" and name not in LANDSCAPE:
            continue
        seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection)
        rgb = np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])
        prob = seg.process(rgb).segmentation_mask
        cv2.imwrite(str(HERE / f"mp_{variant}_{name}.png"), np.round(np.clip(prob, 0, 1) * 65535).astype(np.uint16))
        print(variant, name, rgb.shape, float(prob.mean()))
