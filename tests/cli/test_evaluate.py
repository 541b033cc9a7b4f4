"""evaluate's command line (issue 24): metric names before or after the folders, one summary shape."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.cli.evaluate import spread_metrics

runner = CliRunner()


@pytest.fixture
def pair(image_folders):
    """Two folders of 3 random 32 px images with the same names."""
    return list(image_folders)


@pytest.mark.parametrize("order", ["metrics first", "metrics last", "repeated -m", "comma list", "equals"])
def test_metrics_before_or_after_the_folders(pair, order):
    g, r = pair
    args = {"metrics first": ["--metrics", "ssim", "match", g, r],
            "metrics last": [g, r, "--metrics", "ssim", "match"],
            "repeated -m": ["-m", "ssim", "-m", "match", g, r],
            "comma list": [g, r, "--metrics", "ssim,match"],
            "equals": ["--metrics=ssim", "match", g, r]}[order]
    res = runner.invoke(app, ["evaluate", *args, "--json", "-", "-q"])
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.stdout)["summary"]) == ["ssim", "match"]


def test_a_third_folder_or_unknown_metric_is_a_usage_error(pair):
    g, r = pair
    res = runner.invoke(app, ["evaluate", g, r, g, "-m", "ssim"])
    assert res.exit_code == 2 and "unexpected extra argument" in res.output
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim,fdi"])
    assert res.exit_code == 2 and "unknown metric(s) fdi" in res.output


def test_spread_metrics_stops_at_the_first_non_metric():
    assert spread_metrics(["-m", "fid", "ssim", "fid", "./fid", "R"]) == [
        "-m", "fid", "--metrics", "ssim", "--metrics", "fid", "./fid", "R"]
    assert spread_metrics(["G", "--", "-m", "ssim"]) == ["G", "--", "-m", "ssim"]


def test_every_metric_has_one_summary_shape(pair, monkeypatch):
    """Issue 24 item 20: fid had `value` where the others have `mean`/`std`; the table shows no std for fid."""
    import torch

    class FakeInception(torch.nn.Module):  # (B, 3, H, W) -> (B, 6) features: no weights needed
        source = "fake"

        def forward(self, images):
            return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)

    monkeypatch.setattr("facefill.metrics.inception.load_inception", lambda path=None: FakeInception())
    g, r = pair
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim", "fid", "--json", "-", "-q"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["summary"]
    assert all(set(s) == {"mean", "std", "n"} for s in summary.values()) and summary["fid"]["std"] is None
    res = runner.invoke(app, ["evaluate", g, r, "-m", "fid", "-q"])
    assert res.exit_code == 0 and "fid" in res.stdout, res.output


def test_a_pickled_inception_file_never_advises_weights_only_false(pair, tmp_path):
    """Issue 24 item 21: torch's own message suggested loading the untrusted pickle."""
    import fractions

    import torch

    pickled = tmp_path / "inception.pth"
    torch.save({"net": fractions.Fraction(1, 3)}, pickled)  # a Python object: needs unpickling code
    g, r = pair
    res = runner.invoke(app, ["evaluate", g, r, "-m", "fid", "--inception-weights", str(pickled)])
    assert res.exit_code == 1 and "pickled Python objects" in res.output, res.output
    assert "weights_only" not in res.output and len(res.stderr.strip().splitlines()) == 1


def test_metric_names_are_defined_once():
    """Issue 25: the CLI's and the pipeline's metric lists are one object (facefill.metrics), and
    --help lists every name from it."""
    import facefill.cli.evaluate as cli
    import facefill.metrics
    import facefill.pipeline.evaluate as pipeline

    assert cli.METRICS is pipeline.METRICS is facefill.metrics.METRICS
    assert cli.METRICS_HELP is facefill.metrics.METRICS_HELP
    assert all(m in facefill.metrics.METRICS_HELP for m in facefill.metrics.METRICS)
    res = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "400"})
    flat = "".join(res.output.split())  # the help wraps where it likes (at a hyphen too)
    assert res.exit_code == 0 and "".join(("Any of: " + " ".join(facefill.metrics.METRICS)).split()) in flat


