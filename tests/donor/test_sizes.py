"""The donor path at other aligned sizes (issue 34): queries and a bank aligned at 256 px.

Every pixel distance of the fit (seam band, colour reach, erosion, sharpness and padding kernels)
is given for a 128 px crop and scaled with S / 128, so a 256 px output is a sharper 128 px one."""

import shutil

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.data.io import read_image

runner = CliRunner()


@pytest.fixture(scope="module")
def cache_256(tmp_path_factory):
    """One index cache for this module's runs on the 256 bank: its index is built once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEFILL_CACHE", str(tmp_path_factory.mktemp("cache256")))
        yield


@pytest.fixture(scope="module")
def masked_256(aligned_faces_256, tmp_path_factory):
    """Two men of the test photos at 256 px, masked with the refined region ('facefill mask
    --region refined'): the mask files say where the face is."""
    from facefill.config import MaskConfig
    from facefill.pipeline.mask import mask_folder

    src = tmp_path_factory.mktemp("men256")
    for face in ("biden", "obama"):
        for p in aligned_faces_256.glob(f"{face}.*"):
            shutil.copy(p, src / p.name)
    out = tmp_path_factory.mktemp("masked256")
    mask_folder(src, out, MaskConfig(region="refined"))
    return out


def test_donor_outputs_at_256_are_256_with_the_face_bit_exact(masked_256, donor_bank_256, cache_256, tmp_path, kept_face):
    out = tmp_path / "out"
    r = runner.invoke(app, ["hallucinate", str(masked_256), str(out), "--method", "donor", "--donors", str(donor_bank_256),
                            "--variants", "2"])
    assert r.exit_code == 0, r.output
    for stem in ("biden", "obama"):
        masked = read_image(masked_256 / f"{stem}.png")
        face = read_image(masked_256 / f"{stem}.mask.png")[..., 0] > 127
        assert face.shape == (256, 256) and 0.1 < face.mean() < 0.6
        for k in range(2):
            got = read_image(out / f"{stem}_v{k}.png")
            assert got.shape == (256, 256, 3)
            kept = kept_face(out, f"{stem}_v{k}.png", face)
            np.testing.assert_array_equal(got[kept], masked[kept])
            assert got[~face].std() > 10  # a whole photo around the face, not black
    rows = (out / "donors.tsv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(row.split("\t")[3].endswith(".png") for row in rows)


def test_a_bank_of_another_size_is_one_line_naming_both_sizes(masked, donor_bank_256, cache_256, tmp_path):
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--method", "donor",
                            "--donors", str(donor_bank_256)])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert "256x256" in lines[0] and "128x128" in lines[0] and "--size 128" in lines[0] and "--size 256" in lines[0]


def test_bank_info_takes_the_banks_size_and_groups_files_of_another_size(donor_bank, donor_bank_256, cache, tmp_path):
    from facefill.donor.index import bank_size

    bank = tmp_path / "mixed"
    shutil.copytree(donor_bank, bank)
    for p in donor_bank_256.glob("biden_plain.*"):
        shutil.copy(p, bank / p.name.replace("biden_plain", "big"))
    assert bank_size(bank) == 128 and bank_size(donor_bank_256) == 256
    assert runner.invoke(app, ["bank", "index", str(bank), "--quiet"]).exit_code == 0
    r = runner.invoke(app, ["bank", "info", str(bank)])
    assert r.exit_code == 0, r.output
    assert "25 images of 128x128" in r.output and "donors: 24; skipped: 1" in r.output
    assert "skipped 1: 256x256, not 128x128 (e.g. big.png)" in r.output


def _real(aligned, name):
    from facefill.align.sidecar import read_sidecar, read_valid

    path = aligned / f"{name}.png"
    image = read_image(path)
    size = image.shape[0]
    valid = read_valid(path, size)
    valid = np.ones((size, size), np.float32) if valid is None else valid.astype(np.float32)
    lm = torch.tensor(read_sidecar(path)["landmarks"], dtype=torch.float32)[None]
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, lm, torch.from_numpy(valid)[None, None]


def _seam_and_fit(aligned, scale):
    """biden's face with obama's context: the seam correction's width (px from the face where it
    is still 5 % of its peak) and the fitted output ``(S, S, 3)``."""
    from facefill.donor.composite import fit_donors
    from facefill.donor.seam import face_distance, seam_correction
    from facefill.donor.warp import warp_donors
    from facefill.mask.region import face_mask

    q, q_lm, _ = _real(aligned, "biden")
    d, d_lm, valid = _real(aligned, "obama")
    size = q.shape[-1]
    m = torch.from_numpy((face_mask(q_lm[0].numpy(), size) > 0.5).astype(np.float32))[None, None]
    dist = face_distance(m)
    c = seam_correction(q, warp_donors(d, valid, d_lm, q_lm, scale=scale), m, dist, 10, scale=scale).abs().amax(1, keepdim=True)
    out, _ = fit_donors(q, m, q_lm, d, valid, d_lm, 10, 24.0, scale)
    return float(dist[c > 0.05 * c.max()].max()), out[0].permute(1, 2, 0).numpy(), m[0, 0].numpy() > 0.5


