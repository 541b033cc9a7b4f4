"""``facefill paste`` of donor variants (issue 34 item 4): ``<name>_v<k>.png`` of masked inputs
find the one sidecar and mask of ``<name>`` in the folder hallucinate read, and give one photo
per variant, ``<name>_v<k>.png``, each at the photo's size with the photo's own face."""

import shutil
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from facefill.align.sidecar import read_sidecar
from facefill.cli.app import app
from facefill.data.io import read_image, read_mask

runner = CliRunner()
DATA = Path(__file__).resolve().parents[1] / "data" / "faces"


def test_each_donor_variant_is_pasted_into_its_own_photo(masked_men, donor_bank, cache, tmp_path, kept_face):
    masked = masked_men  # the astronaut has no donor of her gender in the test bank
    out, final = tmp_path / "out", tmp_path / "final"
    r = runner.invoke(app, ["hallucinate", str(masked), str(out), "--method", "donor", "--donors", str(donor_bank),
                            "--variants", "2", "-q"])
    assert r.exit_code == 0, r.output
    photos = tmp_path / "photos"
    shutil.copytree(DATA, photos, ignore=shutil.ignore_patterns("astronaut*"))
    r = runner.invoke(app, ["paste", str(out), str(photos), str(final)])
    assert r.exit_code == 0, r.output
    for photo_path in sorted(photos.iterdir()):
        photo = read_image(photo_path)
        side = read_sidecar(masked / f"{photo_path.stem}.png")
        mask = read_mask(masked / f"{photo_path.stem}.mask.png")
        finals = [read_image(final / f"{photo_path.stem}_v{k}.png") for k in range(2)]
        for k, f in enumerate(finals):  # each variant over its own region (the donor's hair may narrow it)
            kept = kept_face(out, f"{photo_path.stem}_v{k}.png", mask > 0.5).astype(np.float32)
            back = cv2.warpAffine(kept, np.asarray(side["matrix"]), (photo.shape[1], photo.shape[0]),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            face = cv2.erode((back > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert f.shape == photo.shape and np.array_equal(f[face], photo[face]), photo_path.name
        assert not np.array_equal(finals[0], finals[1]), photo_path.name  # each variant's own context
        assert not (final / f"{photo_path.stem}.png").exists()
