"""Folder jobs on a Dask cluster (facefill.pipeline.distributed, ``--dask``): each task one shard,
the outputs those of one process, a killed worker's task retried with nothing lost or doubled.

One LocalCluster of 2 worker processes (1 thread each) serves the module; its start-up (each worker
imports torch on its first task) is most of the time here."""

import json
import os
import signal
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

distributed = pytest.importorskip("distributed")

from facefill.cli.app import app  # noqa: E402
from facefill.errors import OutputError  # noqa: E402
from facefill.options import HallucinateOptions, ReplaceOptions  # noqa: E402
from facefill.pipeline.distributed import run_distributed, run_shard  # noqa: E402
from facefill.pipeline.hallucinate import hallucinate_folder  # noqa: E402
from facefill.pipeline.replace_bg import _assign  # noqa: E402

runner = CliRunner()
MEAN = HallucinateOptions(method="mean", batch_size=1)


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the killing task below, for the workers
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="2GiB",
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the run's own bookkeeping (locks, the record of written files,
    whose lines come in the order the tasks wrote them), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (".facefill-run.files", ".facefill-failures.lock")}


def recorded(folder: Path) -> list[str]:
    """The outputs the run record lists (each once)."""
    lines = (folder / ".facefill-run.files").read_text().splitlines()
    return sorted({line.split("\t")[0] for line in lines})


def test_outputs_are_those_of_one_process_and_a_rerun_resumes(client, masked, tmp_path):
    for name in ("a_broken.png", "z_broken.png"):  # inputs 0 and 6 of 7: failed in shards 0 and 2 of 4
        (masked / name).write_bytes(b"not an image")
    single = hallucinate_folder(masked, tmp_path / "one", MEAN)
    result = run_distributed("hallucinate", masked, tmp_path / "dask", MEAN, scheduler=client, tasks=4)
    report = result.report
    assert result.tasks == 4 and result.workers == 2 and sorted(result.where) == [0, 1, 2, 3]
    assert report.total == 7 and sorted(report.done) == sorted(single.done) and len(single.done) == 5
    assert report.failed == single.failed and len(report.failed) == 2  # failures.tsv compared below
    assert sorted(report.written) == sorted(p.parent.parent / "dask" / p.name for p in single.written)
    one, many = files(tmp_path / "one"), files(tmp_path / "dask")
    assert sorted(one) == sorted(many) and all(one[k] == many[k] for k in one)  # same files, same bytes
    assert recorded(tmp_path / "dask") == recorded(tmp_path / "one") == sorted(p.name for p in single.written)
    assert not list((tmp_path / "dask").glob(".facefill-lock*"))  # every shard let go of its lock
    again = run_distributed("hallucinate", masked, tmp_path / "dask", MEAN, scheduler=client, tasks=3)
    assert not again.report.done and sorted(again.report.skipped) == sorted(single.done)  # resumed: nothing redone
    assert len(again.report.failed) == 2 and files(tmp_path / "dask") == many


def die_once(call, shard, marker: Path):
    """Shard 0 (inputs 0 and 4) kills its own worker process after writing its first input, the
    first time it runs; every other run of a task is the plain one."""
    def progress(done, total, name):
        if shard[0] == 0 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    return run_shard(call, shard, progress=progress)


def test_a_killed_worker_s_task_is_run_again_nothing_lost_or_doubled(client, masked, tmp_path):
    marker = tmp_path / "killed"
    hallucinate_folder(masked, tmp_path / "one", MEAN)
    result = run_distributed("hallucinate", masked, tmp_path / "dask", MEAN, scheduler=client, tasks=4,
                             task=partial(die_once, marker=marker))
    killed = marker.read_text()
    assert result.where[0].split(":")[1] != killed  # shard 0 finished in another process than the one killed
    report = result.report
    # the first try wrote input 0 before it died: the retry skips it and does input 4
    assert len(report.done) == 4 and len(report.skipped) == 1 and not report.failed and report.total == 5
    assert sorted(report.done + report.skipped) == sorted(set(report.done + report.skipped))  # none twice
    one, many = files(tmp_path / "one"), files(tmp_path / "dask")
    assert sorted(one) == sorted(many) and all(one[k] == many[k] for k in one)
    assert recorded(tmp_path / "dask") == recorded(tmp_path / "one")
    assert client.scheduler_info()["workers"]  # the nanny started a new worker


