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


MR = {
    "pos": [
        'the rock is destined to be the 21st century\'s new " conan " . ',
        "a gorgeous , witty , seductive movie .",
    ],
    "neg": [
        "simplistic , silly and tedious . ",
        "it's so laddish and juvenile , only teenage boys could possibly find it funny .",
    ],
}


def _mr(tmp_path, copies=5):
    """MR as published (rt-polarity.pos / .neg): one Latin-1 text per line, no label column."""
    for label, texts in MR.items():
        lines = [f"{t} ({i}) café" for i in range(copies) for t in texts]
        (tmp_path / f"rt-polarity.{label}").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return {label: str(tmp_path / f"rt-polarity.{label}") for label in MR}


def test_one_file_per_class_with_a_dev_hold_out(tmp_path):
    from tinydistill.data.readers import with_dev

    cfg = with_dev(DataConfig(task="classification", class_files=_mr(tmp_path), encoding="latin-1"))
    task = task_info(cfg)
    train, dev = read_split(cfg, "train", task), read_split(cfg, "dev", task)
    assert task.label_names == ["neg", "pos"] and len(train) + len(dev) == 20 and len(dev) == 2
    assert sorted(dev.labels) == [0, 1]  # stratified
    assert "café" in train.texts[0] and not set(train.texts) & set(dev.texts)


@pytest.mark.slow
def test_one_file_per_class_from_configuration_alone(monkeypatch, capsys, tmp_path, tiny_teacher_dir):
    from tests.helpers import run_cli

    files = _mr(tmp_path)
    config = tmp_path / "mr.yaml"
    config.write_text(
        "data:\n  task: classification\n  encoding: latin-1\n  class_files:\n"
        + "".join(f"    {k}: {v}\n" for k, v in files.items())
        + "finetune:\n  train:\n    max_steps: 2\n    batch_size: 4\nreport:\n  enabled: false\n"
    )
    args = ["finetune", "-c", str(config), "--teacher", str(tiny_teacher_dir), "-o", str(tmp_path / "t")]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "holding out data.dev_fraction 0.1" in out and (tmp_path / "t" / "metrics.json").is_file()


TREC = [
    "DESC:manner How did serfdom develop in and then leave Russia ?",
    "ENTY:cremat What films featured the character Popeye Doyle ?",
    "DESC:manner How can I find a list of celebrities ' real names ?",
    "HUM:ind What contemptible scoundrel stole the cork from my lunch ?",
]


def test_label_and_text_on_one_line_with_a_label_pattern(tmp_path):
    path = tmp_path / "train_5500.label"
    path.write_bytes(("\n".join(TREC) + "\n").encode("latin-1"))
    trec = {"train_file": str(path), "header": False, "delimiter": " ", "label_column": 0, "text_column": 1}
    task, ex = _read(**trec, max_fields=2, label_pattern="^([A-Z]+):", encoding="latin-1")
    assert task.label_names == ["DESC", "ENTY", "HUM"] and ex.labels == [0, 1, 0, 2]
    assert ex.texts[0] == "How did serfdom develop in and then leave Russia ?"
    fine, _ = _read(**trec, max_fields=2)
    assert fine.label_names == ["DESC:manner", "ENTY:cremat", "HUM:ind"]
    # without max_fields every question was its first word: ragged headerless rows are refused
    with pytest.raises(TinyDistillError, match="into 3 different numbers of fields .9 to 13; row 2 has 9, row 1 11"):
        _read(**trec)
    with pytest.raises(TinyDistillError, match=r"row 1: label 'DESC:manner' does not match data.label_pattern '\^x'"):
        _read(**trec, max_fields=2, label_pattern="^x")


def test_a_headerless_file_read_with_a_header_says_its_first_row_looks_like_data(tmp_path):
    (tmp_path / "t.tsv").write_text("0\tthis film was a delight from start to end, really\n1\tdull\n", encoding="utf-8")
    with pytest.raises(
        TinyDistillError, match="the first row .* looks like data, not a header: set data.header: false"
    ):
        _read(train_file=str(tmp_path / "t.tsv"))


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"class_files": {"a": "x"}, "train_file": "y"}, "class_files is the training data: give it or train_file"),
        ({"class_files": {"a": "x"}}, "class_files needs a file for each of at least two classes"),
        ({"label_pattern": "(["}, "label_pattern '\\(\\[' is not a regular expression"),
        ({"max_fields": 1}, "max_fields"),
    ],
)
def test_bad_layout_settings_are_refused(kw, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        DataConfig(task="classification", **kw)
