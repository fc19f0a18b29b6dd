"""Config validation: clear messages for unknown keys and wrong types; overrides; per-stage defaults."""

import pytest

from tinydistill.config import dump_config, load_config
from tinydistill.errors import TinyDistillError


def test_defaults_per_stage():
    cfg = load_config()
    assert cfg.prediction.losses.soft_weight == 1 and cfg.prediction.losses.hidden_weight == 0
    assert cfg.intermediate.losses.attention_weight == 1 and cfg.intermediate.losses.soft_weight == 0
    assert cfg.prediction.losses.t2_scaling and cfg.prediction.losses.mode == "masked"
    assert cfg.student.preset == "tinybert-4l-312d"


def test_partial_sections_merge_over_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("prediction:\n  losses:\n    temperature: 4\n    hard_weight: 0.5\n", encoding="utf-8")
    cfg = load_config(path, ["prediction.train.epochs=2", "intermediate.losses.layer_map=[[1, 2], [2, 4]]"])
    assert cfg.prediction.losses.temperature == 4 and cfg.prediction.losses.soft_weight == 1
    assert cfg.prediction.losses.hard_weight == 0.5 and cfg.prediction.train.epochs == 2
    assert cfg.intermediate.losses.layer_map == [(1, 2), (2, 4)]
    assert load_config(None, ["student={checkpoint: x}"]).student.checkpoint == "x"
    assert "temperature: 4" in dump_config(cfg)


@pytest.mark.parametrize(
    "overrides,msg",
    [
        (
            ["prediction.losses.temprature=2"],
            "prediction.losses.temprature: unknown key \\(did you mean 'temperature'\\?\\)",
        ),
        (["seed=abc"], "seed: Input should be a valid integer"),
        (["prediction.losses.mode=exact"], "prediction.losses.mode: Input should be 'masked' or 'tinybert'"),
        (["prediction.train.learning_rate=-1"], "learning_rate: Input should be greater than 0"),
        (["student={preset: tinybert-4l-312d, checkpoint: x}"], "give exactly one of"),
        (["nonsense"], "must look like key.path=value"),
    ],
)
def test_bad_configs_are_refused_with_a_message(overrides, msg):
    with pytest.raises(TinyDistillError, match=msg):
        load_config(None, overrides)


def test_yaml_no_means_no_mixed_precision(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("prediction:\n  train:\n    mixed_precision: no\n", encoding="utf-8")  # YAML: false
    assert load_config(path).prediction.train.mixed_precision == "no"
    assert load_config(None).prediction.train.mixed_precision == "auto"  # bf16 only where native
    assert load_config(None, ["finetune.train.mixed_precision=no"]).finetune.train.mixed_precision == "no"
    assert load_config(None, ["finetune.train.mixed_precision=bf16"]).finetune.train.mixed_precision == "bf16"


def test_bad_files(tmp_path):
    with pytest.raises(TinyDistillError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1\n", encoding="utf-8")
    with pytest.raises(TinyDistillError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(TinyDistillError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_shipped_example_configs_validate():
    from pathlib import Path

    examples = sorted((Path(__file__).parents[1] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        load_config(path)
