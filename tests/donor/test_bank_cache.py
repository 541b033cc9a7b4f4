"""The donor index cache is never trusted (issue 33 items 8, 13): each damaged form is refused
with one phrase and rebuilt, names never leave the bank, and special files are never opened."""

import json
import os
import shutil
import signal

import numpy as np
import pytest

from facefill.donor.cache import MANIFEST, _digest, bank_cache, index_key, read_cache
from facefill.donor.index import bank_state, load_index


@pytest.fixture(scope="module")
def built(donor_bank, tmp_path_factory):
    """The shared bank's index, built once into a cache of its own: ``(cache, its folder)``."""
    cache = tmp_path_factory.mktemp("bank-cache")
    load_index(donor_bank, cache=cache)
    return cache, bank_cache(cache, donor_bank, 128)


@pytest.fixture
def damaged(built, donor_bank, tmp_path):
    """A copy of the built cache, and a function that rewrites its manifest and arrays (with the
    checksums made consistent again, so each check below is what catches its case)."""
    cache = tmp_path / "cache"
    folder = bank_cache(cache, donor_bank, 128)
    shutil.copytree(built[1], folder)

    def rewrite(manifest=None, arrays=None, fix_checksums=True):
        m = json.loads((folder / MANIFEST).read_text())
        gen = m["generation"]
        if arrays is not None:
            for k, f in arrays.items():
                a = np.load(folder / f"{k}.{gen}.npy")
                a = f(a)
                np.save(folder / f"{k}.{gen}.npy", a)
                if fix_checksums:
                    m["checksums"][k] = _digest(a)
        if manifest is not None:
            m = manifest(m)
        (folder / MANIFEST).write_text(json.dumps(m))

    return cache, folder, rewrite


def test_an_intact_cache_is_read_memory_mapped(built, donor_bank):
    cache, folder = built
    state = bank_state(donor_bank, cache=cache)
    assert state.fresh and state.describe() == "fresh" and not state.todo
    index = state.index()
    assert isinstance(index.descriptors, np.memmap) and len(index) == 24


def _names(f):
    return lambda m: {**m, "names": f(m["names"])}