def dead_try_elsewhere(call, shard, task_of_lock: str | None):
    """Leave the lock an earlier try of this task (``task_of_lock`` None) or of another one would
    have left on a machine that died, then run the shard."""
    key = str(distributed.get_worker().get_current_task())
    holder = {"pid": 4242, "host": "node-that-died", "command": call.command, "shard": list(shard),
              "task": task_of_lock or key}
    call.dst.mkdir(exist_ok=True)
    (call.dst / f".facefill-lock.{shard[0]}of{shard[1]}").write_text(json.dumps(holder))
    return run_shard(call, shard)


def test_a_retry_takes_over_the_lock_of_its_dead_try_from_another_machine(client, masked, tmp_path):
    result = run_distributed("hallucinate", masked, tmp_path / "o", MEAN, scheduler=client, tasks=2,
                             task=partial(dead_try_elsewhere, task_of_lock=None))
    assert len(result.report.done) == 5 and not list((tmp_path / "o").glob(".facefill-lock*"))
    # a lock of another task (another run) on a machine nothing here can reach still counts as live
    with pytest.raises(OutputError, match="node-that-died"):
        run_distributed("hallucinate", masked, tmp_path / "p", MEAN, scheduler=client, tasks=2,
                        task=partial(dead_try_elsewhere, task_of_lock="another-run"))


def test_cli_dask_option_runs_on_a_scheduler(client, masked, tmp_path):
    client.wait_for_workers(2, timeout=60)  # a worker killed by the test before is back
    address = client.scheduler.address
    r = runner.invoke(app, ["hallucinate", str(masked), str(tmp_path / "o"), "--method", "mean", "--dask", address,
                            "--tasks", "2"])
    assert r.exit_code == 0, r.output
    assert "5 done" in r.output and "ran as 2 Dask tasks (shards) on 2 workers" in r.output
    assert len(list((tmp_path / "o").glob("*.png"))) == 5


@pytest.mark.parametrize("extra, words", [(["--shard", "0/2"], "drop --shard"), (["--dask", "local:0"], "local:N"),
                                          (["--grid", "g.png"], "without --dask afterwards")])
def test_cli_dask_usage_errors(masked, tmp_path, extra, words):
    args = ["hallucinate", str(masked), str(tmp_path / "o"), "--method", "mean", *extra]
    r = runner.invoke(app, args + ([] if "--dask" in extra else ["--dask", "local:1"]))
    assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [["align"], ["replace-bg", "-b", "x.png"]])
def test_cli_shards_of_align_and_replace_bg_give_one_run_s_outputs(data_dir, masked, tmp_path, command):
    """--shard i/n on align and replace-bg (a Slurm array without an engine): n calls into one
    folder write each input once, the same bytes as one call; --shard with --dask is refused."""
    (tmp_path / "x.png").write_bytes((masked / "obama.png").read_bytes())
    src = data_dir / "faces" if command[0] == "align" else masked
    def call(out, *extra):
        args = [command[0], str(src), str(tmp_path / out), *command[1:], *extra]
        return runner.invoke(app, [a.replace("x.png", str(tmp_path / "x.png")) for a in args])
    assert call("one").exit_code in (0, 3)
    for i in range(3):
        r = call("sharded", "--shard", f"{i}/3")
        assert r.exit_code in (0, 3), r.output
        assert len(files(tmp_path / "sharded")) <= len(files(tmp_path / "one"))
    assert files(tmp_path / "sharded") == files(tmp_path / "one") and len(files(tmp_path / "one")) >= 4
    r = call("d", "--shard", "0/2", "--dask", "local:1")
    assert r.exit_code == 2 and "drop --shard" in r.output, r.output


@pytest.mark.parametrize("command", [["hallucinate", "--method", "mean"], ["align"], ["replace-bg", "-b", "x.png"]])
def test_tasks_without_dask_is_refused_not_ignored(masked, tmp_path, command):
    (tmp_path / "x.png").write_bytes((masked / "obama.png").read_bytes())
    args = [command[0], str(masked), str(tmp_path / "o"), *command[1:], "--tasks", "4"]
    r = runner.invoke(app, [a.replace("x.png", str(tmp_path / "x.png")) for a in args])
    assert r.exit_code == 2 and "--tasks" in r.output and "needs --dask" in r.output, r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [["hallucinate", "--method", "mean"], ["align"], ["replace-bg", "-b", "x.png"]])
