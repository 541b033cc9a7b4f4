"""Issue 25: models hold networks, losses hold losses, weights.py holds every weight file's name."""

from __future__ import annotations

import ast
from pathlib import Path

import facefill
from facefill.weights import WEIGHTS

ROOT = Path(facefill.__file__).parent


def _imports(path: Path) -> list[str]:
    """Every facefill module ``path`` imports, anywhere in the file (functions too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m.startswith("facefill")]


def test_the_loss_classes_live_in_losses_and_the_old_names_still_import():
    from facefill.losses.identity import IdentityLoss
    from facefill.losses.perceptual import PerceptualLoss
    from facefill.models import embedders

    assert IdentityLoss.__module__ == "facefill.losses.identity"
    assert PerceptualLoss.__module__ == "facefill.losses.perceptual"
    assert not hasattr(embedders, "IdentityLoss") and not hasattr(embedders, "PerceptualLoss")  # models hold no losses
    assert not any(isinstance(v, type) and v.__name__.endswith("Loss") for v in vars(embedders).values())


def test_models_import_neither_losses_nor_align_at_module_level():
    """``models.dlib_resnet`` imported ``facefill.align`` for a weight path; models only use
    facefill.weights for that."""
    for path in (ROOT / "models").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [n.module for n in top if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in names if m.startswith(("facefill.losses", "facefill.align"))], path.name
    assert not [m for m in _imports(ROOT / "models" / "dlib_resnet.py") if m.startswith("facefill.align")]


def test_weight_file_names_and_urls_are_written_only_in_weights_py():
    for path in ROOT.rglob("*.py"):
        if path.name == "weights.py":
            continue
        text = path.read_text(encoding="utf-8")
        for w in WEIGHTS.values():
            code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
            assert f'"{w.file}"' not in code and f"'{w.file}'" not in code, (path, w.file)
            if w.how.startswith("http"):
                assert w.how not in code, (path, w.how)
