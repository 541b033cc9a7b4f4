import pytest
from typer.testing import CliRunner

from facefill import __version__
from facefill.cli.app import app

runner = CliRunner()
COMMANDS = ["info", "align", "mask", "train", "hallucinate", "replace-bg", "paste", "evaluate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_unknown_command_is_usage_error():
    result = runner.invoke(app, ["nosuch"])
    assert result.exit_code == 2


def test_info_lists_versions_and_components():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "cpu" in result.output


def test_a_reader_that_stops_early_ends_facefill_quietly_by_sigpipe():
    """Issue 24 item 15: `facefill info | head -1` exited 1 (Click's EPIPE handling): end by
    SIGPIPE like other Unix tools (141 in a shell), with nothing on stderr."""
    import subprocess
    import sys

    import signal

    proc = subprocess.Popen([sys.executable, "-m", "facefill", "info"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before facefill (still importing) writes a line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGPIPE and err == b"", (proc.returncode, err)
