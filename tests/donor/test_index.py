import os
from pathlib import Path

import numpy as np
import pytest

from facefill.donor.cache import MANIFEST, bank_cache
from facefill.donor.index import MIN_DONORS, build_index, cache_dir, load_index, pose_from_landmarks
from facefill.errors import FacefillError


class CountingEmbedder:
    """The real face descriptor network, counting the faces it describes."""

    def __init__(self):
        from facefill.models.embedders import FaceEmbedder

        self.net, self.faces = FaceEmbedder(), 0

    def __call__(self, x, landmarks):
        self.faces += len(x)
        return self.net(x, landmarks)


def snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


def test_index_is_built_once_cached_outside_the_bank_and_never_written_into_it(bank_copy, cache):
    before = snapshot(bank_copy)
    emb = CountingEmbedder()
    first = load_index(bank_copy, embedder=emb)
    assert len(first) == 24 and not first.cached and emb.faces == 24
    assert [p.parent for p in cache.iterdir()] == [cache] and cache == cache_dir()
    assert "index built and cached" in first.summary()
    second = load_index(bank_copy, embedder=emb)
    assert second.cached and emb.faces == 24  # nothing described again
    assert second.names == first.names
    for k, v in first.arrays().items():
        np.testing.assert_array_equal(second.arrays()[k], v, err_msg=k)
    assert snapshot(bank_copy) == before


def test_only_changed_files_are_described_again_and_the_key_follows_their_content(bank_copy, cache):
    emb = CountingEmbedder()
    first = load_index(bank_copy, embedder=emb)
    os.utime(bank_copy / "biden_plain.png", (1, 1))  # touched, not changed
    second = load_index(bank_copy, embedder=emb)
    assert second.key == first.key and not second.cached and emb.faces == 25  # only that donor described again
    assert "1 files read, 23 donors from the cache" in second.summary()
    side = bank_copy / "biden_plain.json"
    side.write_text(side.read_text().replace("[", "[ ", 1))  # same landmarks, other bytes
    third = load_index(bank_copy, embedder=emb)
    assert third.key != first.key and emb.faces == 26
    np.testing.assert_allclose(third.descriptors, first.descriptors, atol=1e-4)
    assert load_index(bank_copy, embedder=emb).cached and emb.faces == 26


def test_descriptors_separate_people_and_keep_copies_close(donor_bank, cache):
    index = load_index(donor_bank)
    d = {n: index.descriptors[i] for i, n in enumerate(index.names)}
    same_photo = np.linalg.norm(d["biden_plain.png"] - d["biden_warm.png"])
    other_person = np.linalg.norm(d["biden_plain.png"] - d["astronaut_plain.png"])
    assert same_photo < 0.1 < 0.5 < other_person


def test_unusable_files_are_skipped_and_named(bank_copy, cache):
    (bank_copy / "broken.png").write_bytes(b"not a png")
    (bank_copy / "broken.json").write_text((bank_copy / "biden_plain.json").read_text())
    (bank_copy / "nosidecar.png").write_bytes((bank_copy / "biden_plain.png").read_bytes())
    index = load_index(bank_copy)
    assert len(index) == 24
    assert sorted(n for n, _ in index.skipped) == ["broken.png", "nosidecar.png"]
    assert "sidecar" in dict(index.skipped)["nosidecar.png"]


def test_a_small_bank_is_refused_with_one_line(bank_copy, cache):
    images = sorted(p for p in bank_copy.glob("*.png") if not p.name.endswith(".valid.png"))
    for p in images[MIN_DONORS - 1:]:
        p.unlink()
    with pytest.raises(FacefillError) as e:
        load_index(bank_copy)
    msg = str(e.value)
    assert "\n" not in msg and f"{MIN_DONORS - 1} usable donors" in msg and "facefill align" in msg
    assert not cache.exists() or not any(cache.iterdir())  # nothing cached for a refused bank


def test_a_bank_of_photos_align_did_not_make_is_refused(tmp_path, data_dir, cache):
    bank = tmp_path / "photos"
    bank.mkdir()
    for p in (data_dir / "faces").glob("*.jpg"):
        (bank / p.name).write_bytes(p.read_bytes())
    with pytest.raises(FacefillError, match="0 usable donors .*no alignment sidecar"):
        load_index(bank)


def test_missing_bank_and_cache_inside_the_bank_are_refused(bank_copy, tmp_path):
    with pytest.raises(FacefillError, match="not a folder"):
        load_index(tmp_path / "nope", cache=tmp_path / "c")
    with pytest.raises(FacefillError, match="inside the donor bank"):
        load_index(bank_copy, cache=bank_copy / ".cache")
    assert not (bank_copy / ".cache").exists()


def test_a_damaged_cache_file_is_rebuilt(bank_copy, cache):
    first = load_index(bank_copy)
    (bank_cache(cache, bank_copy, 128) / MANIFEST).write_bytes(b"garbage")
    again = load_index(bank_copy)
    assert not again.cached and len(again) == len(first) and "was not used" in again.summary()


def test_pose_proxies():
    lm = np.zeros((68, 2))
    lm[0], lm[16], lm[30], lm[8] = (20, 60), (100, 60), (60, 75), (60, 110)
    lm[36:48] = (60, 55)
    yaw, pitch = pose_from_landmarks(lm)
    assert yaw == pytest.approx(0) and pitch == pytest.approx(20 / 55)
    lm[30, 0] = 80  # nose turned towards the image's right
    assert pose_from_landmarks(lm)[0] == pytest.approx(0.25)


def test_build_index_reports_progress(donor_bank):
    seen = []
    build_index(donor_bank, progress=lambda d, t, n: seen.append((d, t)))
    assert seen[-1] == (24, 24)
