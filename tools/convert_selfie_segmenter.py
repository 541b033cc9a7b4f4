"""Convert MediaPipe's selfie-segmentation .tflite models into facefill's PyTorch port.

    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp
    pip install tflite          # flatbuffer accessors for the .tflite schema (tool-time only)
    python tools/convert_selfie_segmenter.py /tmp/mp/mediapipe-0.10.21-*.whl [--check]

SOURCE is the mediapipe wheel, a folder holding the two .tflite files, or left out to use an
installed ``mediapipe``. Both models (``selfie_segmentation.tflite``, general, 256x256, and
``selfie_segmentation_landscape.tflite``, 144x256; Apache-2.0, by Google) are read and written
to ``facefill/weights/selfie_segmentation.safetensors`` as ``general.*`` and ``landscape.*``
float16 tensors (the .tflite files store float16 weights behind DEQUANTIZE ops, so nothing is
lost).

The graph is walked in execution order. Every weighted op (CONV_2D, DEPTHWISE_CONV_2D and the
custom ``Convolution2DTransposeBias``) is matched to the next layer of
``SelfieSegNet.layers()``; the converter checks the op kind, shapes, strides, SAME padding and
that no activation is fused (the graph has separate HARD_SWISH/RELU/LOGISTIC ops, which the
module reproduces), and that the op list holds nothing the module does not implement. Weight
layouts: conv OHWI -> OIHW, depthwise 1HWC -> C1HW, transposed conv OHWI -> IOHW.

``--check`` runs the .tflite model with ``ai_edge_litert`` (when installed) on random and
real-photo inputs and prints the largest difference from the port.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from facefill.models.selfie_seg import INPUT_SIZE, WEIGHTS_FILE, SameConv, SelfieSegNet  # noqa: E402

FILES = {"general": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
MEMBER = "mediapipe/modules/selfie_segmentation/"
#: ops the module implements (anything else in a graph is an error)
KNOWN = {"DEQUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH", "RELU", "LOGISTIC", "ADD", "MUL",
         "AVERAGE_POOL_2D", "MEAN", "RESIZE_BILINEAR", "CUSTOM"}


def read_models(source: str | None) -> dict[str, bytes]:
    if source is None:
        import mediapipe

        source = str(Path(mediapipe.__file__).parent / "modules" / "selfie_segmentation")
    p = Path(source)
    if p.suffix == ".whl":
        with zipfile.ZipFile(p) as z:
            return {v: z.read(MEMBER + f) for v, f in FILES.items()}
    return {v: (p / f).read_bytes() for v, f in FILES.items()}


def weighted_ops(data: bytes) -> list[dict]:
    """The weighted ops of the graph in execution order: kind, weight/bias arrays, options."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    g = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def const(i: int) -> np.ndarray:
        t = g.Tensors(i)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        dtype = {tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.FLOAT32: "<f4"}[t.Type()]
        return np.frombuffer(raw.tobytes(), dtype).reshape(t.ShapeAsNumpy()).astype(np.float32)

    dequantized: dict[int, np.ndarray] = {}
    out = []
    for n in range(g.OperatorsLength()):
        op = g.Operators(n)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if name not in KNOWN:
            raise SystemExit(f"op {n}: {name} is not implemented by SelfieSegNet")
        if name == "DEQUANTIZE":
            dequantized[op.Outputs(0)] = const(op.Inputs(0))
            continue
        if name == "CUSTOM" and code.CustomCode().decode() != "Convolution2DTransposeBias":
            raise SystemExit(f"op {n}: custom op {code.CustomCode().decode()} is not implemented")
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "CUSTOM"):
            if name == "RESIZE_BILINEAR":
                o = op.BuiltinOptions()
                opts = tflite.ResizeBilinearOptions()
                opts.Init(o.Bytes, o.Pos)
                assert not opts.AlignCorners() and opts.HalfPixelCenters(), "resize flags differ from the port"
            continue

        def tensor(i: int) -> np.ndarray:
            return dequantized[i] if i in dequantized else const(i)

        w, b = tensor(op.Inputs(1)), tensor(op.Inputs(2))
        if name == "CUSTOM":  # TfLiteTransposeConvParams: padding (1 = SAME), stride_w, stride_h
            padding, sw, sh = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), "<i4")
            act, same = 0, padding == 1
        else:
            o = op.BuiltinOptions()
            opts = tflite.Conv2DOptions() if name == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            opts.Init(o.Bytes, o.Pos)
            sw, sh, act, same = opts.StrideW(), opts.StrideH(), opts.FusedActivationFunction(), opts.Padding() == 0
            assert opts.DilationWFactor() == opts.DilationHFactor() == 1
            if name == "DEPTHWISE_CONV_2D":
                assert opts.DepthMultiplier() == 1
        out.append({"op": n, "kind": name, "weight": w, "bias": b, "stride": (int(sh), int(sw)),
                    "act": act, "same": bool(same)})
    return out


