"""``facefill bank index BANK`` and ``facefill bank info BANK``: a donor bank's index built ahead
of time, and what a bank holds (:mod:`facefill.pipeline.bank`)."""

from __future__ import annotations

from pathlib import Path

import typer

from facefill.cli import _options as opt
from facefill.cli.common import console, err_console, handle_errors, run_with_progress
from facefill.errors import UsageError

app = typer.Typer(help="Donor banks for 'hallucinate --method donor': build a bank's index ahead of time, or see "
                  "what a bank holds. A bank is a folder of 'facefill align' outputs; its index is cached outside it "
                  "(FACEFILL_CACHE, default ~/.cache/facefill/donors) and updated for added, changed and removed files "
                  "only. FACEFILL_DONORS names a default bank, so --method donor needs no --donors.",
                  no_args_is_help=True)

BANK_HELP = "A folder of 'facefill align' outputs (default: the bank FACEFILL_DONORS names)."


def _bank(bank: Path | None) -> Path:
    from facefill.pipeline.bank import DONORS_ENV, default_bank

    bank = bank if bank is not None else default_bank()
    if bank is None:
        raise UsageError(f"give a BANK folder (or set {DONORS_ENV} to one)")
    return bank


def _size() -> int | None:
    return typer.Option(None, "--size", min=16, max=4096, show_default=False,
                        help="The donors' side in pixels (align's --size). Default: the size most of BANK's "
                        "aligned faces have (else 128).")


def _side(bank: Path, size: int | None) -> int:
    from facefill.donor.index import bank_size

    return size or bank_size(bank) or 128


@app.command("index")
@handle_errors
def index(
    bank: Path = typer.Argument(None, metavar="BANK", help=BANK_HELP),
    size: int | None = _size(),
    device: str = opt.device(),
    quiet: bool = opt.quiet(),
) -> None:
    """Build or update BANK's donor index now (with a progress bar), so 'hallucinate --method donor' starts at once.
    Only added and changed files are read; an unchanged bank is recognised from file names, sizes and mtimes."""
    from facefill.pipeline.bank import index_bank
    from facefill.runtime import resolve_device

    bank = _bank(bank)
    dev = resolve_device(device)
    size = _side(bank, size)
    report = run_with_progress("indexing the bank", lambda progress: index_bank(bank, size, dev, progress), quiet)
    if not quiet:
        err_console.print(report.summary, highlight=False, soft_wrap=True)


@app.command("info")
@handle_errors
def info(
    bank: Path = typer.Argument(None, metavar="BANK", help=BANK_HELP),
    size: int | None = _size(),
) -> None:
    """Say what BANK holds: images, donors, files skipped and why, the index's state (fresh; stale: N added,
    M changed, K removed; not indexed), padding, gender and age counts where the index has them, and
    the licence when the bank is CelebA. Reads no image (without --size, the headers of up to 64,
    for the bank's size); builds nothing."""
    from facefill.pipeline.bank import bank_info

    bank = _bank(bank)
    for line in bank_info(bank, _side(bank, size)).lines():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
