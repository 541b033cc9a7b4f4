"""The PyTorch port of MediaPipe's selfie segmentation against MediaPipe's own outputs."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facefill.models.selfie_seg import INPUT_SIZE, WEIGHTS_FILE, SelfieSegNet, load_selfie_segnet
from facefill.segment import SEGMENTERS, SelfieSegmenter, get_segmenter, mediapipe_available, mediapipe_resize

HERE = Path(__file__).parent
SEG = HERE.parent / "data" / "segment"
FACES = HERE.parent / "data" / "faces"
ALIGNED = ["astronaut", "biden", "obama", "obama2", "obama3"]


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])


def _input(name: str) -> np.ndarray:
    return _rgb(FACES / "obama2.jpg") if name == "obama2_raw" else _rgb(SEG / f"{name}.png")


@pytest.fixture(scope="module")
def general():
    return SelfieSegmenter("general")


@pytest.fixture(scope="module")
def landscape():
    return SelfieSegmenter("landscape")


def test_weights_file_holds_both_models_in_float16():
    from safetensors import safe_open

    assert WEIGHTS_FILE.stat().st_size < 500_000
    with safe_open(str(WEIGHTS_FILE), "pt") as f:
        meta = f.metadata()
        keys = list(f.keys())
        assert {f.get_tensor(k).dtype for k in keys} == {torch.float16}
    assert meta["licence"] == "Apache-2.0" and "mediapipe==0.10.21" in meta["source"]
    n = len(SelfieSegNet().state_dict())
    assert len(keys) == 2 * n and sum(k.startswith("landscape.") for k in keys) == n


def test_architecture_parameter_count_and_shapes():
    net = load_selfie_segnet()
    assert sum(p.numel() for p in net.parameters()) == 106_401
    for variant, (h, w) in INPUT_SIZE.items():
        out = load_selfie_segnet(variant)(torch.rand(2, 3, h, w))
        assert out.shape == (2, 1, h, w) and 0 <= out.min() and out.max() <= 1


def test_same_padding_puts_the_extra_pixel_bottom_right():
    net = SelfieSegNet()
    conv = net.stem  # 3x3 stride 2 on an even size: TF pads 0 before, 1 after
    x = torch.zeros(1, 3, 8, 8)
    x[..., 0, 0] = 1  # only the top-left pixel is set
    conv.weight.data.fill_(1)
    conv.bias.data.zero_()
    y = conv(x)
    assert y.shape[-2:] == (4, 4) and y[0, 0, 0, 0] == 3  # the window at (0, 0) starts at pixel 0


def test_mediapipe_resize_reproduces_opencv_fixed_point_and_zero_border():
    img = np.full((1, 128, 128, 3), 200, np.uint8)
    x = mediapipe_resize(torch.from_numpy(img), (256, 256))[0] * 255
    # corner-to-corner mapping: the last output column samples x = 127.5, half zero border
    assert torch.allclose(x[:, :255, :255], torch.tensor(200.0), atol=1e-4)
    assert torch.allclose(x[:, :255, 255], torch.tensor(100.0), atol=1e-4)
    assert torch.allclose(x[:, 255, 255], torch.tensor(50.0), atol=1e-4)
    ramp = np.tile(np.arange(128, dtype=np.uint8)[None, :, None], (128, 1, 3))[None]  # 0, 1, ..., 127
    x = mediapipe_resize(torch.from_numpy(ramp), (256, 256))[0, 0, 0] * 255
    assert torch.allclose(x[:254:2], torch.arange(127).float(), atol=1e-4)  # on the grid
    # halfway between k and k + 1: OpenCV's (sum + 2^14) >> 15 rounds half up, to k + 1
    assert torch.allclose(x[1:254:2], torch.arange(1, 128).float(), atol=1e-4)
    same = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    assert torch.equal((mediapipe_resize(torch.from_numpy(same), (256, 256)) * 255).round().byte(),
                       torch.from_numpy(same).permute(0, 3, 1, 2))


@pytest.mark.parametrize("variant,name", [("general", n) for n in ALIGNED + ["obama2_raw"]]
                         + [("landscape", "obama2"), ("landscape", "obama2_raw")])
def test_port_matches_stored_mediapipe_outputs(general, landscape, variant, name):
    """Reference maps made by MediaPipe 0.10.21 itself (tests/data/segment/make_mediapipe_refs.py),
    stored as 16-bit PNGs (within 7.7e-6)."""
    ref = cv2.imread(str(SEG / f"mp_{variant}_{name}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    ours = (general if variant == "general" else landscape)(_input(name))
    d = np.abs(ours - ref)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert d.mean() < 2e-5 and d.max() < 1e-3, (d.mean(), d.max())


def test_a_float_resize_instead_of_mediapipes_would_fail_the_comparison(general):
    """The comparison above can fail: a plain bilinear resize of the input moves the mask."""
    img = _input("obama2")
    ref = cv2.imread(str(SEG / "mp_general_obama2.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    x = cv2.resize(img, (256, 256), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    with torch.no_grad():
        p = general.net(torch.from_numpy(x).permute(2, 0, 1)[None])
    p = torch.nn.functional.interpolate(p, size=(128, 128), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert np.abs(p - ref).mean() > 1e-3


@pytest.mark.skipif(not mediapipe_available(), reason="mediapipe 0.10.21 is not installed (optional; "
                    "see docs/replace-bg.md): the port is checked against stored MediaPipe outputs instead")
@pytest.mark.parametrize("selection,variant", [(0, "general"), (1, "landscape")])
def test_port_matches_mediapipe_live(general, landscape, selection, variant):
    import mediapipe as mp

    ours = general if variant == "general" else landscape
    paths = [SEG / f"{n}.png" for n in ALIGNED] + sorted(FACES.glob("*.jpg")) + sorted((HERE.parents[1] / "examples" / "raw").glob("*.jpg"))
    rng = np.random.default_rng(0)
    images = [_rgb(p) for p in paths] + [cv2.resize(_rgb(FACES / "astronaut.jpg"), (int(w), int(h)))
                                          for h, w in rng.integers(60, 700, (3, 2))]
    worst = []
    for img in images:
        seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection)
        ref = seg.process(img).segmentation_mask
        d = np.abs(ours(img) - ref)
        worst.append((d.mean(), d.max()))
    means, maxes = zip(*worst)
    assert max(means) <= 1e-5 and max(maxes) < 1e-3, worst  # the issue asks for a mean <= 1e-3


def test_segmenter_interface_batch_and_inputs(general):
    imgs = [_input(n) for n in ("biden", "obama")] + [_input("obama2_raw")]
    one = [general(i) for i in imgs]
    many = general.batch(imgs)
    for a, b, i in zip(one, many, imgs):
        assert a.shape == i.shape[:2] and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert np.abs(a - b).max() < 1e-4  # batched convolutions sum in another order
    rgba = np.concatenate([imgs[0], np.full(imgs[0].shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert np.abs(general(rgba) - one[0]).max() < 1e-6
    grey = general(imgs[0].mean(2).astype(np.uint8))
    assert grey.shape == (128, 128)
    probs = general.predict(torch.from_numpy(np.stack(imgs[:2])))
    assert probs.shape == (2, 128, 128) and probs.dtype == torch.float32
    one_by_one = SelfieSegmenter(chunk=1).predict(torch.from_numpy(np.stack(imgs[:2])))
    assert (one_by_one - probs).abs().max() < 1e-4


def test_channels_last_on_the_cpu_gives_the_plain_layout_s_probabilities(general):
    """The CPU segmenter runs on channels-last activations (twice as fast); the probabilities stay
    within 1e-4 of the plain layout's on the test photos (measured: 7e-5 at most on 113 faces, and
    no refined-region pixel changed)."""
    imgs = torch.from_numpy(np.stack([_input(n) for n in ("biden", "obama")]))
    assert general.layout == torch.channels_last
    plain = SelfieSegmenter()
    plain.layout, plain.net = torch.contiguous_format, plain.net.to(memory_format=torch.contiguous_format)
    a, b = general.predict(imgs), plain.predict(imgs)
    assert (a - b).abs().max() < 1e-4


def test_segmenter_names_and_fallback(monkeypatch, tmp_path):
    from facefill.errors import FacefillError, WeightsNotFoundError

    assert SEGMENTERS == ("auto", "selfie", "grabcut", "mediapipe")
    assert get_segmenter("auto").name == "selfie"
    assert get_segmenter("grabcut").name == "grabcut"
    with pytest.raises(FacefillError, match="unknown segmenter"):
        get_segmenter("u2net")
    monkeypatch.setenv("FACEFILL_SELFIE_SEGMENTER", str(tmp_path / "missing.safetensors"))
    for name in ("auto", "selfie"):  # an override naming a missing file stops, as every other one does
        with pytest.raises(WeightsNotFoundError, match="missing.safetensors"):  # (issue 32 item 5)
            get_segmenter(name)
    monkeypatch.delenv("FACEFILL_SELFIE_SEGMENTER")
    from facefill import weights

    monkeypatch.setattr(weights, "home_path", lambda w: tmp_path / "not-installed" / w.file)
    assert get_segmenter("auto").name == "grabcut"  # the shipped weights file missing: GrabCut


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_port_on_gpu_matches_cpu(general):
    gpu = SelfieSegmenter(device="cuda")
    imgs = [_input(n) for n in ALIGNED]
    for a, b in zip(general.batch(imgs), gpu.batch(imgs)):
        assert np.abs(a - b).mean() < 1e-4


@pytest.mark.parametrize("h,w", [(128, 128), (400, 209), (97, 131)])
def test_separable_and_general_warp_agree(h, w):
    img = torch.from_numpy(np.random.default_rng(h).integers(0, 256, (2, h, w, 3), dtype=np.uint8))
    for size in INPUT_SIZE.values():
        assert torch.equal(mediapipe_resize(img, size), mediapipe_resize(img, size, separable=False))
