"""Damaged files are detected and named: teacher-logit cache entries, model folders, checkpoints."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tests.helpers import SMALL_STUDENT, StopAt, config_of, distill_args, run_cli, slice_of
from tinydistill.cache import teacher_logits
from tinydistill.checkpoints import checkpoint_root, damage, latest, usable
from tinydistill.data.loaders import encode_examples
from tinydistill.data.readers import Examples
from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import check_model_folder


@pytest.fixture
def cached_entry(tmp_path, confident_teacher, tokenizer):
    """A teacher, a small encoded set, and the path of their freshly written cache entry."""
    teacher = BertForSequenceClassification.from_pretrained(confident_teacher).eval()
    data = encode_examples(Examples([f"sentence number {i}" for i in range(10)], None, None, "t"), tokenizer, 16)
    fresh = np.array(teacher_logits(teacher, data, tokenizer, 4, tmp_path))  # a copy: the entry is memory-mapped
    (entry,) = (tmp_path / "teacher-logits").glob("*.npy")
    return teacher, data, tokenizer, fresh, entry


def _damage_bytes(entry):
    raw = bytearray(entry.read_bytes())
    raw[-4:] = b"\xff\xff\xff\x7f"  # the last float becomes NaN: same size, same shape
    entry.write_bytes(bytes(raw))


def _reseal(entry):
    """Write the sidecar's checksum for the entry as it is now (damage the checksum alone cannot see)."""
    meta = json.loads(entry.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    entry.with_suffix(".json").write_text(json.dumps(meta))


def _nan_with_matching_sidecar(entry):
    arr = np.load(entry)
    arr[0, 0] = np.nan
    np.save(entry, arr)
    _reseal(entry)


def _wrong_shape(entry):
    np.save(entry, np.zeros((3, 2), dtype=np.float32))
    _reseal(entry)


def _wrong_dtype(entry):
    np.save(entry, np.load(entry).astype(np.float64))
    _reseal(entry)


@pytest.mark.parametrize(
    "spoil,reason",
    [
        (_damage_bytes, "checksum differs"),
        (lambda e: e.write_bytes(e.read_bytes()[:40]), "checksum differs"),
        (lambda e: e.with_suffix(".json").unlink(), "its .json sidecar is missing"),
        (_wrong_dtype, "dtype float64, expected float32"),
        (_nan_with_matching_sidecar, "holds NaN or infinite values"),
        (_wrong_shape, "shape (3, 2), expected (10, 2)"),
    ],
)
def test_a_damaged_cache_entry_is_named_discarded_and_rebuilt(capsys, cached_entry, spoil, reason):
    teacher, data, tokenizer, fresh, entry = cached_entry
    spoil(entry)
    capsys.readouterr()
    again = teacher_logits(teacher, data, tokenizer, 4, entry.parent.parent)
    out = capsys.readouterr().out
    assert f"teacher-logit cache entry {entry} is damaged ({reason}" in out and "computing its rows again" in out
    np.testing.assert_array_equal(again, fresh)
    capsys.readouterr()
    teacher_logits(teacher, data, tokenizer, 4, entry.parent.parent)
    assert "cached" in capsys.readouterr().out  # the rebuilt entry is good


def _model_copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _without_tokenizer(src, dst):
    """A model folder as some exports leave it: config.json and weights, no tokenizer files."""
    dst.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, dst / name)
    return dst


def test_a_model_folder_without_a_tokenizer_trains_on_nothing_so_it_is_refused(
    monkeypatch, capsys, tmp_path, tiny_classifier_dir, tiny_teacher_dir, glue
):
    data = ["--task", "sst-2", "--data-dir", str(glue / "SST-2"), "-s", "data.max_train_examples=16"]
    bare = _without_tokenizer(tiny_teacher_dir, tmp_path / "bare")
    code, _, err = run_cli(monkeypatch, capsys, "finetune", "--teacher", str(bare), *data, "-o", str(tmp_path / "ft"))
    assert code == 2 and f"{bare} has no usable tokenizer" in err and err.count("\n") == 1
    # a student checkpoint without one reads the teacher's tokenization (their vocabularies are checked to agree)
    teacher = _without_tokenizer(tiny_classifier_dir, tmp_path / "teacher")
    args = ["distill", "--stage", "prediction", "--teacher", str(teacher), "--student", str(teacher)]
    code, _, err = run_cli(monkeypatch, capsys, *args, *data, "-o", str(tmp_path / "d"))
    assert code == 2 and f"{teacher} has no usable tokenizer" in err
    assert not (tmp_path / "ft").exists() and not (tmp_path / "d").exists()


