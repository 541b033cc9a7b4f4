"""The ``facefill`` Typer app: registers one thin module per subcommand.

Start-up stays light: this module and every ``cli/<stage>.py`` import only Typer, Rich and
facefill's config; torch, OpenCV, dlib and the models are imported inside the commands, so
``facefill --help`` and ``--version`` answer at once (tests/cli/test_app.py guards it)."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from facefill import __version__
from facefill.cli import align as align_cmd
from facefill.cli import bank as bank_cmd
from facefill.cli import evaluate as evaluate_cmd
from facefill.cli import hallucinate as hallucinate_cmd
from facefill.cli import info as info_cmd
from facefill.cli import mask as mask_cmd
from facefill.cli import paste as paste_cmd
from facefill.cli import replace_bg as replace_bg_cmd
from facefill.cli import train as train_cmd

def _click_class(name: str) -> type:
    """Click's exception class ``name``, from whichever Click Typer uses (its own copy in recent
    versions, the ``click`` package in older ones), found through a class Typer exports."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


class OneLineErrors(TyperGroup):
    """Click's own usage errors (an option out of range, a missing argument, an unknown option)
    as one ``error:`` line naming the problem and where help is, exit 2, like facefill's own
    usage errors, instead of Click's three-line Usage/Try/Error block."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _click_class("UsageError") as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'facefill': the help, as before
                exc.show()
                sys.exit(exc.exit_code)
            where = exc.ctx.command_path if exc.ctx is not None else "facefill"
            typer.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except _click_class("ClickException") as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="facefill",
    cls=OneLineErrors,
    help="Hallucinate context and background around a face mask with a multi-scale cascaded GAN.\n\n"
    "Pipeline: align -> mask -> (train) -> hallucinate -> replace-bg -> evaluate.",
    no_args_is_help=True,
    # plain Click help: words wrap at the terminal width, flags show no "<bool>" metavar, and the
    # text greps cleanly (Rich's boxed panels broke sentences mid-word in narrow columns)
    rich_markup_mode=None,
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
app.command("paste")(paste_cmd.paste)
app.add_typer(bank_cmd.app, name="bank")
app.command("evaluate", cls=evaluate_cmd.EvaluateCommand)(evaluate_cmd.evaluate)


def main() -> None:
    # A reader that stops early (`facefill info | head -1`, `evaluate ... --json - | true`): end
    # quietly by SIGPIPE like other Unix tools, not Click's silent exit 1. Not for train, whose
    # torchrun processes talk over sockets that must see EPIPE as an error instead.
    import signal
    import sys

    if hasattr(signal, "SIGPIPE") and "train" not in sys.argv[1:2]:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
