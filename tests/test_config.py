import pytest

from facefill.config import (PRESETS, Config, LossConfig, dump_toml, from_dict, get_preset, merge, migrate,
                             parse_set, resolve, to_dict)
from facefill.errors import ConfigError

SIZE = {"generator.width", "discriminator.width", "train.batch_size"}
SMOKE_CADENCE = {"train.num_workers", "train.sample_every", "train.checkpoint_every"}


def _flat(cfg):
    return {f"{section}.{key}": v for section, values in to_dict(cfg).items() for key, v in values.items()}


def _differences(a, b):
    fa, fb = _flat(a), _flat(b)
    return {k for k in fa if fa[k] != fb[k]}


def test_presets_exist_and_differ_only_by_size():
    """Presets are the same code at different sizes. Two named exceptions: tiny also runs on the
    smoke-test cadence, and paper is the paper's exact cascade (no mask skip)."""
    assert set(PRESETS) == {"tiny", "small", "base128", "paper"}
    small = get_preset("small")
    assert _differences(get_preset("base128"), small) - SIZE == set()
    assert _differences(get_preset("tiny"), small) - SIZE == SMOKE_CADENCE
    assert _differences(get_preset("paper"), small) - SIZE == {"generator.mask_skip"}
    assert get_preset("paper").generator.mask_skip is False and small.generator.mask_skip is True
    widths = [get_preset(p).generator.width for p in ("tiny", "small", "base128", "paper")]
    assert widths == sorted(widths) and widths[-1] == 1.0
    for name in PRESETS:
        assert get_preset(name).discriminator.width == get_preset(name).generator.width


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="tiny"):
        get_preset("huge")


def test_set_overrides_are_typed():
    cfg = resolve("tiny", overrides=["train.lr_g=1e-4", "loss.pixel_kind=l2", "train.betas=[0.0, 0.99]",
                                     "loss.adv=0", "generator.width=1"])
    assert cfg.train.lr_g == 1e-4
    assert cfg.loss.pixel_kind == "l2"
    assert cfg.train.betas == (0.0, 0.99)
    assert cfg.loss.adv == 0.0 and isinstance(cfg.loss.adv, float)
    assert isinstance(cfg.generator.width, float)


@pytest.mark.parametrize("item, message", [
    ("train.lr=1", "unknown config key 'train.lr'"),
    ("nosuch.x=1", "unknown config key 'nosuch'"),
    ("train.batch_size=2.5", "expected an integer"),
    ("train.flip=1", "expected true or false"),
    ("loss.use_adv=false", "loss.use_adv was replaced by loss.adv"),
    ("loss.pixel=l2", "loss.pixel_kind=l2"),
    ("loss.gan=wgan", "loss.gan must be one of hinge, nonsaturating, lsgan, not 'wgan'"),
    ("loss.pixel_kind=l3", "loss.pixel_kind must be one of l1, l2"),
    ("loss.identity=manhattan", "loss.identity must be one of cosine, euclidean"),
    ("loss.perceptual=resnet50", "loss.perceptual must be one of efficientnet-lite0, vgg19, dlib-resnet"),
    ("train.regime=sideways", "train.regime must be one of cascaded, progressive"),
    ("train.precision=fp8", "train.precision must be one of auto, fp32, bf16"),
    ("loss.id=-1", "loss.id must be >= 0"),
    ("train.batch_size=0", "train.batch_size must be > 0"),
    ("train=3", "expected a table"),
    ("novalue", "expected section.key=value"),
])
def test_bad_overrides_fail_clearly(item, message):
    with pytest.raises(ConfigError, match=message):
        resolve("tiny", overrides=[item])


def test_toml_file_and_round_trip(tmp_path):
    cfg = resolve("small", overrides=["train.epochs=3"])
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    again = resolve("paper", config_file=path)
    assert again == cfg
    assert from_dict(to_dict(cfg)) == cfg


