"""The README's command lines, each run on a fresh install's terms (issue 24 item 2).

Every ``facefill ...`` command in README.md's shell code blocks (fenced blocks without a language
or marked bash/sh/shell/console; ``&&`` chains run in order) is found here, so a line added to
the README is tested without a change to this file. Each line runs in its own empty folder, as
the working directory, with what a fresh install has: an empty torch hub cache (``TORCH_HOME``),
an empty cache folder (``XDG_CACHE_HOME``) and no ``FACEFILL_*`` variables.

* The folders and files a line reads and no earlier command of its chain made are filled with
  the repository's small test data first: photos (tests/data/faces), aligned crops with their
  sidecars, masked faces, generated images, a background, a checkpoint (the shipped default
  model at the line's own path, ``runs/<run>/...`` included). ``examples/raw`` is the
  repository's own. Nothing else of a line is changed, so its options are parsed and acted on
  as a user's would be; every output it names must exist afterwards.
* A line that needs what a fresh install does not have (weights to download, a GPU, CelebA, a
  donor bank of at least 10 faces) is not run: the same line must say what it needs, and where
  the need can be shown cheaply (the refusal a user gets without it), that is checked too.
* ``train`` lines take minutes as written: by default the CLI parses and configures them and
  hands the run to a stand-in of the training driver, which checks the config (the line's
  ``--set`` values in it); ``-m slow`` trains them as written, on 40 copies of the test crops.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from facefill.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA = ROOT / "tests" / "data" / "faces"
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
runner = CliRunner()


# ---- the README's lines ---------------------------------------------------------------------

@dataclass
class Line:
    """One line of a shell code block: its text, its comment and its commands (``&&`` chain)."""

    text: str
    comment: str
    commands: list[list[str]] = field(default_factory=list)  # each ["facefill", sub, args...] or other

    @property
    def facefill(self) -> list[list[str]]:
        return [c for c in self.commands if c and c[0] == "facefill"]


def readme_lines(text: str | None = None) -> list[Line]:
    """Every line of README.md's shell code blocks that runs ``facefill``."""
    text = README.read_text(encoding="utf-8") if text is None else text
    lines, lang = [], None
    for raw in text.splitlines():
        fence = re.match(r"^\s*```(\S*)", raw)
        if fence:
            lang = fence.group(1).lower() if lang is None else None
            continue
        if lang not in SHELL_BLOCKS or not raw.strip() or raw.lstrip().startswith("#"):
            continue
        tokens = shlex.split(raw, comments=True)
        comment = raw.split(" #", 1)[1].strip() if " #" in raw else ""
        commands, current = [], []
        for token in tokens:
            if token in ("&&", "||"):  # "facefill align ... || [ $? -eq 3 ]": the test after || is no facefill command
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
        line = Line(raw.strip(), comment, commands)
        if line.facefill:
            lines.append(line)
    return lines


def test_the_parser_reads_blocks_chains_and_comments():
    text = ("text `facefill inline` is prose\n```\nfacefill a x/ y/   # needs z\n# a comment\n```\n"
            "```python\nfacefill not_shell\n```\n```bash\npip install -e . && facefill b 'p q'/\n```\n")
    got = readme_lines(text)
    assert [(g.text, g.comment, g.facefill) for g in got] == [
        ("facefill a x/ y/   # needs z", "needs z", [["facefill", "a", "x/", "y/"]]),
        ("pip install -e . && facefill b 'p q'/", "", [["facefill", "b", "p q/"]])]
    assert got[1].commands[0] == ["pip", "install", "-e", "."]


def test_the_readme_has_the_lines_a_user_starts_with():
    """The README shows each command at least once (so this file tests them all)."""
    subs = {c[1] for line in readme_lines() for c in line.facefill}
    assert {"align", "mask", "train", "hallucinate", "replace-bg", "paste", "evaluate"} <= subs, subs


def test_the_facefill_command_is_the_installed_script():
    """The lines call ``facefill``: pyproject.toml installs that name, pointing at this app."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["facefill"] == "facefill.cli.app:main"


# ---- what a command reads and writes ---------------------------------------------------------

#: per command, the parameters that name something it reads (-> the kind of thing) or writes
READS = {
    "align": {"raw_dir": "photos"},
    "mask": {"aligned_dir": "aligned"},
    "train": {"data_dir": "training set", "init": "checkpoint", "config": "file"},
    "hallucinate": {"input_dir": "hallucinate input", "checkpoint": "checkpoint", "donors": "aligned",
                    "real_dir": "aligned"},
    "replace-bg": {"images_dir": "generated", "background": "background", "face_masks": "masked"},
    "paste": {"out_dir": "generated", "photos_dir": "generated's photos", "aligned": "masked"},
    "evaluate": {"generated_dir": "generated", "real_dir": "aligned", "masks": "masked",
                 "inception_weights": "file"},
}
WRITES = {
    "align": ("aligned_dir",), "mask": ("masked_dir",), "train": ("out",),
    "hallucinate": ("out_dir", "grid"), "replace-bg": ("out_dir",), "paste": ("final_dir",), "evaluate": ("json_out", "csv_out"),
}


def parse(command: list[str]) -> dict:
    """The parameters ``facefill <sub> args`` gives, parsed by the CLI's own parser (nothing runs)."""
    group = typer.main.get_command(app)
    sub = group.commands[command[1]]
    with sub.make_context(command[1], list(command[2:]), resilient_parsing=True) as ctx:
        return dict(ctx.params)


