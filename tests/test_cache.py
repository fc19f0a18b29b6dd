"""Teacher-output cache: cached and live distillation give the same losses; keys invalidate; no stale reads."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tinydistill.cache import inputs_fingerprint, teacher_logits
from tinydistill.config import load_config
from tinydistill.data.loaders import EncodedDataset
from tinydistill.stages import distill


def _cfg(teacher, glue, tmp_path, *extra):
    return load_config(
        None,
        [
            f"teacher={teacher}",
            "data.task=sst-2",
            f"data.dir={glue / 'SST-2'}",
            "data.max_train_examples=64",
            "data.max_eval_examples=32",
            "data.max_length=24",
            "student={layers: 2, hidden: 32, heads: 4, ffn: 64}",
            "prediction.train.epochs=2",
            "prediction.train.batch_size=8",
            "prediction.train.learning_rate=1e-3",
            "prediction.train.log_every=1",
            "report.enabled=false",
            f"cache_dir={tmp_path / 'cache'}",
            *extra,
        ],
    )


@pytest.mark.slow
def test_cached_and_live_distillation_give_the_same_losses(tmp_path, confident_teacher, glue):
    live = distill(
        _cfg(confident_teacher, glue, tmp_path, "prediction.teacher_cache=false"), "prediction", tmp_path / "live"
    )
    assert not (tmp_path / "cache").exists()
    cached = distill(_cfg(confident_teacher, glue, tmp_path), "prediction", tmp_path / "cached")
    assert len(list((tmp_path / "cache" / "teacher-logits").glob("*.npy"))) == 1
    h_live, h_cached = (json.loads((d / "metrics.json").read_text())["history"] for d in (live, cached))
    assert len(h_live) == len(h_cached) == 16
    for a, b in zip(h_live, h_cached):  # same steps, same data, same dropout; logits differ only by padding
        assert a["soft"] == pytest.approx(b["soft"], rel=1e-4, abs=1e-5)
    a, b = load_file(str(live / "model.safetensors")), load_file(str(cached / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_cache_keys_follow_teacher_and_inputs(tmp_path, confident_teacher, tiny_classifier_dir, tokenizer):
    from tinydistill.models import load_classifier
    from tinydistill.tasks import SequenceClassification

    task = SequenceClassification("sst-2", ["0", "1"], "accuracy")
    teacher = load_classifier(str(confident_teacher), task).eval()
    rows = [dict(tokenizer("a good film")), dict(tokenizer("a bad film"))]
    data = EncodedDataset(rows)
    first = teacher_logits(teacher, data, tokenizer, 8, tmp_path)
    again = teacher_logits(teacher, data, tokenizer, 8, tmp_path)
    np.testing.assert_array_equal(first, again)
    assert len(list((tmp_path / "teacher-logits").glob("*.npy"))) == 1
    truncated = EncodedDataset([dict(tokenizer("a good film", max_length=3, truncation=True)), rows[1]])
    assert inputs_fingerprint(truncated) != inputs_fingerprint(data)
    teacher_logits(teacher, truncated, tokenizer, 8, tmp_path)  # other inputs: a new entry
    other = load_classifier(str(tiny_classifier_dir), task).eval()
    other_logits = teacher_logits(other, data, tokenizer, 8, tmp_path)  # other teacher: a new entry
    assert len(list((tmp_path / "teacher-logits").glob("*.npy"))) == 3
    assert not np.allclose(other_logits, first)


@pytest.mark.slow
def test_a_stage_reading_the_teachers_layers_caches_them_not_its_logits(tmp_path, confident_teacher, glue):
    distill(_cfg(confident_teacher, glue, tmp_path, "prediction.losses.hidden_weight=1"), "prediction", tmp_path / "s")
    assert not (tmp_path / "cache" / "teacher-logits").exists()  # hidden states are needed every step:
    assert len(list((tmp_path / "cache" / "teacher-targets").iterdir())) == 1  # the target cache holds them


@pytest.mark.slow
def test_hard_label_only_stage_never_runs_the_teacher(tmp_path, confident_teacher, glue):
    """soft_weight 0 and no intermediate loss: plain fine-tuning, so the teacher's forward is skipped entirely."""
    from tinydistill.trainer import Callback

    teachers = []

    class Teacher(Callback):
        def on_train_begin(self, state, run):
            teachers.append(run.teacher)

    hard = _cfg(confident_teacher, glue, tmp_path, "prediction.losses={soft_weight: 0, hard_weight: 1}")
    out = distill(
        hard.model_copy(update={"report": hard.report.model_copy(update={"enabled": False})}),
        "prediction",
        tmp_path / "hard",
        callbacks=[Teacher()],
    )
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert teachers == [None] and "hard" in history[0] and "soft" not in history[0]
    live = _cfg(confident_teacher, glue, tmp_path, "prediction.teacher_cache=false")
    distill(live, "prediction", tmp_path / "soft", callbacks=[Teacher()])
    assert teachers[1] is not None  # a stage whose loss reads the teacher does run it


def test_sentence_vectors_are_stored_in_16_bits_and_read_back_memory_mapped(tmp_path, confident_teacher, tokenizer):
    from tinydistill.cache import with_teacher_logits
    from tinydistill.data.loaders import PadBoth
    from tinydistill.models import load_classifier
    from tinydistill.tasks import SequenceClassification

    teacher = load_classifier(str(confident_teacher), SequenceClassification("sst-2", ["0", "1"], "accuracy")).eval()
    data = EncodedDataset([dict(tokenizer(t)) for t in ("a good film", "a bad film", "fine")])
    exact = teacher_logits(teacher, data, tokenizer, 8, tmp_path / "a")
    half = teacher_logits(teacher, data, tokenizer, 8, tmp_path / "b", store="float16")
    again = teacher_logits(teacher, data, tokenizer, 8, tmp_path / "b", store="float16")  # from the cache
    (entry,) = (tmp_path / "b" / "teacher-logits").glob("*.npy")
    assert np.load(entry).dtype == np.float16 and isinstance(again, np.memmap)
    np.testing.assert_allclose(np.asarray(half, dtype=np.float32), exact, rtol=1e-3, atol=1e-3)
    rows = with_teacher_logits(data, again).rows
    batch = PadBoth(tokenizer, None)(rows)
    assert batch["cached_logits"].dtype == torch.float32 and batch["cached_logits"].shape == (3, 2)