def test_toml_unknown_key_is_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="train.epochz"):
        resolve("tiny", config_file=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve("tiny", config_file=tmp_path / "none.toml")


def test_parse_set_nests():
    assert parse_set(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}


def test_configs_are_frozen():
    cfg = get_preset("tiny")
    with pytest.raises(Exception):
        cfg.train.lr_g = 1.0  # type: ignore[misc]
    assert merge(cfg, {}) == cfg


# facefill 0.1 stored loss switches and weights as use_<term> / w_<term>, and loss.pixel was the
# distance. Release files (the shipped default model among them) and training states hold it.
OLD_LOSS = {"pixel": "l2", "gan": "lsgan", "use_pixel": True, "use_adv": True, "use_id": False, "use_pc": True,
            "w_pixel": 5.0, "w_adv": 0.1, "w_id": 1.0, "w_pc": 2.0, "identity": "cosine",
            "perceptual": "efficientnet-lite0", "feature_min_scale": 32}


def test_old_loss_keys_migrate():
    old = to_dict(get_preset("small"))
    old["loss"] = dict(OLD_LOSS)
    cfg = from_dict(old)
    assert cfg.loss == LossConfig(pixel=5.0, adv=0.1, id=0.0, pc=2.0, pixel_kind="l2", gan="lsgan")
    assert cfg.generator == get_preset("small").generator
    assert old["loss"] == OLD_LOSS, "the input is not modified"
    defaults = {"pixel": "l1", **{f"use_{t}": True for t in ("pixel", "adv", "id", "pc")},
                "w_pixel": 10.0, "w_adv": 0.1, "w_id": 1.0, "w_pc": 1.0}
    assert from_dict({"loss": defaults}) == Config()
    assert migrate(to_dict(Config())) == to_dict(Config())  # current dicts pass unchanged


def test_old_toml_file_migrates(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('[loss]\nuse_id = false\nw_pc = 0.5\npixel = "l2"\n')
    cfg = resolve("tiny", config_file=path)
    assert (cfg.loss.id, cfg.loss.pc, cfg.loss.pixel_kind, cfg.loss.pixel) == (0.0, 0.5, "l2", 10.0)


def test_augment_section():
    """The augment section is config.AugmentConfig, the one the augmentation module uses."""
    from facefill.config import AugmentConfig
    from facefill.train.augment import AugmentConfig as ModuleAugment

    assert ModuleAugment is AugmentConfig
    cfg = resolve("tiny", overrides=["augment.geometric=true", "augment.rotate=5"])
    assert cfg.augment.enabled and cfg.augment.rotate == 5.0
    for bad in ("augment.rotate=200", "augment.scale=[1.2, 0.8]"):
        with pytest.raises(ConfigError, match="augment."):
            resolve("tiny", overrides=[bad])
    assert from_dict({k: v for k, v in to_dict(get_preset("small")).items() if k != "augment"}) == get_preset("small")


def test_the_default_model_recipe_files_build_and_differ_only_in_the_pixel_and_ssim_weights():
    """The two phases in tools/ (docs/model-card.md) are valid configs of the small preset; the
    fine-tune adds the SSIM term, turns the pixel term down and changes nothing else."""
    from pathlib import Path

    from facefill.config import resolve

    tools = Path(__file__).resolve().parents[1] / "tools"
    first = resolve("small", tools / "default_model_recipe.toml")
    second = resolve("small", tools / "default_model_finetune.toml")
    assert first.loss.ssim == 0 and second.loss.ssim > 0 and first.loss.id == 0
    assert _differences(first, second) == {"loss.ssim", "loss.pixel"}
    assert first.train.val_list == "facefill/data/splits/celeba_val.txt"
    assert (tools.parent / first.train.val_list).is_file()


def test_a_bare_value_for_a_list_setting_gets_the_toml_list_to_write():
    from facefill.config import resolve

    with pytest.raises(ConfigError, match=r"""--set 'discriminator.diffaug=\["color", "cutout"\]'"""):
        resolve("tiny", overrides=["discriminator.diffaug=color,cutout"])
    cfg = resolve("tiny", overrides=['discriminator.diffaug=["color", "cutout"]'])
    assert cfg.discriminator.diffaug == ("color", "cutout")


@pytest.mark.parametrize("item, message", [
    # issue 24: values that passed the checks and crashed later, or gave silent nonsense
    ("generator.width=nan", "generator.width: expected a finite number, got nan"),
    ("generator.scales=[]", "generator.scales must double from 8"),
    ("generator.scales=[8, 16, 32, 64, 128, 256]", "up to at most 128"),
    ("generator.scales=[16, 32]", "generator.scales must double from 8"),
    ("train.lr_g=-1", "train.lr_g must be >= 0"),
    ("train.lr_d=-0.1", "train.lr_d must be >= 0"),
    ("train.lr_g=nan", "train.lr_g: expected a finite number"),
    ("train.betas=[2.0, 0.999]", r"train.betas must be in \[0, 1\), not 2.0"),
    ("train.seed=9223372036854775807", r"train.seed must be in \[0, 4294967295\]"),
    ("train.seed=-1", "train.seed must be in"),
    ("train.ema_decay=nan", "train.ema_decay: expected a finite number"),
    ("align.left_eye=[nan, 0.45]", "align.left_eye: expected a finite number"),
    ("align.left_eye=[0.6, 0.45]", "align.left_eye must lie left of align.right_eye"),
    ("align.right_eye=[1.5, 0.45]", r"align.right_eye must be in \(0, 1\)"),
    ("align.size=4", "align.size must be in"),
    ("loss.pixel=nan", "loss.pixel: expected a finite number"),
    ("loss.adv=inf", "loss.adv: expected a finite number"),
    ("mask.fill=[300, 0, 0]", r"mask.fill must be in \[0, 255\], not 300"),
    ("mask.feather=-1", "mask.feather must be in"),
])
def test_non_finite_and_out_of_range_values_name_the_key(item, message):
    with pytest.raises(ConfigError, match=message):
        resolve("tiny", overrides=[item])


def test_non_finite_values_are_refused_in_toml_files_and_stored_configs(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[loss]\npixel = nan\n")
    with pytest.raises(ConfigError, match="loss.pixel: expected a finite number"):
        resolve("tiny", config_file=path)
    stored = to_dict(get_preset("tiny"))
    stored["generator"]["scales"] = [8, 16, 32, 64, 128, 256]
    with pytest.raises(ConfigError, match="generator.scales"):
        from_dict(stored)


def test_every_preset_and_its_written_toml_pass_the_checks():
    for name, cfg in PRESETS.items():
        assert "nan" not in dump_toml(cfg) and from_dict(to_dict(cfg)) == cfg, name
    cfg = resolve("tiny", overrides=["generator.scales=[8, 16, 32]", "train.betas=[0.0, 0.99]", "mask.fill=[255, 0, 0]"])
    assert cfg.generator.scales == (8, 16, 32) and cfg.mask.fill == (255, 0, 0)