@dataclass(frozen=True)
class Need:
    """Something a fresh install lacks, when a command needs it, and the words that name it."""

    what: str
    needed: object  # (sub, params, command) -> bool
    says: str  # regex the README line must match (case-insensitive)


NEEDS = [
    Need("PieAPP/LPIPS weights (downloaded into torch hub's cache)",
         lambda sub, p, c: sub == "evaluate" and bool({"pieapp", "lpips"} & set(_metrics(p))), r"weights"),
    Need("a CUDA GPU", lambda sub, p, c: str(p.get("device") or "").startswith("cuda") or "torchrun" in c,
         r"GPU|CUDA"),
    Need("CelebA (its terms; tools/fetch_faces.sh)", lambda sub, p, c: any("celeba" in t.lower() for t in c),
         r"CelebA"),
    Need("a donor bank of at least 10 aligned faces", lambda sub, p, c: p.get("method") == "donor" or sub == "bank",
         r"bank"),  # the bank command itself: tests/donor/test_bank_cli.py
    Need("a Dask scheduler to connect to (docs/distributed.md)",
         lambda sub, p, c: str(p.get("dask") or "local").split(":")[0] != "local", r"Dask"),
    Need("fan's landmark weights", lambda sub, p, c: p.get("landmarks") == "fan", r"weights"),
    Need("mediapipe installed", lambda sub, p, c: "mediapipe" in (p.get("landmarks"), p.get("segmenter")),
         r"mediapipe"),
]


def _metrics(params: dict) -> list[str]:
    return [m for item in params.get("metrics") or [] for m in item.replace(",", " ").split()]


def needs_of(line: Line) -> list[Need]:
    found = []
    for command in line.facefill:
        params = parse(command)
        found += [n for n in NEEDS if n.needed(command[1], params, command) and n not in found]
    return found


# ---- the material a line reads ---------------------------------------------------------------

@pytest.fixture(scope="module")
def material(tmp_path_factory, aligned_faces):
    """Small inputs of each kind, made once: photos, aligned crops (with sidecars), their masks,
    generated images (the default model's, same names), a training set of 40 crops (copies of
    the aligned ones: a batch of the small preset is 32), and a background."""
    root = tmp_path_factory.mktemp("material")
    photos = root / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(DATA / name, photos / name)
    aligned = root / "aligned"
    shutil.copytree(aligned_faces, aligned)
    for command in (["mask", str(aligned), str(root / "masked")],
                    ["hallucinate", str(root / "masked"), str(root / "generated")]):
        r = runner.invoke(app, [*command, "--quiet"])
        assert r.exit_code == 0, r.output
    training = root / "training"
    training.mkdir()
    crops = sorted(p for p in aligned.glob("*.png") if not p.name.endswith(".valid.png"))
    for i in range(40):
        src = crops[i % len(crops)]
        for companion in aligned.glob(src.stem + ".*"):
            shutil.copy(companion, training / f"{src.stem}_{i:02d}{companion.name[len(src.stem):]}")
    return {"photos": photos, "aligned": aligned, "masked": root / "masked", "generated": root / "generated",
            "training set": training, "background": DATA / "astronaut.jpg", "generated's photos": DATA}


def provide(kind: str, path: Path, material: dict) -> None:
    """Put a ``kind`` of input at ``path`` (relative to the line's folder)."""
    from facefill.pipeline.hallucinate import default_model_path

    if (ROOT / path).exists() and path.parts[0] == "examples":  # the repository's own examples
        shutil.copytree(ROOT / path, path)
        return
    if kind == "hallucinate input":  # photos, aligned crops and masked faces all work: pick by name
        kind = "masked" if "mask" in path.name else "aligned" if "align" in path.name else "photos"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "checkpoint":
        shutil.copy(default_model_path(), path)
    elif kind == "background":
        shutil.copy(material["background"], path)
    elif kind in material:
        shutil.copytree(material[kind], path)
    else:
        raise AssertionError(f"tests/test_readme.py has no {kind} to put at {path}: teach provide() about it")


