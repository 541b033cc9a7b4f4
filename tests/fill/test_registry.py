"""The registry of ways to fill context (issue 32): options checked once when made, one filler per
method, and the pipeline driven only through the ContextFiller interface."""

from pathlib import Path

import numpy as np
import pytest

from facefill.config import HALLUCINATE_METHODS
from facefill.errors import UsageError
from facefill.fill.base import ContextFiller
from facefill.fill.registry import FILLERS, make_filler
from facefill.options import HallucinateOptions


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "donor"}, "--method donor needs --donors"),
    ({"method": "mean", "donors": Path("bank")}, "--donors is for --method donor"),
    ({"method": "mean", "variants": 3}, "--variants is for --method donor"),
    ({"method": "telea", "checkpoint": Path("g.safetensors")}, "--checkpoint is for --method model"),
    ({"method": "donor", "donors": Path("bank"), "keep_face": False}, "--no-keep-face"),
    ({"method": "donor", "donors": Path("bank"), "all_scales_dir": Path("s")}, "--all-scales"),
    ({"method": "donor", "donors": Path("bank"), "variants": 65}, "--variants 65"),
])
def test_options_refuse_a_methods_missing_or_foreign_inputs_when_made(kwargs, words):
    with pytest.raises(UsageError) as err:
        HallucinateOptions(**kwargs)
    assert words in str(err.value) and err.value.exit_code == 2


def test_every_method_has_a_filler_of_its_name():
    assert tuple(FILLERS) == HALLUCINATE_METHODS
    for name in FILLERS:
        opts = HallucinateOptions(method=name, donors=Path("bank") if FILLERS[name].needs else None)
        filler = make_filler(opts)  # not prepared: no weights or bank read yet
        assert isinstance(filler, ContextFiller) and filler.name == name


class Flat(ContextFiller):
    """A new way of filling context: grey, two variants (how a filler plugs in, docs/architecture.md)."""

    name, variants = "mean", 2

    def fill(self, batch):
        from facefill.fill.base import Filled

        final = np.full((len(batch.images), 2) + batch.images.shape[1:], 128, np.uint8)
        final[:, 1] = 64
        return Filled(final)

    def notes(self, keep_face):
        return ["flat grey context"]

    def settings(self):
        return {"grey": [128, 64]}


def test_the_pipeline_runs_any_filler_through_the_interface(masked, tmp_path):
    """Variants, notes, run-record settings and the face pasted back come from the interface alone."""
    import json

    from facefill.data.io import read_image
    from facefill.pipeline.hallucinate import hallucinate_folder

    report = hallucinate_folder(masked, tmp_path / "o", HallucinateOptions(method="mean", feather=0), filler=Flat())
    assert len(report.done) == 5 and report.notes[0] == "flat grey context"
    record = json.loads((tmp_path / "o" / ".facefill-run.json").read_text())["settings"]
    assert record["grey"] == [128, 64]
    for k, grey in ((0, 128), (1, 64)):
        out = read_image(tmp_path / "o" / f"biden_v{k}.png")
        face = read_image(masked / "biden.mask.png")[..., 0] > 127
        np.testing.assert_array_equal(out[face], read_image(masked / "biden.png")[face])
        assert (out[~face] == grey).all()
