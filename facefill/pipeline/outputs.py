"""Output safety, shared by every command (the rules are in docs/cli-conventions.md).

* :func:`check_write_plan`: every path a command will write (output folders, ``--grid``,
  ``--json``, ``--csv``, ``--real-stats``, run folders, extra scale folders), checked against
  every path it reads and against each other, before any work: a write inside a read, a read
  inside a write (``--overwrite`` would replace it), and two nested writes are refused,
  ``--overwrite`` or not. Output folders are then created and probed for writing.
* :func:`plan_outputs`: input -> output path, sub-folders mirrored. Inputs whose names would
  collide (``a.jpg`` and ``a.png`` both -> ``a.png``; ``x.jpg`` -> ``x.png`` beside a folder
  ``x.png/``) keep their extension in the output name (``a.jpg.png``), so no input is dropped.
* :func:`check_input_name`: inputs named like the files written beside an output (``q.valid.jpg``,
  ``p.mask.jpg``, ``r.fg.png``) fail loudly instead of overwriting or hiding behind them.
* :func:`open_run`: the run on an output folder: a lock (``OUT/.facefill-lock``, with the PID),
  the run record ``OUT/.facefill-run.json`` (the settings that made the outputs there; resume
  only with the same settings) and ``OUT/.facefill-run.files`` (every file written, by input,
  with the input's identity: its content digest), from which ``--overwrite`` removes what earlier
  runs wrote for this run's inputs (never another input's) before any new output. The input is
  part of an output's identity, not of the folder's: photos added one call at a time
  (``ls photos/* | xargs -I{} facefill hallucinate {} out/``) each keep their outputs, and an
  input whose content changed since its outputs were made is refused (or redone with
  ``--overwrite``), never resumed.
* :func:`write_failures`: ``OUT/failures.tsv`` lists every input that failed and why, merged
  over runs and shards (each run replaces the rows of its own inputs only).
"""

from __future__ import annotations

import fcntl
import contextvars
import hashlib
import json
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from facefill.data.io import COMPANION_SUFFIXES, write_target
from facefill.errors import ImageError, OutputError

MANIFEST = ".facefill-run.json"
FILES = ".facefill-run.files"
LOCK = ".facefill-lock"
FAILURES = "failures.tsv"
#: The distributed task (its Dask key) this run is, if any (:mod:`facefill.pipeline.distributed`):
#: a lock left by an earlier try of the same task is that try's, whose worker died (Dask runs one
#: try of a task at a time), so it is taken over even when it comes from another machine.
TASK: contextvars.ContextVar[str | None] = contextvars.ContextVar("facefill_task", default=None)
#: name endings of the files written beside an output (``x.mask.png`` beside ``x.png``); an input
#: named so would collide with (or hide behind) another input's companion
RESERVED = tuple(s[: -len(".png")] for s in COMPANION_SUFFIXES)


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """One line for a run-record or report file that cannot be written (disk full, a folder in
    its place, permissions): what and why, and what to do."""
    if Path(path).is_dir():
        return OutputError(f"cannot write {path}: a folder is in its place; move it away and run again")
    return OutputError(f"cannot write {path} ({exc.strerror or exc}); free space or fix the permissions "
                       "and run again (the outputs written so far are kept)")