def test_the_seam_band_and_the_fit_scale_with_the_size(aligned_faces, aligned_faces_256):
    """At 256 px the seam correction reaches twice as many pixels from the face as at 128, and the
    output shrunk to 128 is close to the 128 output; without the scale (1 at 256) neither holds."""
    w128, out128, face = _seam_and_fit(aligned_faces, 1.0)
    w256, out256, _ = _seam_and_fit(aligned_faces_256, 2.0)
    w_flat, flat, _ = _seam_and_fit(aligned_faces_256, 1.0)
    assert 5 < w128 <= 10 and 1.8 < w256 / w128 < 2.2 and w_flat / w128 < 1.2, (w128, w256, w_flat)

    def off(x):  # mean grey-level distance of the context from the 128 output's
        return float(np.abs(cv2.resize(x, (128, 128), interpolation=cv2.INTER_AREA) - out128)[~face].mean() * 255)

    assert off(out256) < off(flat), (off(out256), off(flat))


def test_photos_take_the_banks_size_and_paste_back_from_256(donor_bank_256, cache_256, tmp_path, data_dir):
    """Photos alone are aligned at the bank's size (256), and 'facefill paste' puts the 256 outputs
    back: the face the photo's own pixels, the photo untouched beyond the crop, new context inside."""
    import json

    from facefill.data.io import read_mask

    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(data_dir / "faces" / "biden.jpg", raw / "biden.jpg")
    out, final = tmp_path / "out", tmp_path / "final"
    r = runner.invoke(app, ["hallucinate", str(raw), str(out), "--method", "donor", "--donors", str(donor_bank_256)])
    assert r.exit_code == 0, r.output
    assert read_image(out / "biden.png").shape == (256, 256, 3)
    r = runner.invoke(app, ["paste", str(out), str(raw), str(final)])
    assert r.exit_code == 0, r.output
    photo, pasted = read_image(raw / "biden.jpg"), read_image(final / "biden.png")
    assert pasted.shape == photo.shape
    m = np.asarray(json.loads((out / "biden.json").read_text())["matrix"], np.float64)
    hw = photo.shape[1], photo.shape[0]

    def back(plane):
        return cv2.warpAffine(plane.astype(np.float32), m, hw, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    face = cv2.erode((back(read_mask(out / "biden.mask.png")) > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    foot = back(np.ones((256, 256))) > 0
    outside = ~(cv2.dilate(foot.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    assert face.sum() > 2000 and outside.sum() > 2000
    np.testing.assert_array_equal(pasted[face], photo[face])
    np.testing.assert_array_equal(pasted[outside], photo[outside])
    inner = (cv2.erode(foot.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0) & ~face
    assert np.abs(pasted[inner].astype(np.float32) - photo[inner]).mean() > 5


def test_pastes_feather_scales_with_the_crop():
    """--feather counts pixels of a 128 crop: a 256 crop's soft edge is 16 of its pixels wide."""
    from facefill.align.unwarp import Face, paste_faces

    widths = {}
    for size in (128, 256):
        photo = np.zeros((size, size, 3), np.uint8)
        crop = np.full((size, size, 3), 200, np.uint8)
        out = paste_faces(photo, [Face(crop, np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.zeros((size, size), np.float32))],
                          feather=8.0)
        row = out[size // 2, :size // 2, 0]
        widths[size] = int((row < 199).sum())  # pixels of the ramp from the crop's edge
    assert widths[128] == 8 and widths[256] == 16, widths


@pytest.mark.parametrize("size", [256, 512])
def test_a_disc_face_seam_scales_at_every_size(size):
    """A disc face on a flat donor: the seam correction at S px is the 128 px one, S / 128 times as wide."""
    from facefill.donor.seam import face_distance, seam_correction

    def width(s):
        yy, xx = np.mgrid[:s, :s]
        m = torch.from_numpy(((yy - s / 2) ** 2 + (xx - s / 2) ** 2 < (0.3 * s) ** 2).astype(np.float32))[None, None]
        q, d = torch.full((1, 3, s, s), 0.8), torch.full((1, 3, s, s), 0.3)
        dist = face_distance(m)
        c = seam_correction(q, d, m, dist, 10, scale=s / 128).abs().amax(1, keepdim=True)
        return float(dist[c > 0.05 * c.max()].max())

    assert abs(width(size) / width(128) - size / 128) < 0.1 * size / 128


def test_the_shape_cost_is_counted_in_128_px_units():
    """The same landmarks at 256 px (twice the pixels) against a 256 bank cost what they cost at 128."""
    from pathlib import Path

    from facefill.donor.index import DonorIndex
    from facefill.donor.select import costs
    from facefill.donor.settings import DonorSettings

    rng = np.random.default_rng(0)
    lm = (rng.random((6, 68, 2)) * 100 + 14).astype(np.float32)

    def index(size, scale):
        n = 5
        return DonorIndex(Path("."), size, [f"d{i}.png" for i in range(n)], lm[1:] * scale, np.eye(n, 128, dtype=np.float32),
                          np.zeros((n, 6), np.float32), np.zeros((n, 2), np.float32), np.zeros(n, np.float32),
                          np.zeros((n, 192), np.float32), np.zeros((n, 256), np.float32))

    q = lambda scale: (np.full((1, 128), 0.5, np.float32), lm[:1] * scale, np.zeros((1, 6), np.float32))  # noqa: E731
    settings = DonorSettings(identity=0, pose=0, skin=0, padding=0, silhouette=0)
    np.testing.assert_allclose(costs(index(256, 2), *q(2), settings), costs(index(128, 1), *q(1), settings), rtol=1e-4)
