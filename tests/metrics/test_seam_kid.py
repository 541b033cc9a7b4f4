"""seam-kid: KID of patches on the face mask's border, unpaired, with the real floor
(facefill.metrics.seam, evaluate's seam-kid)."""

import cv2
import numpy as np
import pytest
import torch

from facefill.data.io import read_image, read_mask
from facefill.errors import FacefillError
from facefill.metrics.seam import border_patches, border_points, seam_kid, split_faces

POINTS = 8


def test_border_points_lie_on_the_border_evenly_from_the_top():
    m = np.zeros((128, 128), np.uint8)
    cv2.circle(m, (64, 70), 40, 1, -1)
    pts = border_points(m, 8)
    assert pts.shape == (8, 2)
    for y, x in pts:
        assert m[y, x] == 1 and m[y - 1:y + 2, x - 1:x + 2].min() == 0  # inside, next to the outside
    assert tuple(pts[0]) == (30, 64)  # straight above the centre
    angles = np.degrees(np.arctan2(pts[:, 0] - 70, pts[:, 1] - 64)) % 360
    steps = np.diff(np.concatenate([angles, angles[:1]])) % 360  # one way round, 45 degrees a step
    assert np.allclose(steps, 45, atol=3) or np.allclose(steps, 315, atol=3), steps
    np.testing.assert_array_equal(border_points(m, 8), pts)  # deterministic


def test_border_patches_are_centred_and_kept_inside():
    img = np.arange(64 * 64 * 3, dtype=np.int64).reshape(64, 64, 3)
    p = border_patches(img, np.array([[32, 32], [0, 0], [63, 63]]), 16)
    assert p.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(p[0], img[24:40, 24:40])
    np.testing.assert_array_equal(p[1], img[:16, :16])
    np.testing.assert_array_equal(p[2], img[48:, 48:])


def test_split_faces_disjoint_equal_and_seeded():
    a, b = split_faces(11, 3)
    assert len(a) == len(b) == 5 and not set(a) & set(b)
    np.testing.assert_array_equal(split_faces(11, 3)[0], a)
    assert not np.array_equal(split_faces(11, 4)[0], a)


def test_pairing_is_unpaired(monkeypatch):
    """No KID ever sees an output patch and a real patch of the same face; with outputs equal to
    the real photos the score is exactly the floor (a paired KID would be far below it)."""
    rng = np.random.default_rng(0)
    faces = np.repeat(np.arange(10), 4)
    real = torch.from_numpy(rng.normal(size=(40, 16)))
    calls = []
    from facefill.metrics import kid as kid_mod

    true_kid = kid_mod.kid

    def spy(x, y, *a, **k):
        calls.append((x, y))
        return true_kid(x, y, *a, **k)

    monkeypatch.setattr(kid_mod, "kid", spy)
    gen = real + 0.01 * torch.from_numpy(rng.normal(size=(40, 16)))  # each output close to its own real photo
    s = seam_kid(gen, real, faces, splits=3)
    row_face = {}
    for i, f in enumerate(faces):
        row_face[(tuple(gen[i].tolist()))] = f
        row_face[(tuple(real[i].tolist()))] = f
    for x, y in calls:
        fx = {row_face[tuple(r.tolist())] for r in x}
        fy = {row_face[tuple(r.tolist())] for r in y}
        assert not fx & fy and len(x) == len(y) == 20
    same = seam_kid(real, real, faces, splits=3)
    assert same["score"] == pytest.approx(same["floor"], abs=1e-12)
    paired = true_kid(real, real)[0]  # what pairing would give: the diagonal makes it far negative
    assert paired < same["floor"] - 0.05
    assert s["n"] == 20


def seam_line(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with a dark line 3 px wide painted along the mask's border (the dark line along a
    jaw that a bad composite shows)."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    out = image.copy()
    out[(cv2.dilate(m, k) - cv2.erode(m, k)).astype(bool)] = (20, 15, 10)
    return out