def _counting(model):
    """``model`` with a list that records how many rows each forward pass ran."""
    seen = []
    model.register_forward_pre_hook(lambda _m, _a, kw: seen.append(len(kw["input_ids"])), with_kwargs=True)
    return model, seen


def test_rows_another_set_holds_are_read_back_and_only_new_rows_computed(
    capsys, tmp_path, tiny_classifier_dir, tokenizer
):
    from transformers import BertForSequenceClassification

    teacher, seen = _counting(BertForSequenceClassification.from_pretrained(tiny_classifier_dir).eval())
    texts = [f"sentence number {i}" for i in range(10)]
    originals = EncodedDataset([dict(tokenizer(t)) for t in texts[:6]])
    teacher_logits(teacher, originals, tokenizer, 4, tmp_path)
    seen.clear()
    capsys.readouterr()
    both = EncodedDataset([dict(tokenizer(t)) for t in texts[9:3:-1] + texts[:4]])  # originals mixed with new rows
    logits = teacher_logits(teacher, both, tokenizer, 4, tmp_path)
    assert sum(seen) == 4 and "6 of 10 rows cached, computing the rest" in capsys.readouterr().out
    with torch.no_grad():
        direct = [teacher(**{k: torch.tensor([v]) for k, v in row.items()}).logits[0].numpy() for row in both.rows]
    np.testing.assert_allclose(np.stack(logits), np.stack(direct), atol=1e-5)


@pytest.mark.parametrize("per_token", [False, True])
def test_an_interrupted_run_keeps_its_finished_segments(monkeypatch, tmp_path, tokenizer, per_token):
    from transformers import BertForSequenceClassification, BertForTokenClassification

    from tests.conftest import tiny_bert_config
    from tinydistill import cache

    monkeypatch.setattr(cache, "SEGMENT_ROWS", 4)
    torch.manual_seed(0)
    kind = BertForTokenClassification if per_token else BertForSequenceClassification
    teacher, seen = _counting(kind(tiny_bert_config(tokenizer.vocab_size, num_labels=3)).eval())
    data = EncodedDataset([dict(tokenizer("word " * (i % 5 + 1))) for i in range(10)])

    def stop_at_third_batch(_module, _args, _kwargs):
        if len(seen) == 3:
            raise KeyboardInterrupt

    stop = teacher.register_forward_pre_hook(stop_at_third_batch, with_kwargs=True)
    with pytest.raises(KeyboardInterrupt):  # 2 batches of 2 rows made the first segment of 4
        teacher_logits(teacher, data, tokenizer, 2, tmp_path, per_token=per_token)
    stop.remove()
    assert not list((tmp_path / "teacher-logits").glob("*.tmp-*"))
    seen.clear()
    logits = teacher_logits(teacher, data, tokenizer, 2, tmp_path, per_token=per_token)
    assert sum(seen) == 6 and len(list((tmp_path / "teacher-logits").glob("*.npy"))) == 3
    with torch.no_grad():
        for row, got in zip(data.rows, logits):
            direct = teacher(**{k: torch.tensor([v]) for k, v in row.items()}).logits[0].numpy()
            np.testing.assert_allclose(got, direct, atol=1e-5)


def test_the_least_recently_used_segments_make_room_but_never_those_a_run_reads(
    capsys, tmp_path, tiny_classifier_dir, tokenizer
):
    from transformers import BertForSequenceClassification

    teacher, seen = _counting(BertForSequenceClassification.from_pretrained(tiny_classifier_dir).eval())
    sets = {name: EncodedDataset([dict(tokenizer(f"{name} sentence {i}")) for i in range(10)]) for name in "abcd"}
    folder = tmp_path / "teacher-logits"
    budget = 440e-9  # two segments of 10 rows x 2 labels (208 bytes each) and a few rows more

    def segments() -> set:
        return {p.name for p in folder.glob("*.npy")}

    teacher_logits(teacher, sets["a"], tokenizer, 4, tmp_path, budget_gb=budget)
    (a,) = segments()
    teacher_logits(teacher, sets["b"], tokenizer, 4, tmp_path, budget_gb=budget)
    (b,) = segments() - {a}
    teacher_logits(teacher, sets["a"], tokenizer, 4, tmp_path, budget_gb=budget)  # read back: a is now the newer
    capsys.readouterr()
    teacher_logits(teacher, sets["c"], tokenizer, 4, tmp_path, budget_gb=budget)
    assert f"removing the least recently used segment {folder / b}" in capsys.readouterr().out
    assert a in segments() and b not in segments() and len(segments()) == 2
    (c,) = segments() - {a}
    seen.clear()
    grown = EncodedDataset(sets["a"].rows + sets["d"].rows[:4])  # a is the oldest now, but this run reads it
    logits = teacher_logits(teacher, grown, tokenizer, 4, tmp_path, budget_gb=budget)
    assert sum(seen) == 4 and len(logits) == 14
    assert a in segments() and f"least recently used segment {folder / a}" not in capsys.readouterr().out
    assert c not in segments() and len(segments()) == 2  # c made room instead
