"""Checks before anything trains (a pipeline with a bad input stops before stage 1 writes anything), and a dev split
held out of train when none is given."""

from __future__ import annotations

import pytest

from tinydistill.config import load_config
from tinydistill.errors import TinyDistillError
from tinydistill.pipeline import pipeline


def _cfg(tmp_path, teacher, **data):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(40)), encoding="utf-8")
    sets = [f"output_dir={tmp_path / 'run'}", f"teacher={teacher}", "data.task=classification"]
    sets += [f"data.train_file={train}", "student={layers: 1, hidden: 16, heads: 4, ffn: 32}"]
    return load_config(None, sets + [f"data.{k}={v}" for k, v in data.items()])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"labels": "[x, y]"}, "label '0' is not in the label set"),
        ({"dev_file": "missing.csv"}, "dev file not found: missing.csv"),
        ({"text_column": "sentence"}, "no column 'sentence'"),
    ],
)
def test_pipeline_stops_before_general_distillation(tmp_path, tiny_teacher_dir, data, message, monkeypatch):
    import tinydistill.pipeline as pl

    started = []
    monkeypatch.setattr(pl, "general", lambda *_, **__: started.append("general"))
    with pytest.raises(TinyDistillError, match=message):
        pipeline(_cfg(tmp_path, tiny_teacher_dir, **data), log=lambda _: None)
    assert not started and not (tmp_path / "run").exists()


def test_pipeline_checks_the_corpus_and_the_teacher(tmp_path, tiny_teacher_dir):
    (tmp_path / "dev.csv").write_text("text,label\na,0\nb,1\n", encoding="utf-8")
    cfg = _cfg(tmp_path, tiny_teacher_dir, dev_file=tmp_path / "dev.csv")
    with pytest.raises(TinyDistillError, match="corpus not found"):
        pipeline(cfg.model_copy(update={"general": cfg.general.model_copy(update={"corpus": "nowhere.txt"})}))
    with pytest.raises(TinyDistillError, match="model not found: .*nowhere"):
        pipeline(cfg.model_copy(update={"teacher": str(tmp_path / "nowhere")}))
    assert not (tmp_path / "run").exists()


def _labels(n_per_class: dict[str, int]) -> str:
    rows = [f"text {label} {i},{label}\n" for label, n in n_per_class.items() for i in range(n)]
    return "text,label\n" + "".join(rows)


def test_dev_is_held_out_of_train_when_none_is_given(tmp_path, capsys):
    from tinydistill.config import DataConfig
    from tinydistill.data.readers import read_split, with_dev
    from tinydistill.tasks import task_info

    (tmp_path / "train.csv").write_text(_labels({"a": 80, "b": 20}), encoding="utf-8")
    given = DataConfig(task="classification", train_file=str(tmp_path / "train.csv"))
    assert len(read_split(given, "train", task_info(given))) == 100  # reading train alone holds nothing out
    cfg = with_dev(given)
    assert cfg.dev_fraction == 0.1 and "no dev data given" in capsys.readouterr().out
    task = task_info(cfg)
    train, dev = read_split(cfg, "train", task, seed=1), read_split(cfg, "dev", task, seed=1)
    assert len(dev) == 10 and len(train) == 90 and not set(train.texts) & set(dev.texts)
    assert sorted(dev.labels) == [0] * 8 + [1] * 2  # stratified: the 80/20 balance of train
    assert read_split(cfg, "dev", task, seed=7).texts == dev.texts  # the same rows whatever the run seed
    assert "holding out 10 of 100 training examples as dev" in capsys.readouterr().out
    count = cfg.model_copy(update={"dev_fraction": 25})
    assert len(read_split(count, "dev", task)) == 25 and len(read_split(count, "train", task)) == 75


def test_a_hold_out_that_leaves_a_class_out_is_refused(tmp_path):
    from tinydistill.config import DataConfig
    from tinydistill.data.readers import read_split
    from tinydistill.tasks import task_info

    (tmp_path / "train.csv").write_text(_labels({"a": 30, "b": 1}), encoding="utf-8")
    cfg = DataConfig(task="classification", train_file=str(tmp_path / "train.csv"), dev_fraction=0.1)
    with pytest.raises(TinyDistillError, match="leaves a class without an example in train or dev .*'b' has 1"):
        read_split(cfg, "dev", task_info(cfg))
    with pytest.raises(TinyDistillError, match="must be below 1 .* or a whole number"):
        load_config(None, ["data.dev_fraction=1.5"])


@pytest.mark.slow
def test_the_held_out_split_is_recorded_in_metrics_and_report(tmp_path, tiny_teacher_dir):
    import json

    from tinydistill.stages import finetune

    cfg = _cfg(tmp_path, tiny_teacher_dir)
    cfg = cfg.model_copy(
        update={
            "finetune": cfg.finetune.model_copy(
                update={"train": cfg.finetune.train.model_copy(update={"max_steps": 2})}
            )
        }
    )
    cfg = cfg.model_copy(update={"report": cfg.report.model_copy(update={"speed_examples": 4})})
    out = finetune(cfg, tmp_path / "teacher")
    held = json.loads((out / "metrics.json").read_text())["dev_held_out"]
    assert held == {"dev_fraction": 0.1, "seed": 0, "stratified": "by label", "examples": 4}
    assert "## Dev split" in (out / "report.md").read_text()


def test_augmentation_with_a_held_out_dev_is_refused_before_anything_runs(tmp_path, tiny_teacher_dir):
    cfg = _cfg(tmp_path, tiny_teacher_dir)
    cfg = cfg.model_copy(update={"augment": cfg.augment.model_copy(update={"enabled": True})})
    with pytest.raises(TinyDistillError, match="augment.enabled with no dev file"):
        pipeline(cfg, log=lambda _: None)
    assert not (tmp_path / "run").exists()
