"""The ``facefill`` Typer app: registers one thin module per subcommand."""

from __future__ import annotations

import typer

from facefill import __version__
from facefill.cli import align as align_cmd
from facefill.cli import evaluate as evaluate_cmd
from facefill.cli import hallucinate as hallucinate_cmd
from facefill.cli import info as info_cmd
from facefill.cli import mask as mask_cmd
from facefill.cli import replace_bg as replace_bg_cmd
from facefill.cli import train as train_cmd
from facefill.cli.stubs import EXTRA_ARGS, not_implemented

app = typer.Typer(
    name="facefill",
    help="Hallucinate context and background around a face mask with a multi-scale cascaded GAN.\n\n"
    "Pipeline: align -> mask -> (train) -> hallucinate -> replace-bg -> evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facefill {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """facefill command-line interface."""


app.command("info")(info_cmd.info)
app.command("align")(align_cmd.align)
app.command("mask")(mask_cmd.mask)
app.command("train")(train_cmd.train)
app.command("hallucinate")(hallucinate_cmd.hallucinate)
app.command("replace-bg")(replace_bg_cmd.replace_bg)
app.command("evaluate", context_settings={"allow_extra_args": True})(evaluate_cmd.evaluate)

_PLANNED = {
    "align": "Detect faces and landmarks, warp eye centres to fixed positions, write 128x128 crops.",
    "mask": "Keep the face region of aligned photos, blank the rest, write the binary masks.",
    "train": "Train the multi-scale generator on a folder of aligned face photos.",
    "hallucinate": "Run a trained generator over a folder of face masks.",
    "replace-bg": "Swap the background behind the person using segmentation and Laplacian blending.",
    "evaluate": "Compare hallucinations with real photos: match score, SSIM, FID, PieAPP, LPIPS.",
}


def _register_planned() -> None:
    registered = {c.name for c in app.registered_commands}
    for name, text in _PLANNED.items():
        if name not in registered:
            app.command(name, context_settings=EXTRA_ARGS)(not_implemented(name, text))


_register_planned()


def main() -> None:
    app()
