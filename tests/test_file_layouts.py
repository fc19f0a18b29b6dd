"""Data files as they are published: any delimiter, no header (columns by position), another encoding, Parquet,
a folder per label, a folder saved by datasets; and what each says when it cannot be read."""

from __future__ import annotations

import pytest

from tinydistill.config import DataConfig
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info


def _read(**kw):
    cfg = DataConfig(task="classification", **kw)
    task = task_info(cfg)
    return task, read_split(cfg, "train", task)


def test_semicolon_separated_with_a_header(tmp_path):
    (tmp_path / "t.csv").write_text("text;label\ngood, really;pos\nbad;neg\n", encoding="utf-8")
    task, ex = _read(train_file=str(tmp_path / "t.csv"), delimiter=";")
    assert ex.texts == ["good, really", "bad"] and [task.label_names[i] for i in ex.labels] == ["pos", "neg"]


def test_headerless_file_with_the_label_first(tmp_path):
    (tmp_path / "t.tsv").write_text("pos\tgood film\nneg\tbad film\n", encoding="utf-8")
    task, ex = _read(train_file=str(tmp_path / "t.tsv"), header=False, label_column=0, text_column=1)
    assert ex.texts == ["good film", "bad film"] and task.label_names == ["neg", "pos"]
    with pytest.raises(TinyDistillError, match="column position 3 is out of range .*2 fields, 0 to 1"):
        _read(train_file=str(tmp_path / "t.tsv"), header=False, label_column=0, text_column=3)


def test_another_encoding(tmp_path):
    (tmp_path / "t.csv").write_bytes("text,label\ncafé crème,pos\nbad,neg\n".encode("latin-1"))
    with pytest.raises(TinyDistillError, match="is not UTF-8 text .*set data.encoding"):
        _read(train_file=str(tmp_path / "t.csv"))
    _, ex = _read(train_file=str(tmp_path / "t.csv"), encoding="latin-1")
    assert ex.texts[0] == "café crème"
    with pytest.raises(TinyDistillError, match="data.encoding 'klingon' is not an encoding"):
        _read(train_file=str(tmp_path / "t.csv"), encoding="klingon")


def test_wrong_delimiter_is_named(tmp_path):
    (tmp_path / "t.csv").write_text("text;label\ngood;pos\nbad;neg\n", encoding="utf-8")
    with pytest.raises(TinyDistillError, match="no column '(text|label)'; .*looks ';'-separated: set data.delimiter"):
        _read(train_file=str(tmp_path / "t.csv"))


def test_parquet_and_saved_datasets(tmp_path):
    import datasets

    rows = {"text": ["good", "bad", "fine"], "label": ["pos", "neg", "pos"]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "t.parquet"))
    _, ex = _read(train_file=str(tmp_path / "t.parquet"))
    assert ex.texts == rows["text"]
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    _, ex = _read(train_file=str(tmp_path / "saved"))
    assert ex.texts == rows["text"]
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(TinyDistillError, match="is not a readable Parquet file"):
        _read(train_file=str(tmp_path / "bad.parquet"))


def test_a_folder_per_label(tmp_path):
    for label, texts in {"neg": ["awful", "dull"], "pos": ["great"]}.items():
        (tmp_path / "train" / label).mkdir(parents=True)
        for i, t in enumerate(texts):
            (tmp_path / "train" / label / f"{i}.txt").write_text(t + "\n", encoding="utf-8")
    task, ex = _read(train_file=str(tmp_path / "train"))
    assert task.label_names == ["neg", "pos"] and ex.texts == ["awful", "dull", "great"] and ex.labels == [0, 0, 1]
    (tmp_path / "flat").mkdir()
    with pytest.raises(TinyDistillError, match="neither a saved dataset nor one sub-folder per label"):
        _read(train_file=str(tmp_path / "flat"))
