"""The registry of ways to fill context: one :class:`Method` per ``hallucinate --method`` value.

A method says what it means (``--help``), where its :class:`~facefill.fill.base.ContextFiller`
lives, and which options it needs and takes; :class:`facefill.options.HallucinateOptions` checks
those once, when it is made, so a donor run without a bank is refused before any work. The
names and their order are :data:`facefill.config.HALLUCINATE_METHODS` (the one list). No torch
here: the CLI's ``--help`` is built from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from facefill.config import HALLUCINATE_METHODS

#: method inputs in :class:`facefill.options.HallucinateOptions`: field -> (command-line option, unset value)
INPUTS = {"checkpoint": ("--checkpoint", None), "donors": ("--donors", None), "variants": ("--variants", 1),
          "seed": ("--seed", 0), "exclude_donors": ("--exclude-donors", ()), "pin_donors": ("--pin-donor", ())}
#: environment variables that give a path input its default when the method needs it and it is unset
#: (``FACEFILL_DONORS=BANK``: ``--method donor`` without ``--donors``)
ENV_DEFAULTS = {"donors": "FACEFILL_DONORS"}


def env_default(field: str) -> Path | None:
    """The path the environment gives input ``field`` (:data:`ENV_DEFAULTS`), or None."""
    value = os.environ.get(ENV_DEFAULTS.get(field, ""), "").strip() if field in ENV_DEFAULTS else ""
    return Path(value) if value else None


def with_env_defaults(name: str, values: dict) -> dict:
    """``values`` (``{field: value}`` of :data:`INPUTS`) with each input method ``name`` needs and
    that is unset taken from the environment (:data:`ENV_DEFAULTS`) where it is set there."""
    out = dict(values)
    for field, _ in FILLERS[name].needs:
        if out.get(field) is None and env_default(field) is not None:
            out[field] = env_default(field)
    return out


@dataclass(frozen=True)
class Method:
    """One way of filling context. ``filler``: ``"module:Class"`` of its
    :class:`~facefill.fill.base.ContextFiller` (imported when one is made). ``needs``: the
    :data:`INPUTS` it cannot run without, each with what to give; ``takes``: the inputs it reads
    (any other method refuses them). ``scales``: it has outputs at several scales (``--all-scales``);
    ``keeps_face``: its outputs carry the face already (``--no-keep-face`` is refused);
    ``classical``: a baseline of :mod:`facefill.baselines`."""

    name: str
    meaning: str
    filler: str
    needs: tuple[tuple[str, str], ...] = ()
    takes: tuple[str, ...] = ()
    scales: bool = False
    keeps_face: bool = False
    classical: bool = False


_CLASSIC = "facefill.fill.classic:ClassicFill"
FILLERS: dict[str, Method] = {m.name: m for m in (
    Method("model", "the generator (--checkpoint, or the model shipped with facefill)",
           "facefill.fill.model:ModelFill", takes=("checkpoint",), scales=True),
    Method("donor", "real context from the donor faces in --donors: photographic hair, clothes and background",
           "facefill.fill.donor:DonorFill", needs=(("donors", "--donors BANK (a folder of 'facefill align' outputs; "
                                                            "or set FACEFILL_DONORS to one)"),),
           takes=("donors", "variants", "seed", "exclude_donors", "pin_donors"), keeps_face=True),
    Method("telea", "OpenCV inpainting (Telea), a classical baseline", _CLASSIC, classical=True),
    Method("ns", "OpenCV inpainting (Navier-Stokes), a classical baseline", _CLASSIC, classical=True),
    Method("mean", "the face's mean colour, a flat baseline", _CLASSIC, classical=True),
)}
if tuple(FILLERS) != HALLUCINATE_METHODS:
    raise AssertionError(f"the fill registry {tuple(FILLERS)} must list HALLUCINATE_METHODS {HALLUCINATE_METHODS}")


def method(name: str) -> Method:
    """The registered method ``name`` (KeyError for an unknown one: check names with
    :data:`facefill.options.METHODS` first)."""
    return FILLERS[name]


def classical() -> tuple[str, ...]:
    """The classical baselines' names, in registry order."""
    return tuple(m.name for m in FILLERS.values() if m.classical)


def input_problems(name: str, values: dict) -> list[str]:
    """What is wrong with the method inputs ``values`` (``{field: value}`` of :data:`INPUTS`) for
    method ``name``: a needed one missing, or one that another method takes; one message each."""
    m = FILLERS[name]
    problems = [f"--method {name} needs {what}" for field, what in m.needs if values.get(field) is None]
    for field, (option, unset) in INPUTS.items():
        if field not in m.takes and values.get(field, unset) != unset:
            owners = [o.name for o in FILLERS.values() if field in o.takes]
            problems.append(f"{option} is for --method {' or '.join(owners)}")
    return problems


def make_filler(opts):
    """The (unprepared) :class:`~facefill.fill.base.ContextFiller` of ``opts.method`` built from
    ``opts`` (:class:`facefill.options.HallucinateOptions`); call its ``prepare(device)``."""
    module, cls = FILLERS[opts.method].filler.split(":")
    return getattr(import_module(module), cls).from_options(opts)