def _write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file in the same folder, which is removed
    again when the write fails (through a link, into a device: :func:`write_target`); an
    OSError becomes a one-line :class:`OutputError`."""
    given = path
    path, atomic = write_target(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        if not atomic:
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(text)
            return
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
        tmp.replace(path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise _cannot_write(given, exc) from None


def tsv_field(text: str) -> str:
    r"""``text`` as one TSV field on one line: backslash, tab, newline and carriage return are
    written ``\\``, ``\t``, ``\n``, ``\r`` (the usual TSV escapes), so a file name holding them
    cannot split a row or a line."""
    return (str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Write:
    """One path a command writes: a folder of outputs, or one file (``folder=False``; ``-`` is
    stdout). ``what`` names it in messages: ``"output folder"``, ``"--grid"``."""

    what: str
    path: str | os.PathLike | None
    folder: bool = True


def check_write_plan(writes: Iterable[Write], reads: Mapping[str, str | os.PathLike | None]) -> dict[str, str]:
    """Check every path a command writes against every path it reads (``{what: path}``; None
    entries are ignored) before any work. Refused with a one-line OutputError naming both paths:
    a write that is, or is inside, a read folder (or is a read file); a read inside a written
    folder (``--overwrite`` would replace it, and a later run would read outputs as inputs); two
    writes that are the same path or nested. Then output folders are created and probed.

    Returns ``{what: "new" | "replace" | "-"}`` for each file target (``-`` = stdout)."""
    targets = [(w, Path(w.path).resolve()) for w in writes if w.path is not None and str(w.path) != "-"]
    sources = [(what, Path(p), Path(p).resolve()) for what, p in reads.items() if p is not None]
    for w, out in targets:
        for what, given, src in sources:
            if _inside(out, src):  # the same path, or inside it
                where = "is" if out == src else "is inside"
                raise OutputError(f"{w.what} {w.path} {where} the {what} {given}; outputs there would overwrite or mix "
                                  f"with what this command reads: choose a path outside it")
            if w.folder and _inside(src, out):
                raise OutputError(f"the {what} {given} is inside the {w.what} {w.path}; writing there (with --overwrite "
                                  f"or not) could replace it and later runs would read outputs as inputs: "
                                  f"choose a {w.what} that does not contain it")
    for i, (a, pa) in enumerate(targets):
        for b, pb in targets[i + 1:]:
            if pa == pb or (a.folder and _inside(pb, pa)) or (b.folder and _inside(pa, pb)):
                inner, outer = (a, b) if b.folder and _inside(pa, pb) else (b, a)
                raise OutputError(f"{inner.what} {inner.path} is {'the same path as' if pa == pb else 'inside'} the "
                                  f"{outer.what} {outer.path}; give each output its own place")
    states: dict[str, str] = {w.what: "-" for w in writes if w.path is not None and str(w.path) == "-"}
    for w, out in targets:
        if not w.folder:
            if out.is_dir():
                raise OutputError(f"{w.what} {w.path} is a folder; give a file name")
            states[w.what] = "replace" if out.exists() else "new"
            target, atomic = write_target(w.path)
            if atomic:
                _probe(w, target.parent, f"cannot write {w.what} {w.path}", "choose a writable path")
            elif not os.access(target, os.W_OK):
                raise OutputError(f"cannot write {w.what} {w.path} (permission denied); choose a writable path")
            continue
        if out.exists() and not out.is_dir():
            raise OutputError(f"{w.what} {w.path} exists and is not a folder")
        _probe(w, out, f"cannot write into {w.what} {w.path}", "check its permissions or choose another folder")
    return states


def _probe(w: Write, folder: Path, what: str, fix: str) -> None:
    """Create ``folder`` (with its parents) and write and remove a file there, so an output that
    cannot be written is refused before any work, not after it (one line: what, why, fix)."""
    probe = folder / f".facefill-write-test-{os.getpid()}"
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, f"{folder} is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{what} ({exc.strerror or exc}); {fix}") from None


def plan_outputs(inputs: list[Path], src_root: Path, dst_root: Path, suffix: str = ".png") -> dict[Path, Path]:
    """``{input: output}`` with sub-folders mirrored and the suffix replaced; inputs that would
    share an output, or whose output would be a folder another output needs (``x.jpg`` beside
    ``x.png/``), keep their own extension in the name (``a.jpg`` -> ``a.jpg.png``)."""
    src_root = Path(src_root)

    def rel(p: Path) -> Path:
        return Path(p.name) if src_root.is_file() else p.relative_to(src_root)

    plain = {p: (dst_root / rel(p)).with_suffix(suffix) for p in inputs}
    counts: dict[Path, int] = {}
    for out in plain.values():
        counts[out] = counts.get(out, 0) + 1
    folders = {d for p, out in plain.items() if rel(p).parent != Path(".") for d in out.parents}
    plan = {}
    for p, out in plain.items():
        plan[p] = out if counts[out] == 1 and out not in folders else dst_root / rel(p).parent / (p.name + suffix)
    if len(set(plan.values())) != len(plan):  # a.jpg.png existing beside a.jpg and a.png: give up
        dup = sorted({str(o) for o in plan.values() if list(plan.values()).count(o) > 1})
        raise OutputError(f"inputs map to the same output name: {', '.join(dup[:10])}; rename them")
    return plan


def check_input_name(path: Path) -> None:
    """ImageError (that input fails, loudly) when ``path`` is named like a companion file:
    ``q.valid.jpg`` would be written as ``q.valid.png``, the validity mask of ``q.png``, and a
    later command would take it for one and skip it."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for marker in RESERVED:
        if stem.lower().endswith(marker):
            base = stem[: -len(marker)]
            raise ImageError(f"{path}: names ending in '{marker}' are kept for the files facefill writes beside an "
                             f"image ({base}{marker}.png beside {base}.png), so this photo would overwrite or hide "
                             f"behind one; rename it (e.g. {base}_{marker[1:]}{path.suffix})")


