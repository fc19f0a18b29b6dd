"""Hostile inputs: each gets a clear one-line error (or documented skipping with a count), never a
traceback, never a half-written output. The config cases live in test_config.py, labels/NaN in test_readers.py."""
import errno

import pytest

from tests.test_cli import run_cli
from tinydistill.config import DataConfig
from tinydistill.data.loaders import encode_examples
from tinydistill.data.readers import read_split, task_info
from tinydistill.errors import TinyDistillError


def _cfg(path, **kw):
    return DataConfig(**{"task": "classification", "train_file": str(path), "labels": ["neg", "pos"], **kw})


@pytest.mark.parametrize("name,content,msg", [
    ("semicolons.csv", "text;label\nnice;pos\n", "no column 'text'; columns are text;label"),
    ("commas.tsv", "text,label\nnice,pos\n", "no column 'text'; columns are text,label"),
    ("short_row.csv", "text,label\nnice,pos\nbroken\n", "row 2 has no value in column 'label' (ragged row?)"),
    ("long_row.tsv", "text\tlabel\nnice\tpos\nsplit\ttext\tpos\n", "row 2 has 3 fields but the header has 2"),
    ("inf.csv", "text,label\na,1\nb,inf\n", "row 2: regression target 'inf' is not finite"),
])
def test_malformed_files(tmp_path, name, content, msg):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    cfg = _cfg(path, task="regression" if name == "inf.csv" else "classification")
    with pytest.raises(TinyDistillError) as exc:
        read_split(cfg, "train", task_info(cfg))
    assert msg in str(exc.value) and "\n" not in str(exc.value)


def test_blank_lines_are_skipped_with_a_count(tmp_path, capsys):
    path = tmp_path / "blanks.csv"
    path.write_text("text,label\n\nnice,pos\n,\n\nbad,neg\n", encoding="utf-8")
    ex = read_split(_cfg(path), "train", task_info(_cfg(path)))
    assert ex.texts == ["nice", "bad"]
    assert "skipped 3 blank line(s)" in capsys.readouterr().out


def test_a_1mb_line_is_read_and_truncated(tmp_path, tokenizer):
    path = tmp_path / "huge.tsv"
    path.write_text("text\tlabel\n" + "word " * 200_000 + "\tpos\nshort\tneg\n", encoding="utf-8")
    ex = read_split(_cfg(path), "train", task_info(_cfg(path)))
    assert len(ex.texts[0]) >= 1_000_000
    rows = encode_examples(ex, tokenizer, max_length=64).rows
    assert len(rows[0]["input_ids"]) == 64 and rows[1]["labels"] == 0


def _distill_args(teacher, train, out):
    return ["distill", "--stage", "prediction", "--teacher", str(teacher), "--student", "tinybert-4l-312d",
            "-o", str(out), "-s", "data.task=classification", "-s", f"data.train_file={train}",
            "-s", f"data.dev_file={train}", "-s", "prediction.train.max_steps=1", "-s", "report.enabled=false"]


@pytest.fixture
def labelled_csv(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("text,label\nnice,1\nbad,0\n", encoding="utf-8")
    return path


def test_output_location_that_cannot_be_a_folder(monkeypatch, capsys, tmp_path, tiny_classifier_dir, labelled_csv):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, *_distill_args(tiny_classifier_dir, labelled_csv, blocker / "out"))
    assert code == 2 and "cannot write to" in err and "Not a directory" in err and "Traceback" not in err


def test_full_disk_leaves_nothing_behind(monkeypatch, capsys, tmp_path, tiny_classifier_dir, labelled_csv):
    from transformers import PreTrainedModel

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", no_space)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, *_distill_args(tiny_classifier_dir, labelled_csv, out))
    assert code == 2 and f"could not write {out}: No space left on device; nothing was written" in err
    assert list(tmp_path.glob(".out*")) == [] and not out.exists()