@pytest.fixture(scope="module")
def border_features(aligned_faces):
    """Inception features of the border patches of the aligned test faces (real, JPEG re-encoded,
    with a dark line at the seam), their face index."""
    from facefill.align.sidecar import read_sidecar
    from facefill.data.tensors import from_uint8
    from facefill.mask.region import face_mask
    from facefill.metrics.inception import load_inception

    inception = load_inception()
    names = sorted(p for p in aligned_faces.glob("*.png") if not p.name.endswith(".valid.png"))
    feats = {"real": [], "jpeg": [], "line": []}
    faces = []
    for i, p in enumerate(names):
        img = read_image(p)
        mask = face_mask(np.asarray(read_sidecar(p)["landmarks"]), img.shape[:2])
        pts = border_points(mask, POINTS)
        jpeg = cv2.imdecode(cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1], 1)[..., ::-1]
        for kind, im in (("real", img), ("jpeg", np.ascontiguousarray(jpeg)), ("line", seam_line(img, mask))):
            feats[kind].append(inception(from_uint8(list(border_patches(im, pts, 32)), signed=False)))
        faces += [i] * len(pts)
    return {k: torch.cat(v) for k, v in feats.items()}, np.array(faces)


def test_real_border_scores_the_floor_and_a_seam_line_clearly_worse(border_features):
    """The real photos re-encoded (JPEG 90) score about the floor; the same photos with a dark line
    painted along the seam score far above it."""
    feats, faces = border_features
    clean = seam_kid(feats["jpeg"], feats["real"], faces)
    bad = seam_kid(feats["line"], feats["real"], faces)
    assert clean["floor"] == bad["floor"]
    assert abs(clean["score"] - clean["floor"]) < 0.01, (clean, bad)
    assert bad["score"] > clean["score"] + 0.03 and bad["score"] > 3 * clean["floor"], (clean, bad)


def test_evaluate_seam_kid(masked, aligned_faces, tmp_path):
    """evaluate --metrics seam-kid: the masked photos (black context) score far above the floor; masks
    from --masks or beside the generated images; without either it fails before any work."""
    from facefill.pipeline.evaluate import evaluate_folders

    r = evaluate_folders(masked, aligned_faces, ("seam-kid",), masks_dir=masked, seam_points=4)
    s, f = r.summary["seam-kid"], r.summary["seam-kid-floor"]
    assert s["n"] == f["n"] == 2 * 4 and s["faces"] == len(r.rows) and s["points"] == 4 and s["patch"] == 32
    assert s["mean"] > f["mean"] + 0.03
    beside = evaluate_folders(masked, aligned_faces, ("seam-kid",), seam_points=4)  # the .mask.png files beside the outputs
    assert beside.summary["seam-kid"] == s
    assert "seam-kid" not in r.to_csv().splitlines()[0]
    bare = tmp_path / "bare"
    bare.mkdir()
    for p in masked.glob("*.png"):
        if not p.name.endswith(".mask.png"):
            (bare / p.name).write_bytes(p.read_bytes())
    with pytest.raises(FacefillError, match="seam-kid needs each face's mask"):
        evaluate_folders(bare, aligned_faces, ("seam-kid",))
    assert read_mask(masked / "obama.mask.png") is not None


def test_cli_seam_kid_without_masks_or_faces_is_one_line(random_folders, tmp_path):
    """Checked before any Inception work: 3 faces are too few; 4 without masks name the fix."""
    from typer.testing import CliRunner

    from facefill.cli.app import app

    g, r = random_folders(n=4, size=64)
    res = CliRunner().invoke(app, ["evaluate", g, r, "-m", "seam-kid"])
    assert res.exit_code == 1 and "--masks MASKED_DIR" in res.output and len(res.output.strip().splitlines()) == 1
    (tmp_path / "gen" / "3.png").unlink()
    (tmp_path / "real" / "3.png").unlink()
    res = CliRunner().invoke(app, ["evaluate", g, r, "-m", "seam-kid"])
    assert res.exit_code == 1 and "at least 4 images" in res.output