def _unwritable_report(tmp_path, where: str):
    """A report path that cannot be written: under a file (its folder cannot be created), or in
    a folder nobody may write into (a chmod 0o500 folder, or /sys when running as root)."""
    if where == "parent is a file":
        blocker = tmp_path / "file"
        blocker.write_text("x")
        return blocker / "sub" / "report"
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o500)
    probe = ro / "probe"
    try:
        probe.write_text("")
    except OSError:
        return ro / "report"
    probe.unlink()  # root writes anyway: use a folder the kernel refuses to anyone
    if _refuses("/sys"):
        return Path("/sys") / f"facefill-test-{os.getpid()}" / "report"
    pytest.skip("no folder on this machine refuses writes to this user")


def _refuses(folder: str) -> bool:
    probe = Path(folder) / f"facefill-write-probe-{os.getpid()}"
    try:
        probe.write_text("")
    except OSError:
        return True
    probe.unlink()
    return False


@pytest.mark.parametrize("option", ["--json", "--csv"])
@pytest.mark.parametrize("where", ["parent is a file", "read-only folder"])
def test_unwritable_report_is_refused_before_any_metric(pair, tmp_path, monkeypatch, option, where):
    """Issue 24 item 17: an unwritable --json/--csv is found before the run, not after it: exit 1,
    one line naming the path, and no metric computed."""
    def computed(*_a, **_k):
        raise AssertionError("a metric was computed before the report path was checked")

    monkeypatch.setattr("facefill.metrics.ssim.ssim", computed)
    target = _unwritable_report(tmp_path, where)
    g, r = pair
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim", option, str(target)])
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0], res.stderr
    assert "Traceback" not in res.output and not target.exists()


def test_json_report_through_a_link_keeps_the_link(pair, tmp_path):
    """Issue 33 #5: `--json link.json` replaced the link with a file and left its target stale."""
    g, r = pair
    target = tmp_path / "reports" / "latest.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim", "--json", str(link), "-q"])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and "ssim" in json.loads(target.read_text())["summary"]


def test_quiet_with_a_report_file_prints_no_table(pair, tmp_path):
    """Issue 33 #2: `evaluate -q --json r.json` still printed its table. With -q and a report
    file the file is the result; without a file the table is the only result, so it stays."""
    g, r = pair
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim", "--json", str(tmp_path / "r.json"), "-q"])
    assert res.exit_code == 0 and res.stdout == "" and (tmp_path / "r.json").is_file(), res.output
    res = runner.invoke(app, ["evaluate", g, r, "-m", "ssim", "-q"])
    assert res.exit_code == 0 and "ssim" in res.stdout


def test_variant_picks_one_variant_of_a_donor_run_and_pairs_it_with_its_face(tmp_path):
    """``--variant K``: the K-th outputs (``<name>_v<K>``) against ``<name>``; the others are left
    out. Without it, a --variants folder fails with the hint; a K that is not there fails too."""
    from facefill.data.io import write_image

    rng = np.random.default_rng(0)
    gen, real = tmp_path / "gen", tmp_path / "real"
    reals = {n: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for n in ("a", "b", "c")}
    for n, im in reals.items():
        write_image(real / f"{n}.png", im)
        write_image(gen / f"{n}_v0.png", 255 - im)  # variant 0 far from the real
        write_image(gen / f"{n}_v1.png", im)  # variant 1 the real itself
    res = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim", "--json", "-", "-q",
                              "--variant", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert sorted(r["file"] for r in out["rows"]) == ["a", "b", "c"] and out["summary"]["ssim"]["mean"] > 0.99
    res = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim", "--json", "-", "-q",
                              "--variant", "0"])
    assert res.exit_code == 0 and json.loads(res.stdout)["summary"]["ssim"]["mean"] < 0.5
    res = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim", "-q"])
    assert res.exit_code != 0 and "--variant K" in res.output
    res = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim", "-q", "--variant", "2"])
    assert res.exit_code != 0 and "no <name>_v2 outputs" in res.output