@pytest.fixture
def fresh_install(tmp_path, monkeypatch):
    """The line's folder as the working directory, with a fresh install's empty caches."""
    import os

    for key in [k for k in os.environ if k.startswith("FACEFILL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache" / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(scope="module")
def inception_once():
    """The FID network loaded once for the module (each evaluate line would load it again)."""
    import functools

    import facefill.metrics.inception as inception

    load = inception.load_inception
    cached = functools.lru_cache(maxsize=4)(lambda path: load(path))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "load_inception", lambda path=None, **kw: load(path, **kw) if kw else cached(path))
        yield


def run_line(line: Line, material: dict, train=None) -> list[str]:
    """Run the line's commands in order in the current folder; returns their outputs. With
    ``train`` (a stand-in for ``facefill.pipeline.train.train_folder``), train lines are parsed
    and configured by the CLI and handed to it instead of training."""
    outputs = []
    for command in line.facefill:
        sub, params = command[1], parse(command)
        for param, kind in READS.get(sub, {}).items():
            value = params.get(param)
            if value is not None and str(value) != "-" and not Path(value).exists():
                provide(kind, Path(value), material)
        with pytest.MonkeyPatch.context() as mp:
            if sub == "train" and train is not None:
                mp.setattr("facefill.pipeline.train.train_folder", train)
            r = runner.invoke(app, [sub, *command[2:]])
        if sub == "train" and train is not None:
            outputs.append(r.output)
            continue
        assert r.exit_code == 0, f"{shlex.join(command)}\n{r.output}"
        for param in WRITES.get(sub, ()):
            value = params.get(param)
            if value is not None and str(value) != "-":
                out = Path(value)
                assert out.exists() and (out.is_file() or any(out.iterdir())), f"{shlex.join(command)} wrote no {out}"
        if sub == "evaluate" and params.get("json_out") is None and params.get("csv_out") is None:
            assert all(m in r.stdout for m in _metrics(params) or ["match", "ssim", "fid"]), r.stdout
        outputs.append(r.output)
    return outputs


class _Handed(Exception):
    """Raised by the train stand-in once the CLI has handed over the run."""


def _set_values(command: list[str]) -> dict[str, str]:
    """``--set section.key=value`` pairs of a command."""
    return dict(command[i + 1].split("=", 1) for i, t in enumerate(command[:-1]) if t == "--set")


# ---- the tests -------------------------------------------------------------------------------

LINES = readme_lines()
#: README lines known to be wrong: line text -> what is wrong and the fix (each xfails, strictly,
#: so the test fails once the README is fixed and this entry must go)
WRONG: dict[str, str] = {}


def _case(line: Line, slow_train: bool):
    marks = []
    if line.text in WRONG:
        marks.append(pytest.mark.xfail(strict=True, reason=WRONG[line.text]))
    if slow_train:
        marks.append(pytest.mark.slow)
    return pytest.param(line, id=line.text[:80], marks=marks)


RUNNABLE = [line for line in LINES if not needs_of(line)]
WITH_NEEDS = [line for line in LINES if needs_of(line)]
TRAINS = [line for line in RUNNABLE if any(c[1] == "train" for c in line.facefill)]


@pytest.mark.parametrize("line", [_case(line, False) for line in RUNNABLE])
def test_readme_line_runs_on_a_fresh_install(line, material, fresh_install, inception_once):
    """Each line runs as written (train lines: up to the training itself, which takes minutes;
    the config they would train with holds the line's preset and every --set value)."""
    handed = []

    def train_folder(data_dir, run_dir, cfg, **kw):
        handed.append((Path(data_dir), cfg))
        raise _Handed

    run_line(line, material, train=train_folder)
    trains = [c for c in line.facefill if c[1] == "train"]
    assert len(handed) == len(trains), "a train line did not get as far as training"
    for command, (data_dir, cfg) in zip(trains, handed):
        from facefill.config import to_dict

        params, values = parse(command), to_dict(cfg)
        assert data_dir == Path(params["data_dir"]) and data_dir.is_dir()
        for key, value in _set_values(command).items():
            section, name = key.split(".", 1)
            assert str(values[section][name]) == value, (key, values[section][name])


@pytest.mark.parametrize("line", [_case(line, True) for line in TRAINS])
def test_readme_train_line_runs_as_written(line, material, fresh_install, inception_once):
    run_line(line, material)


@pytest.mark.parametrize("line", [_case(line, False) for line in WITH_NEEDS])
def test_readme_line_says_what_it_needs(line):
    missing = [n.what for n in needs_of(line) if not re.search(n.says, line.comment, re.IGNORECASE)]
    assert not missing, f"README line {line.text!r} needs {', '.join(missing)}: say so on the line (a # comment)"


def test_a_donor_bank_too_small_is_refused_with_what_it_needs(material, fresh_install):
    """The donor line's need is real: a bank of 5 faces is refused in one line naming the minimum."""
    r = runner.invoke(app, ["hallucinate", str(material["masked"]), "out", "--method", "donor",
                            "--donors", str(material["aligned"])])
    assert r.exit_code == 1 and "at least 10 aligned faces" in r.output, r.output


def test_metrics_a_comment_says_need_weights_do_need_them(material, fresh_install):
    """A line's comment that adds metrics needing weights ("+ pieapp lpips: weights first") is
    true: on a fresh install each of them stops evaluate with exit 1, before any work, saying
    which weights and where they go."""
    named = {m for line in LINES for m in ("pieapp", "lpips") if re.search(rf"\b{m}\b", line.comment)}
    for metric in sorted(named):
        r = runner.invoke(app, ["evaluate", str(material["generated"]), str(material["aligned"]), "-m", metric])
        assert r.exit_code == 1, r.output
        assert f"{metric} needs weights" in r.output and "hub" in r.output, r.output