def _record_line(rel: str, key: str, identity: str) -> str:
    return f"{rel}\t{key}\t{identity}\n" if identity else f"{rel}\t{key}\n"


def _json_kind(value: object) -> str:
    """How JSON names the type of a parsed ``value`` (for messages: "a JSON list, not a table")."""
    return {"str": "string", "int": "number", "float": "number", "bool": "boolean", "NoneType": "null"}.get(
        type(value).__name__, type(value).__name__)


class RunManifest:
    """The record of the runs that wrote an output folder: ``OUT/.facefill-run.json`` (command
    and settings) and ``OUT/.facefill-run.files`` (``output<TAB>input`` lines, relative paths,
    appended as outputs are written, so an interrupted run's files are listed too)."""

    def __init__(self, out_dir: Path, command: str, settings: dict, source: str | None = None) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / MANIFEST
        self.files_path = self.dir / FILES
        self.command = command
        self.settings = json.loads(json.dumps(settings, default=str))
        self.source = source  # the input folder (or file) of the latest run: said, never compared
        self._log = None
        self._lock = threading.Lock()  # record() is called from the writer threads

    def previous(self) -> dict | None:
        """The earlier run's ``{"command": str, "settings": dict}``, or None when there is no
        record. A record that is not one (not UTF-8, not JSON, a JSON list: damaged, or not
        facefill's) is a one-line OutputError: it cannot say what made the outputs here."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if self.path.is_dir():
                raise OutputError(f"{self.path} is a folder, not facefill's run record; move it away, or write "
                                  f"into a new folder") from None
            raise OutputError(f"cannot read {self.path} ({exc.strerror or exc}); fix its permissions") from None
        try:
            prev = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            prev, why = None, "not UTF-8"
        except ValueError:
            prev, why = None, "not JSON"
        else:
            why = f"a JSON {_json_kind(prev)}, not a table"
        if isinstance(prev, dict):
            if isinstance(prev.get("command"), str) and isinstance(prev.get("settings"), dict):
                return prev
            why = "no command or settings in it"
        raise OutputError(f"{self.path} is damaged ({why}), so which settings made the outputs in {self.dir} is "
                          f"unknown; pass --overwrite to redo them, or write into a new folder")

    def _lines(self) -> list[tuple[str, str, str]]:
        """``(output, input key, input identity)`` per line of the files record (identity ``""``
        in records written before facefill kept it)."""
        try:  # names are bytes on disk: undecodable ones come back as they were (surrogateescape)
            lines = self.files_path.read_bytes().decode("utf-8", "surrogateescape").splitlines()
        except OSError:
            return []
        rows = []
        for line in lines:
            rel, _, key = line.partition("\t")
            key, tab, ident = key.rpartition("\t")
            if not tab:
                key, ident = ident, ""
            rows.append((rel, key, ident))
        return rows

    def previous_files(self) -> list[tuple[Path, str]]:
        """``(output, input key)`` for every file an earlier run recorded, still on disk and
        inside the folder."""
        root, out, seen = self.dir.resolve(), [], set()
        for rel, key, _ in self._lines():
            p = self.dir / rel
            # is_file first: it says False for a damaged line holding a NUL byte, which resolve() raises on
            if rel and rel not in seen and p.is_file() and _inside(p.resolve(), root):
                seen.add(rel)
                out.append((p, key))
        return out

    def changed_inputs(self, sources: Mapping[str, Path]) -> list[str]:
        """The keys of ``sources`` (``{input key: input path}``) whose recorded outputs, still on
        disk, were made from another file's content than the one there now."""
        on_disk = {str(p.relative_to(self.dir)) for p, _ in self.previous_files()}
        recorded: dict[str, str] = {}
        for rel, key, ident in self._lines():
            if ident and key in sources and rel in on_disk:
                recorded[key] = ident  # the newest line wins
        return sorted(k for k, ident in recorded.items() if not same_input(ident, sources[k]))

    def check_resume(self, has_outputs: bool, overwrite: bool) -> None:
        """Refuse to skip existing outputs that other settings made (or an unknown run)."""
        if overwrite or not has_outputs:
            return
        prev = self.previous()
        if prev is None:
            raise OutputError(f"{self.dir} already holds files at this run's output names but no record that "
                              f"facefill wrote them ({MANIFEST}); they may be yours: move them away, or write into "
                              f"a new folder")
        old, new = dict(prev.get("settings") or {}), self.settings
        old.pop("input", None)  # records before 2026-12 named the input folder; inputs are now told by content
        if prev.get("command") != self.command or old != new:
            diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            what = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4]) or prev.get("command")
            raise OutputError(f"{self.dir} holds outputs of '{prev.get('command')}' made with other settings "
                              f"({what}); pass --overwrite to redo them, or write into a new folder")

    def foreign(self, paths: Iterable[Path]) -> list[Path]:
        """Those of ``paths`` that exist but that no earlier run recorded writing: a user's files,
        which ``--overwrite`` must never replace."""
        recorded = {p.resolve() for p, _ in self.previous_files()}
        return [p for p in paths if Path(p).is_file() and Path(p).resolve() not in recorded]

    def remove_previous(self, keys: set[str] | None = None) -> int:
        """``--overwrite``: delete the files earlier runs recorded (only those of the inputs in
        ``keys`` when given: a shard, or a run over some of the folder's inputs, leaves the other
        inputs' files), never any other file; the record keeps the other inputs' lines.
        Returns how many were removed."""
        gone = 0
        for p, key in self.previous_files():
            if keys is None or key in keys:
                p.unlink(missing_ok=True)
                gone += 1
                parent = p.parent
                while parent != self.dir and _inside(parent, self.dir):
                    try:
                        parent.rmdir()  # mirrored sub-folders left empty
                    except OSError:
                        break
                    parent = parent.parent
        with _failures_lock(self.dir):  # other shards append meanwhile: none of their lines is lost
            if keys is None:
                self.files_path.unlink(missing_ok=True)
            elif self.files_path.is_file():
                kept = [(rel, key, ident) for rel, key, ident in self._lines() if key not in keys]
                _write_atomic(self.files_path, "".join(_record_line(*row) for row in kept))
        return gone

    def write(self) -> None:
        record = {"command": self.command, "settings": self.settings}
        if self.source is not None:
            record["input"] = self.source
        _write_atomic(self.path, json.dumps(record, indent=1))

    def record(self, key: str, files: Iterable[Path], identity: str = "") -> None:
        """Append ``files`` (written, or about to be written, for the input ``key`` whose
        :func:`input_identity` is ``identity``) to the record of written files. The runner calls
        it before an input's files are written and again after, so a run killed in between
        leaves no file that no record lists."""
        lines = []
        for f in files:
            try:
                lines.append(_record_line(Path(f).relative_to(self.dir).as_posix(), key, identity))
            except ValueError:  # written into another folder (--all-scales): not this folder's record
                pass
        with self._lock, _failures_lock(self.dir):  # the folder's bookkeeping lock: see remove_previous
            try:
                if self._log is not None and not _same_file(self._log, self.files_path):
                    self.close()  # another shard's --overwrite rewrote the record: append to the new one
                if self._log is None:
                    self._log = open(self.files_path, "a", encoding="utf-8", errors="surrogateescape")
                self._log.write("".join(lines))
                self._log.flush()
            except OSError as exc:
                raise _cannot_write(self.files_path, exc) from None

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _same_file(fh, path: Path) -> bool:
    """``fh`` is still the file at ``path`` (not replaced by a rename, nor removed)."""
    try:
        return os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
    except OSError:
        return False


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux), to tell a reused PID apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's run: nothing here can tell, so it counts as live
    pid = int(holder.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = holder.get("started")
    return started is None or _start_time(pid) in (None, started)


class OutputLock:
    """``OUT/.facefill-lock`` (JSON with the PID, host and command) for a run's duration. A lock
    whose process is gone is stale and taken over; a live one is refused. Shards ``i/n`` of one
    sharded run (same settings) each hold their own ``.facefill-lock.<i>of<n>`` side by side."""

    def __init__(self, out_dir: Path, command: str, settings: dict, shard: tuple[int, int] = (0, 1)) -> None:
        self.dir = Path(out_dir)
        self.shard = shard
        self.path = self.dir / (LOCK if shard[1] == 1 else f"{LOCK}.{shard[0]}of{shard[1]}")
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
                     "command": command, "shard": list(shard), "since": datetime.now().isoformat(timespec="seconds"),
                     "settings": json.dumps(settings, sort_keys=True, default=str)}
        if TASK.get() is not None:
            self.info["task"] = TASK.get()

    def _refuse(self, holder: dict, path: Path) -> OutputError:
        host = "" if holder.get("host") == socket.gethostname() else f" on {holder.get('host')}"
        since = f", since {holder['since']}" if isinstance(holder.get("since"), str) else ""
        return OutputError(f"{self.dir} is in use by another '{holder.get('command', 'facefill')}' run (pid "
                           f"{holder.get('pid')}{host}{since}); wait for it to finish or write into another folder "
                           f"(if no such run is going on, delete {path})")

    @staticmethod
    def _parse(path: Path) -> tuple[dict | None, str | None]:
        """``(holder, None)`` for a lock facefill wrote; ``(None, None)`` when it is gone, empty or
        not whole JSON (being written right now, or a crash cut it short); ``(None, why)`` when it
        is something else: a folder, a JSON list, a PID that no process can have."""
        try:
            holder = json.loads(path.read_bytes().decode("utf-8"))
        except IsADirectoryError:
            return None, "a folder"
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            return None, None
        if not isinstance(holder, dict):
            return None, f"a JSON {_json_kind(holder)}, not a table"
        pid, shard = holder.get("pid"), holder.get("shard", [0, 1])
        if type(pid) is not int or not 0 < pid < 2 ** 31:
            return None, f"its pid {str(pid)[:24]} is no process ID"
        if not isinstance(holder.get("host"), str):
            return None, "no host in it"
        if not (isinstance(shard, list) and len(shard) == 2 and all(type(v) is int for v in shard)):
            return None, "its shard is not [i, n]"
        return holder, None

    @staticmethod
    def _read(path: Path) -> dict | None:
        return OutputLock._parse(path)[0]

    def _conflicts(self, holder: dict) -> bool:
        """Another live lock in the folder blocks this run, unless both are shards of one run."""
        n, other = self.shard[1], holder.get("shard", [0, 1])
        return not (n > 1 and other[1] == n and holder.get("settings") == self.info["settings"])

    def _take_over(self) -> None:
        """The lock file exists: refuse when it is live (or being written right now, or not a lock
        facefill can read: one line naming it), else remove it as stale."""
        holder, damaged = self._parse(self.path)
        if damaged:
            raise OutputError(f"{self.path} is not a lock facefill wrote ({damaged}); if no facefill run is writing "
                              f"into {self.dir}, delete it and run again")
        if holder is None:  # being written right now, or a crash left it empty
            try:
                young = datetime.now().timestamp() - self.path.stat().st_mtime < 10
            except OSError:
                return
            if young:
                raise OutputError(f"another run is starting in {self.dir} right now ({self.path} is being written); "
                                  f"wait for it to finish or write into another folder (if no such run is going on, "
                                  f"delete {self.path})")
        elif _alive(holder) and not (holder.get("task") is not None and holder.get("task") == self.info.get("task")):
            raise self._refuse(holder, self.path)  # a dead try of this very task is not a live run
        self._break(holder)

    def acquire(self) -> None:
        data = json.dumps(self.info).encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over()
                continue
            except OSError as exc:
                raise OutputError(f"cannot lock {self.dir}: cannot create {self.path} ({exc.strerror or exc}); "
                                  "check that the folder exists and is writable") from None
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            break
        else:
            raise OutputError(f"could not lock {self.dir} ({self.path} keeps changing); try again")
        for other in sorted(self.dir.glob(LOCK + "*")):
            if other == self.path:
                continue
            holder = self._read(other)
            if holder is not None and _alive(holder) and self._conflicts(holder):
                self.release()
                raise self._refuse(holder, other)

    def _break(self, stale: dict | None) -> None:
        """Remove a stale lock, unless another run replaced it meanwhile (then it is left)."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if self._read(aside) != stale:  # not the stale lock any more: put it back
            try:
                os.link(aside, self.path)
            except OSError:
                pass
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        if self._read(self.path) == self.info:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def open_run(out_dir: str | os.PathLike, command: str, settings: dict, *, overwrite: bool, has_outputs: bool,
             keys: set[str] | None = None, shard: tuple[int, int] = (0, 1),
             outputs: Iterable[Path] = (), sources: Mapping[str, Path] | None = None,
             source: str | None = None) -> Iterator[RunManifest]:
    """The run on an output folder, for a batch command, after :func:`check_write_plan`: lock it,
    refuse to resume over outputs made with other settings, or from inputs whose content changed
    (``sources``: ``{input key: path}`` of this run's inputs), with ``overwrite`` refuse when any
    of ``outputs`` (the files this run would write over) exists without an earlier run having
    recorded writing it (a user's file), then remove the files earlier runs wrote for this run's
    inputs (``keys``, default the keys of ``sources``; every input's when both are None), write
    the run record, and yield it for :meth:`RunManifest.record`. The lock is released on exit."""
    manifest = RunManifest(Path(out_dir), command, settings, source)
    if keys is None and sources is not None:
        keys = set(sources)
    with OutputLock(Path(out_dir), command, manifest.settings, shard):
        manifest.check_resume(has_outputs or (not overwrite and bool(manifest.previous_files())), overwrite)
        changed = manifest.changed_inputs(sources) if sources and not overwrite else []
        if changed:
            names = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            raise OutputError(f"{out_dir} holds outputs made from other photos named {names} (the content differs "
                              "from the input now); pass --overwrite to redo them, or write into a new folder")
        theirs = manifest.foreign(outputs) if overwrite else []
        if theirs:
            names = ", ".join(str(p) for p in theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
            raise OutputError(f"--overwrite would replace {names}, which no facefill run recorded writing (they may "
                              "be yours): move them away, or write into a new folder")
        if overwrite:
            manifest.remove_previous(keys)
        manifest.write()
        try:
            yield manifest
        finally:
            manifest.close()


def file_digest(*paths: Path) -> str:
    """What the run record keeps of files whose content changes the outputs (weights,
    backgrounds): SHA-256 of one file's content, or over the files' digests (16 hex digits)."""
    digests = []
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digests.append(h.hexdigest()[:16])
    return digests[0] if len(digests) == 1 else hashlib.sha256(" ".join(digests).encode()).hexdigest()[:16]


def input_identity(path: Path) -> str:
    """What the run record keeps of an input: ``sha256[:16]:size:mtime_ns`` of the file (an empty
    string when it cannot be read: unknown, trusted)."""
    try:
        st = os.stat(path)
        return f"{file_digest(Path(path))}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return ""


def same_input(recorded: str, path: Path) -> bool:
    """Whether ``path`` is still the input ``recorded`` (:func:`input_identity`) was taken from:
    the same size and modification time, or else the same content (a copy or a ``touch`` is the
    same input; an edited or replaced photo is not). An unknown identity counts as the same."""
    digest, _, rest = recorded.partition(":")
    size, _, mtime = rest.partition(":")
    if not digest:
        return True
    try:
        st = os.stat(path)
        if str(st.st_size) == size and str(st.st_mtime_ns) == mtime:
            return True
        return file_digest(Path(path)) == digest
    except OSError:
        return True  # gone since it was listed: the load fails it, loudly


def input_key(path: Path, src_root: Path) -> str:
    """How the run record names an input: its path relative to the input folder."""
    return path.name if Path(src_root).is_file() else path.relative_to(src_root).as_posix()


def write_failures(out_dir: Path, failed: list[tuple[Path, str]], inputs: Iterable[Path] | None = None,
                   folder: Path | None = None) -> Path | None:
    """Update ``OUT/failures.tsv`` (input path, reason): the rows of ``inputs`` (this run's
    inputs; default: every row) and of anything under ``folder`` (a whole input folder's run) are
    replaced by this run's ``failed``, the rows of other inputs (another shard's, another call's
    in a per-file pipeline) are kept; the file is removed when no row is left. Shards updating it
    at once take turns (a lock file beside it)."""
    path = Path(out_dir) / FAILURES
    under = None if folder is None else tsv_field(Path(folder)).rstrip("/") + "/"
    with _failures_lock(Path(out_dir)):
        ours = None if inputs is None else {tsv_field(p) for p in inputs} | {tsv_field(p) for p, _ in failed}
        rows = [] if ours is None else [r for r in _read_failures(path)
                                        if r[0] not in ours and not (under and r[0].startswith(under))]
        rows += [(tsv_field(p), tsv_field(r)) for p, r in failed]
        rows.sort(key=lambda row: Path(row[0]).parts)  # input order, whichever shard wrote its rows first
        if not rows:
            if not path.is_dir():  # a folder of that name is the user's, not a stale list
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    raise _cannot_write(path, exc) from None
            return None
        _write_atomic(path, "\n".join(["input\treason"] + [f"{p}\t{r}" for p, r in rows]) + "\n")
    return path


def update_records(path: Path, rows: Iterable[dict]) -> Path | None:
    """Update a run folder's table of what made each output (``OUT/donors.tsv``: one row per
    output, its first column ``output``, relative to the folder): this run's ``rows`` replace the
    rows of the same outputs; rows of outputs no longer in the folder (removed by ``--overwrite``)
    are dropped, rows of other calls' outputs kept. Shards take turns (the failures lock)."""
    path = Path(path)
    rows = [{k: tsv_field(str(v)) for k, v in r.items()} for r in rows]
    with _failures_lock(path.parent):
        old = []
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            head = lines[0].split("\t") if lines else []
            old = [dict(zip(head, line.split("\t"))) for line in lines[1:] if line]
        except OSError:
            pass
        ours = {r["output"] for r in rows}
        keep = [r for r in old if r.get("output") and r["output"] not in ours and (path.parent / r["output"]).is_file()]
        table = sorted(keep + rows, key=lambda r: r["output"])
        if not table:
            path.unlink(missing_ok=True)
            return None
        cols = list(dict.fromkeys(k for r in [*rows, *keep] for k in r))
        _write_atomic(path, "\n".join(["\t".join(cols)] + ["\t".join(r.get(c, "") for c in cols) for r in table]) + "\n")
    return path


def _read_failures(path: Path) -> list[tuple[str, str]]:
    """The rows of an existing ``failures.tsv`` (fields still escaped), [] when there is none."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [(a, b) for a, _, b in (line.partition("\t") for line in lines[1:] if line)]


@contextmanager
def _failures_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock (``OUT/.facefill-failures.lock``) around the read-modify-write of
    ``failures.tsv``; where the file system has no locks, the update goes ahead unlocked."""
    try:
        fh = open(out_dir / ".facefill-failures.lock", "a")
    except OSError:
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
