import pytest

from facefill.config import PRESETS, dump_toml, from_dict, get_preset, merge, parse_set, resolve, to_dict
from facefill.errors import ConfigError


def test_presets_exist_and_differ_only_by_size():
    assert {"tiny", "small", "base128", "paper"} <= set(PRESETS)
    assert get_preset("paper").generator.width == 1.0
    assert get_preset("tiny").generator.width < get_preset("small").generator.width < 1.0


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="tiny"):
        get_preset("huge")


def test_set_overrides_are_typed():
    cfg = resolve("tiny", overrides=["train.lr_g=1e-4", "loss.pixel=l2", "train.betas=[0.0, 0.99]",
                                     "loss.use_adv=false", "generator.width=1"])
    assert cfg.train.lr_g == 1e-4
    assert cfg.loss.pixel == "l2"
    assert cfg.train.betas == (0.0, 0.99)
    assert cfg.loss.use_adv is False
    assert isinstance(cfg.generator.width, float)


@pytest.mark.parametrize("item, message", [
    ("train.lr=1", "unknown config key 'train.lr'"),
    ("nosuch.x=1", "unknown config key 'nosuch'"),
    ("train.batch_size=2.5", "expected an integer"),
    ("loss.use_adv=1", "expected true or false"),
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