CASES = {
    "a name outside the bank": (_names(lambda n: ["../x.png"] + n[1:]), None, "names"),
    "an absolute name": (_names(lambda n: ["/etc/x.png"] + n[1:]), None, "names"),
    "integer names": (_names(lambda n: list(range(len(n)))), None, "names"),
    "no names": (lambda m: {k: v for k, v in m.items() if k != "names"}, None, "names"),
    "meta as a list": (lambda m: [m], None, "JSON object"),
    "size 64": (lambda m: {**m, "size": 64}, None, "64 px"),
    "names cut to 3": (_names(lambda n: n[:3]), None, "count"),
    "NaN descriptors": (None, {"descriptors": lambda a: np.where(np.arange(len(a))[:, None] == 2, np.nan, a)}, "NaN"),
    "64-wide descriptors": (None, {"descriptors": lambda a: np.ascontiguousarray(a[:, :64])}, "descriptors"),
    "(N, 5, 2) landmarks": (None, {"landmarks": lambda a: np.ascontiguousarray(a[:, :5])}, "landmarks"),
    "a float64 array": (None, {"skin": lambda a: a.astype(np.float64)}, "skin"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_damaged_form_is_refused_with_a_reason(damaged, donor_bank, case):
    cache, folder, rewrite = damaged
    manifest, arrays, why = CASES[case]
    rewrite(manifest, arrays)
    cached, problem = read_cache(folder, 128)
    assert cached is None and why in problem and "\n" not in problem
    state = bank_state(donor_bank, cache=cache)
    assert state.cached is None and not state.fresh and "not usable" in state.describe()


def test_swapped_rows_fail_the_checksum(damaged):
    _, folder, rewrite = damaged
    rewrite(arrays={"descriptors": lambda a: a[::-1].copy()}, fix_checksums=False)
    cached, problem = read_cache(folder, 128)
    assert cached is None and "checksum" in problem


def test_names_and_key_that_disagree_are_refused(damaged):
    _, folder, rewrite = damaged
    rewrite(_names(lambda n: [n[1], n[0], *n[2:]]))  # names swapped: each donor would get another's rows
    cached, problem = read_cache(folder, 128)
    assert cached is None and "key" in problem


def test_a_damaged_cache_is_rebuilt_with_one_line_not_a_traceback(damaged, donor_bank):
    cache, folder, rewrite = damaged
    rewrite(_names(lambda n: ["../outside.png"] + n[1:]))
    index = load_index(donor_bank, cache=cache)
    assert len(index) == 24 and all(".." not in n for n in index.names)
    assert "was not used (its donor names are missing or not paths inside the bank); it was rebuilt" in index.summary()
    assert bank_state(donor_bank, cache=cache).fresh  # and cached again


def test_a_consistent_cache_cut_to_3_donors_is_completed_not_blamed_on_the_bank(damaged, donor_bank):
    cache, folder, rewrite = damaged
    m = json.loads((folder / MANIFEST).read_text())
    gen, keep = m["generation"], m["names"][:3]
    cut = {}
    for p in folder.glob(f"*.{gen}.npy"):
        k = p.name.split(".")[0]
        cut[k] = np.load(p)[:3]
        np.save(p, cut[k])
        m["checksums"][k] = _digest(cut[k])
    m.update(names=keep, count=3, key=index_key(keep, cut["digests"], 128))
    (folder / MANIFEST).write_text(json.dumps(m))
    state = bank_state(donor_bank, cache=cache)
    assert state.cached is not None and len(state.added) == 21 and len(state.todo) == 21
    index = load_index(donor_bank, cache=cache)
    assert len(index) == 24 and "21 files read, 3 donors from the cache" in index.summary()


def test_a_fifo_in_the_bank_is_never_opened(bank_copy, tmp_path):
    os.mkfifo(bank_copy / "x.json")
    (bank_copy / "x.png").write_bytes((bank_copy / "biden_plain.png").read_bytes())
    os.mkfifo(bank_copy / "y.valid.png")
    (bank_copy / "y.png").write_bytes((bank_copy / "biden_plain.png").read_bytes())
    (bank_copy / "y.json").write_bytes((bank_copy / "biden_plain.json").read_bytes())

    def hang(*_):
        raise TimeoutError("the index build hung on a FIFO")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    try:
        index = load_index(bank_copy, cache=tmp_path / "cache")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    skipped = dict(index.skipped)
    assert len(index) == 24 and skipped == {"x.png": "x.json is not a regular file",
                                            "y.png": "y.valid.png is not a regular file"}


def test_an_unwritable_cache_says_so_instead_of_cached(bank_copy, tmp_path, monkeypatch):
    home_file = tmp_path / "home"
    home_file.write_text("a file, not a folder")
    monkeypatch.setenv("FACEFILL_CACHE", str(home_file / "cache"))
    index = load_index(bank_copy)
    line = index.summary()
    assert "and cached" not in line and "not cached" in line and "set FACEFILL_CACHE to a writable folder" in line
    assert str(home_file) in line and "\n" not in line


def test_the_fast_listing_is_list_images_with_file_stats(bank_copy, tmp_path):
    from facefill.data.io import list_images
    from facefill.donor.index import MISSING, SPECIAL, file_stats, scan_bank

    sub = bank_copy / "sub"
    sub.mkdir()
    for p in sorted(bank_copy.glob("astronaut*"))[:4]:
        (sub / p.name).symlink_to(p)
    (bank_copy / "linked").symlink_to(sub)  # a linked folder: listed once
    (bank_copy / ".hidden.png").write_bytes(b"x")
    (bank_copy / "lonely.valid.png").write_bytes(b"x")  # a companion without its image is listed
    os.mkfifo(bank_copy / "pipe.json")
    (bank_copy / "pipe.png").write_bytes(b"x")
    names, stats = scan_bank(bank_copy)
    files = list_images(bank_copy)
    assert names == [f.relative_to(bank_copy).as_posix() for f in files]
    np.testing.assert_array_equal(stats, file_stats(files))
    row = stats[names.index("pipe.png")]
    assert row[2] == SPECIAL and row[4] == MISSING


