"""Hostile inputs: each gets a clear one-line error (or documented skipping with a count), never a
traceback, never a half-written output. The config cases live in test_config.py, labels/NaN in test_readers.py."""

import errno

import pytest

from tests.helpers import distill_args, run_cli
from tinydistill.config import DataConfig
from tinydistill.data.loaders import encode_examples
from tinydistill.data.readers import read_split
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import task_info


def _cfg(path, **kw):
    return DataConfig(**{"task": "classification", "train_file": str(path), "labels": ["neg", "pos"], **kw})


@pytest.mark.parametrize(
    "name,content,msg",
    [
        ("semicolons.csv", "text;label\nnice;pos\n", "no column 'text'; columns are text;label"),
        ("commas.tsv", "text,label\nnice,pos\n", "no column 'text'; columns are text,label"),
        ("short_row.csv", "text,label\nnice,pos\nbroken\n", "row 2 has no value in column 'label' (ragged row?)"),
        ("long_row.tsv", "text\tlabel\nnice\tpos\nsplit\ttext\tpos\n", "row 2 has 3 fields but the header has 2"),
        ("inf.csv", "text,label\na,1\nb,inf\n", "row 2: regression target 'inf' is not finite"),
    ],
)
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
    data = ["data.task=classification", f"data.train_file={train}", f"data.dev_file={train}"]
    settings = [*data, "prediction.train.max_steps=1", "report.enabled=false"]
    return distill_args(teacher, out, *settings, task=None, student="tinybert-4l-312d")


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


@pytest.mark.slow
def test_full_disk_leaves_nothing_behind(monkeypatch, capsys, tmp_path, tiny_classifier_dir, labelled_csv):
    from transformers import PreTrainedModel

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", no_space)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, *_distill_args(tiny_classifier_dir, labelled_csv, out))
    assert code == 2 and f"could not write {out}: No space left on device; nothing was written" in err
    assert list(tmp_path.glob(".out*")) == [] and not out.exists()


# --- data that used to be misread without a word -------------------------------------------------------------


def _rows(n, start=0):
    return "".join(f"sentence {i},{'pos' if i % 2 else 'neg'}\n" for i in range(start, start + n))


def test_an_unclosed_quote_is_refused_with_its_row(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(
        "text,label\n" + _rows(60) + '"an unclosed quote,pos\n' + _rows(59, 61) + 'a "stray" quote,neg\n',
        encoding="utf-8",
    )
    with pytest.raises(TinyDistillError, match=r"row 61 \(line 62\) opens a quote that closes only on line 122"):
        read_split(_cfg(path), "train", task_info(_cfg(path)))


def test_a_deliberate_multi_line_field_is_kept(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"first line\nsecond line",pos\nplain,neg\n', encoding="utf-8")
    assert read_split(_cfg(path), "train", task_info(_cfg(path))).texts == ["first line\nsecond line", "plain"]


@pytest.mark.parametrize(
    "name,content,kwargs,msg",
    [
        ("dup.csv", "text,label,text\na,pos,b\nc,neg,d\n", {}, "the header names column 'text' more than once"),
        ("empty_label.csv", "text,label\na,pos\nb,\nc,neg\n", {}, "row 2 has an empty label"),
        ("empty_label_derived.csv", "text,label\na,pos\nb, \n", {"labels": None}, "row 2 has an empty label"),
        ("one_class.csv", "text,label\na,pos\nb,pos\n", {}, "every training example has the label 'pos'"),
        (
            "one_class_derived.csv",
            "text,label\na,pos\nb,pos\n",
            {"labels": None},
            "every training example has the label 'pos'",
        ),
        ("zero_width.csv", "text,label\na,pos\n\u200b\u200d,neg\n", {}, "row 2 has no visible text"),
        ("control.tsv", "text\tlabel\na\tpos\n\x07\x1b\tneg\n", {}, "row 2 has no visible text"),
        ("nested_text.jsonl", '{"text": {"a": 1}, "label": "pos"}\n', {}, "row 1, column 'text' holds an object"),
        ("nested_label.jsonl", '{"text": "a", "label": ["pos"]}\n', {}, "row 1, column 'label' holds a list"),
        ("array_of_lists.json", '[["a", "pos"]]', {}, "item 1 of the array is not an object"),
    ],
)
def test_misread_data_is_refused_with_the_row(tmp_path, name, content, kwargs, msg):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    cfg = _cfg(path, **kwargs)
    with pytest.raises(TinyDistillError) as exc:
        read_split(cfg, "train", task_info(cfg))
    assert msg in str(exc.value) and "\n" not in str(exc.value)


def test_a_json_array_file_is_read(tmp_path):
    import json

    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}], indent=2))
    ex = read_split(_cfg(path), "train", task_info(_cfg(path)))
    assert ex.texts == ["good", "bad"] and ex.labels == [1, 0]


def test_text_the_tokenizer_drops_entirely_is_refused(tokenizer):
    from tinydistill.data.readers import Examples

    ex = Examples(["fine", "\ufeff\u00ad"], None, [0, 1], "src.csv")  # BOM and soft hyphen: both stripped
    with pytest.raises(TinyDistillError, match=r"src.csv: 1 example\(s\) tokenise to special tokens only"):
        encode_examples(ex, tokenizer, 16)


# --- messages that used to be raw or empty ------------------------------------------------------------------


@pytest.mark.slow
def test_max_length_above_the_models_positions_is_lowered_with_a_message(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, labelled_csv
):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, *_distill_args(tiny_classifier_dir, labelled_csv, out), "-s", "data.max_length=1000"
    )
    assert code == 0, err
    assert "max_length 1000 is more than the teacher (bert) takes (128 positions): using 128" in stdout


def test_a_malformed_override_names_itself(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "x", "-s", "data.labels=[neg, pos")
    assert code == 2 and "override 'data.labels=[neg, pos': the value is not valid YAML" in err
    assert err.count("\n") == 1


def test_duplicate_teacher_layers_are_refused(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "x", "-s", "student={teacher_layers: [2, 2, 4]}")
    assert code == 2 and "teacher_layers lists layer(s) [2] more than once" in err


@pytest.mark.slow
def test_finetune_a_bare_backbone_on_a_regression_task(monkeypatch, capsys, tmp_path, tiny_teacher_dir, glue):
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "finetune",
        "--teacher",
        str(tiny_teacher_dir),
        "--task",
        "sts-b",
        "--data-dir",
        str(glue / "STS-B"),
        "-o",
        str(tmp_path / "t"),
        "-s",
        "report.enabled=false",
        "-s",
        "data.max_train_examples=32",
        "-s",
        "data.max_eval_examples=16",
        "-s",
        "finetune.train.max_steps=1",
    )
    assert code == 0, err
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path / "t")
    assert config.num_labels == 1 and config.problem_type == "regression"


def test_usage_errors_are_clicks_own_message(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "general", "--task", "sst-2")
    assert code == 2 and "No such option: --task" in err and "NoSuchOption" not in err