def test_cli_without_dask_installed_says_how(masked, tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    (tmp_path / "x.png").write_bytes((masked / "obama.png").read_bytes())
    args = [command[0], str(masked), str(tmp_path / "o"), *command[1:], "--dask", "local:2"]
    r = runner.invoke(app, [a.replace("x.png", str(tmp_path / "x.png")) for a in args])
    assert r.exit_code == 1 and "pip install 'facefill[dask]'" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("assign", ["round-robin", "random"])
def test_replace_bg_shards_assign_the_backgrounds_of_one_run(assign):
    inputs, backgrounds = [Path(f"in{k:02d}.png") for k in range(11)], [Path(f"bg{k}.png") for k in range(3)]
    opts = ReplaceOptions(assign=assign, seed=5)
    whole = _assign(inputs, backgrounds, opts)
    for n in (2, 3, 4):
        for i in range(n):
            assert _assign(inputs[i::n], backgrounds, replace(opts, shard=(i, n))) == {p: whole[p] for p in inputs[i::n]}
    assert len(set(whole.values())) == 3


def in_cache(call, shard, cache: str):
    """Run the shard with ``FACEFILL_CACHE`` set on the worker as a cluster's workers would have it."""
    os.environ["FACEFILL_CACHE"] = cache
    return run_shard(call, shard)


@pytest.mark.slow
def test_the_donor_bank_is_indexed_once_by_the_client(client, masked, donor_bank, tmp_path, monkeypatch):
    from facefill.fill.donor import DonorFill

    monkeypatch.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    # batch 1: donor outputs move by 1/255 in a few pixels with the faces batched beside them (measured:
    # 2 of these 5 faces, batch 1 vs 2, in one process), so tasks batch like one process only at batch 1
    opts = HallucinateOptions(method="donor", donors=donor_bank, batch_size=1)
    filler = DonorFill.from_options(opts).prepare("cpu")
    assert "built" in filler.notes(True)[0]  # the client built the index, before any task
    result = run_distributed("hallucinate", masked, tmp_path / "o", opts, scheduler=client, tasks=3, filler=filler,
                             task=partial(in_cache, cache=str(tmp_path / "cache")))
    # the test bank's only woman (astronaut) has no donor of her gender but her own copies: she fails alone
    assert len(result.report.done) == 4 and [Path(p).name for p, _ in result.report.failed] == ["astronaut.png"]
    donors = [n for n in result.report.notes if n.startswith("donor context")]  # each worker's index summary
    assert donors and all("read from the cache" in n for n in donors), donors  # no worker built it again
    single = hallucinate_folder(masked, tmp_path / "one", opts, filler=filler)
    assert len(single.done) == 4 and files(tmp_path / "one") == files(tmp_path / "o")


def test_cli_dask_bank_of_another_size_stops_before_any_task(client, aligned_faces_256, donor_bank, tmp_path, monkeypatch):
    """Inputs aligned at 256 px and a bank aligned at 128, run on the cluster: the one line a single
    process gives (both sizes, both fixes), from the client before any task ran. Before, every
    task stopped on it in its worker, with DonorFill's shorter line."""
    monkeypatch.setenv("FACEFILL_CACHE", str(tmp_path / "cache"))
    client.wait_for_workers(2, timeout=60)
    r = runner.invoke(app, ["hallucinate", str(aligned_faces_256), str(tmp_path / "o"), "--method", "donor",
                            "--donors", str(donor_bank), "--dask", client.scheduler.address, "--tasks", "2"])
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert "aligned at 128x128" in r.output and "the inputs are at 256x256" in r.output, r.output
    assert "--size 256" in r.output and "--size 128" in r.output  # both fixes, as one process says them
    assert "Traceback" not in r.output and len(lines) == 1, r.output
    assert "dask tasks" not in r.output and not (tmp_path / "o").exists()  # no task ran, nothing was started