def to_torch(entry: dict, layer: torch.nn.Module) -> dict[str, torch.Tensor]:
    w, kind = entry["weight"], entry["kind"]
    if kind == "CONV_2D":
        expect = type(layer) in (torch.nn.Conv2d, SameConv) and layer.groups == 1
        w = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
    elif kind == "DEPTHWISE_CONV_2D":
        expect = isinstance(layer, torch.nn.Conv2d) and layer.groups == layer.in_channels
        w = w.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
    else:
        expect = isinstance(layer, torch.nn.ConvTranspose2d)
        w = w.transpose(3, 0, 1, 2)  # OHWI -> IOHW
    where = f"op {entry['op']} ({kind})"
    assert expect, f"{where}: the port has {layer} here"
    assert tuple(w.shape) == tuple(layer.weight.shape), f"{where}: {w.shape} vs {tuple(layer.weight.shape)}"
    assert tuple(layer.stride) == entry["stride"], f"{where}: stride {entry['stride']} vs {layer.stride}"
    assert entry["act"] == 0, f"{where}: fused activation {entry['act']}"
    assert entry["same"] or w.shape[-1] == 1, f"{where}: VALID padding on a {w.shape[-1]}x{w.shape[-1]} kernel"
    return {"weight": torch.from_numpy(np.ascontiguousarray(w)), "bias": torch.from_numpy(entry["bias"].copy())}


def convert(data: bytes) -> SelfieSegNet:
    net = SelfieSegNet()
    ops, layers = weighted_ops(data), net.layers()
    if len(ops) != len(layers):
        raise SystemExit(f"the graph has {len(ops)} weighted ops, the port {len(layers)} layers")
    with torch.no_grad():
        for entry, layer in zip(ops, layers):
            for k, v in to_torch(entry, layer).items():
                getattr(layer, k).copy_(v)
    return net.eval()


def check(data: bytes, net: SelfieSegNet, variant: str) -> None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        print("  --check: ai_edge_litert is not installed; skipped")
        return
    import cv2

    it = Interpreter(model_content=data)
    it.allocate_tensors()
    h, w = INPUT_SIZE[variant]
    rng = np.random.default_rng(0)
    inputs = [rng.random((h, w, 3), dtype=np.float32)]
    for p in sorted((ROOT / "tests" / "data" / "faces").glob("*.jpg")):
        img = cv2.imread(str(p))[..., ::-1]
        inputs.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    for x in inputs:
        it.set_tensor(it.get_input_details()[0]["index"], x[None])
        it.invoke()
        ref = it.get_tensor(it.get_output_details()[0]["index"])[0, ..., 0]
        with torch.no_grad():
            ours = net(torch.from_numpy(x).permute(2, 0, 1)[None])[0, 0].numpy()
        d = np.abs(ours - ref)
        print(f"  --check: max |port - tflite| {d.max():.2e}, mean {d.mean():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", help="mediapipe wheel, or folder with the .tflite files")
    ap.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    ap.add_argument("--check", action="store_true", help="compare with the .tflite run by ai_edge_litert")
    args = ap.parse_args()
    models = read_models(args.source)
    tensors, meta = {}, {"licence": "Apache-2.0", "source": "mediapipe==0.10.21 " + MEMBER}
    for variant, data in models.items():
        net = convert(data)
        meta[f"{variant}_sha256"] = hashlib.sha256(data).hexdigest()
        print(f"{variant}: {FILES[variant]} ({len(data)} bytes), {sum(p.numel() for p in net.parameters())} parameters")
        if args.check:
            check(data, net, variant)
        for k, v in net.state_dict().items():
            tensors[f"{variant}.{k}"] = v.half().contiguous()
            assert torch.equal(tensors[f"{variant}.{k}"].float(), v), "weights are not float16-exact"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
