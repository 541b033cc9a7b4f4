"""Output safety, shared by every command (the rules are in docs/cli-conventions.md).

* :func:`check_output_dir`: an output folder that is, or is inside, an input folder, or that
  cannot be created and written, is refused before any work.
* :func:`plan_outputs`: input -> output path, sub-folders mirrored. Inputs whose names would
  collide (``a.jpg`` and ``a.png`` both -> ``a.png``) keep their extension in the output name
  (``a.jpg.png``, ``a.png.png``), so no input is dropped.
* :class:`RunManifest`: ``OUT/.facefill-run.json`` records the settings that made the outputs
  there. Skipping existing outputs (resume) is only allowed when the settings are the same; else
  the run is refused and points to ``--overwrite``.
* :func:`write_failures`: ``OUT/failures.tsv`` lists every input that failed and why.
* :func:`check_report_file`: ``--json``/``--csv``/``--grid`` targets: ``-`` is stdout, an input
  file is refused, and replacing an existing file is reported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from facefill.errors import OutputError

MANIFEST = ".facefill-run.json"
FAILURES = "failures.tsv"


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_output_dir(out_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike], what: str = "output folder") -> Path:
    """Refuse ``out_dir`` when it is, or is inside, an input folder (or is an input file), then
    create it and check that a file can be written there. Returns the resolved folder."""
    out = Path(out_dir).resolve()
    for src in inputs:
        if src is None:
            continue
        s = Path(src).resolve()
        if s.is_file() and out == s:
            raise OutputError(f"{what} {out_dir} is an input file; choose another output folder")
        if s.is_dir() and _inside(out, s):
            raise OutputError(f"{what} {out_dir} is {'the' if out == s else 'inside the'} input folder {src}; "
                              "outputs there would overwrite or mix with the inputs: choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} {out_dir} exists and is not a folder")
    probe = out / f".facefill-write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write into {what} {out_dir} ({exc.strerror or exc}); "
                          "check its permissions or choose another folder") from None
    return out


def plan_outputs(inputs: list[Path], src_root: Path, dst_root: Path, suffix: str = ".png") -> dict[Path, Path]:
    """``{input: output}`` with sub-folders mirrored and the suffix replaced; inputs that would
    share an output keep their own extension in the name (``a.jpg`` -> ``a.jpg.png``)."""
    src_root = Path(src_root)

    def rel(p: Path) -> Path:
        return Path(p.name) if src_root.is_file() else p.relative_to(src_root)

    plain = {p: (dst_root / rel(p)).with_suffix(suffix) for p in inputs}
    counts: dict[Path, int] = {}
    for out in plain.values():
        counts[out] = counts.get(out, 0) + 1
    plan = {}
    for p, out in plain.items():
        plan[p] = out if counts[out] == 1 else dst_root / rel(p).parent / (p.name + suffix)
    if len(set(plan.values())) != len(plan):  # a.jpg.png existing beside a.jpg and a.png: give up
        dup = sorted({str(o) for o in plan.values() if list(plan.values()).count(o) > 1})
        raise OutputError(f"inputs map to the same output name: {', '.join(dup[:10])}; rename them")
    return plan


class RunManifest:
    """The settings of the run that wrote an output folder (``OUT/.facefill-run.json``)."""

    def __init__(self, out_dir: Path, command: str, settings: dict) -> None:
        self.path = Path(out_dir) / MANIFEST
        self.command = command
        self.settings = json.loads(json.dumps(settings, default=str))

    def previous(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def check_resume(self, has_outputs: bool, overwrite: bool) -> None:
        """Refuse to skip existing outputs that other settings made (or an unknown run)."""
        if overwrite or not has_outputs:
            return
        prev = self.previous()
        if prev is None:
            raise OutputError(f"{self.path.parent} already holds outputs but no record of the settings that made "
                              f"them ({MANIFEST}); pass --overwrite to redo them, or write into a new folder")
        if prev.get("command") != self.command or prev.get("settings") != self.settings:
            old, new = prev.get("settings", {}), self.settings
            diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            what = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4]) or prev.get("command")
            raise OutputError(f"{self.path.parent} holds outputs of '{prev.get('command')}' made with other settings "
                              f"({what}); pass --overwrite to redo them, or write into a new folder")

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"command": self.command, "settings": self.settings}, indent=1))
        tmp.replace(self.path)


def write_failures(out_dir: Path, failed: list[tuple[Path, str]]) -> Path | None:
    """Write ``OUT/failures.tsv`` (input path, reason) or remove a stale one when nothing failed."""
    path = Path(out_dir) / FAILURES
    if not failed:
        path.unlink(missing_ok=True)
        return None
    lines = ["input\treason"] + [f"{p}\t{' '.join(str(r).split())}" for p, r in failed]
    path.write_text("\n".join(lines) + "\n")
    return path


def check_report_file(path: str | os.PathLike | None, inputs: Iterable[str | os.PathLike], option: str) -> str | None:
    """Validate a report target. Returns None (no target), ``"-"`` (stdout), ``"new"`` or
    ``"replace"`` (the file exists and will be replaced). An input file or folder is refused."""
    if path is None:
        return None
    if str(path) == "-":
        return "-"
    p = Path(path).resolve()
    for src in inputs:
        if src is None:
            continue
        s = Path(src).resolve()
        if p == s or (s.is_dir() and _inside(p, s)):
            raise OutputError(f"{option} {path} would write into the input {src}; choose a path outside it")
    if p.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    return "replace" if p.exists() else "new"
