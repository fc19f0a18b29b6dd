"""Checks before anything trains: a pipeline with a bad input stops before stage 1 writes anything."""

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
        ({}, "no dev data: set data.dev_file"),
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