def test_damaged_model_folders_get_one_line_naming_the_file(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    truncated = _model_copy(tiny_classifier_dir, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    bad_json = _model_copy(tiny_classifier_dir, tmp_path / "bad_json")
    (bad_json / "config.json").write_text('{"model_type": "bert", "hidden')
    relabelled = _model_copy(tiny_classifier_dir, tmp_path / "relabelled")
    cfg = json.loads((relabelled / "config.json").read_text())
    cfg["id2label"], cfg["label2id"] = {"0": "a", "1": "b", "2": "c"}, {"a": 0, "b": 1, "c": 2}
    (relabelled / "config.json").write_text(json.dumps(cfg))
    not_model = tmp_path / "plain"
    not_model.mkdir()
    (not_model / "notes.txt").write_text("x")
    no_tokenizer = _without_tokenizer(tiny_classifier_dir, tmp_path / "no_tokenizer")
    bad_tokenizer = _model_copy(tiny_classifier_dir, tmp_path / "bad_tokenizer")
    (bad_tokenizer / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    cases = [
        (no_tokenizer, f"{no_tokenizer} has no usable tokenizer: it knows 5 tokens, the model embeds 30522"),
        (bad_tokenizer, f"{bad_tokenizer / 'tokenizer.json'} is damaged: not valid JSON"),
        (truncated, f"{weights} is damaged (truncated or corrupt"),
        (bad_json, f"{bad_json / 'config.json'} is damaged: not valid JSON"),
        (relabelled, "config.json declares 3 labels but the classifier head in model.safetensors has 2 outputs"),
        (not_model, f"{not_model} is not a model folder (no config.json)"),
    ]
    for folder, msg in cases:
        for args in (
            ["evaluate", str(folder), "--task", "sst-2", "--data-dir", str(glue / "SST-2")],
            ["export", str(folder), "-o", str(tmp_path / "export")],
            [
                "bench",
                str(folder),
                str(tiny_classifier_dir),
                "-o",
                str(tmp_path / "bench"),
                "-s",
                "data.task=sst-2",
                "-s",
                f"data.dir={glue / 'SST-2'}",
            ],
        ):
            code, _, err = run_cli(monkeypatch, capsys, *args)
            assert code == 2 and msg in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "export").exists() and not (tmp_path / "bench").exists()


def test_a_regression_head_is_not_read_as_a_label_mismatch(tmp_path, tokenizer):
    cfg = tiny_bert_config(tokenizer.vocab_size, num_labels=1, problem_type="regression")
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "reg")
    check_model_folder(tmp_path / "reg")  # no error


def _train_args(teacher, glue, out):
    settings = ["report.enabled=false", SMALL_STUDENT, "prediction.train.batch_size=8", "prediction.train.max_steps=8"]
    settings += ["prediction.train.checkpoint_every=2", "prediction.losses.hard_weight=0.5"]
    return distill_args(teacher, out, *slice_of(64, 16, 24), *settings, data=glue / "SST-2")


@pytest.mark.slow
def test_a_damaged_checkpoint_falls_back_to_the_one_before(monkeypatch, capsys, tmp_path, tiny_classifier_dir, glue):
    from tinydistill.stages import distill

    code, _, err = run_cli(monkeypatch, capsys, *_train_args(tiny_classifier_dir, glue, tmp_path / "whole"))
    assert code == 0, err
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):  # the command line's run, stopped after step 5
        distill(config_of(_train_args(tiny_classifier_dir, glue, out)), "prediction", callbacks=[StopAt(5)])
    newest = latest(checkpoint_root(out))
    assert newest.name == "step-00000004"
    model_file = next(newest.rglob("model.safetensors"))
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated after it was written
    assert "truncated" in damage(newest) and usable(checkpoint_root(out)).name == "step-00000002"
    code, stdout, err = run_cli(monkeypatch, capsys, *_train_args(tiny_classifier_dir, glue, out), "--resume")
    assert code == 0, err
    assert f"checkpoint {newest} is damaged" in stdout and "falling back to step-00000002" in stdout
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # still exactly the uninterrupted run


def test_no_intact_checkpoint_means_starting_over(tmp_path, capsys):
    root = tmp_path / "root"
    (root / "step-00000002").mkdir(parents=True)
    (root / "step-00000002" / "progress.json").write_text("{not json")
    assert usable(root) is None
    assert "no older checkpoint: the stage starts over" in capsys.readouterr().out


def test_load_errors_never_reach_the_user_raw(tmp_path, tiny_classifier_dir):
    from tinydistill.models import load_classifier
    from tinydistill.tasks import SequenceClassification

    folder = _model_copy(tiny_classifier_dir, tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"garbage" * 3)
    with pytest.raises(TinyDistillError, match="model.safetensors is damaged"):
        load_classifier(str(folder), SequenceClassification("sst-2", ["0", "1"], "accuracy"))
