"""Teacher-target cache: a replayed recording equals the live one at real tokens, gives the same losses and the same
training; entries are reused, damaged ones recomputed; over budget or unreplayable settings run the teacher live."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config
from tinydistill.capture import Recorder, capture
from tinydistill.config import LossConfig, load_config
from tinydistill.data.keys import TARGET_ROW
from tinydistill.data.loaders import EncodedDataset, make_loader
from tinydistill.errors import TinyDistillError
from tinydistill.objectives import build_terms, capture_plan, make_projections, setup_between, setup_for
from tinydistill.stages import distill
from tinydistill.targets import _hides_real_tokens, teacher_targets, with_target_rows
from tinydistill.terms import CapturePlan
from tinydistill.trainer import Trainee, _step_losses

TEXTS = ["a good film", "an utterly tedious and overlong mess of a film", "fine", "not bad at all, really"]
LOSSES = {
    "embedding_weight": 1,
    "hidden_weight": 1,
    "attention_weight": 1,
    "relation_weight": 1,
    "relation_heads": 4,
    "soft_weight": 1,
}


@pytest.fixture
def models(tokenizer):
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=4, num_labels=2)).eval()
    student = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=2, hidden=16, num_labels=2))
    return teacher, student.eval()


def _data(tokenizer, texts=TEXTS) -> EncodedDataset:
    return EncodedDataset([dict(tokenizer(t)) for t in texts])


def _plan(losses: LossConfig, student, teacher):
    setup = setup_between(losses, student, teacher, None)
    return setup, capture_plan(losses, setup)


def test_replay_equals_the_live_recording_at_real_tokens(tmp_path, tokenizer, models):
    teacher, student = models
    losses = LossConfig(**LOSSES)
    _, plan = _plan(losses, student, teacher)
    data = _data(tokenizer)
    store = teacher_targets(teacher, data, tokenizer, plan, True, 2, budget_gb=1, cache_dir=tmp_path)
    batch = next(iter(make_loader(with_target_rows(data), tokenizer, 4, shuffle=False)))
    rec, logits = store.replay(batch[TARGET_ROW], batch["input_ids"].shape[1])
    with capture(teacher, plan.teacher_hidden, plan.teacher_attention, plan.teacher_qkv) as live, torch.no_grad():
        out = teacher(**{k: v for k, v in batch.items() if k != TARGET_ROW})
    mask = batch["attention_mask"].bool()
    assert set(rec.hidden) == set(live.hidden) == {0, 2, 4}
    assert set(rec.scores) == {2, 4} and set(rec.qkv) == {4}
    for n in rec.hidden:
        torch.testing.assert_close(rec.hidden[n][mask], live.hidden[n][mask], atol=2e-3, rtol=2e-3)
        assert not rec.hidden[n][~mask].any()  # padding replays as zeros
    pair = mask[:, None, :, None] & mask[:, None, None, :]
    for n in rec.scores:
        torch.testing.assert_close(
            rec.scores[n][pair.expand_as(live.scores[n])],
            live.scores[n][pair.expand_as(live.scores[n])],
            atol=2e-3,
            rtol=2e-3,
        )
    for mine, theirs in zip(rec.qkv[4], live.qkv[4]):
        torch.testing.assert_close(mine[mask], theirs[mask], atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(logits, out.logits, atol=2e-3, rtol=2e-3)


def test_replayed_and_live_teacher_give_the_same_losses(tmp_path, tokenizer, models):
    from tinydistill.config import DataConfig
    from tinydistill.tasks import task_info

    teacher, student = models
    task = task_info(DataConfig(task="sst-2", dir=str(tmp_path)))
    losses = LossConfig(**LOSSES)
    setup, plan = _plan(losses, student, teacher)
    setup = setup_for(setup.pairs, task, student.config, teacher.config)
    terms = build_terms(losses, setup, has_teacher=True)
    data = _data(tokenizer)
    for row, label in zip(data.rows, [1, 0, 1, 1]):
        row["labels"] = label
    store = teacher_targets(teacher, data, tokenizer, plan, True, 3, budget_gb=1, cache_dir=tmp_path)
    trainee = Trainee(student, make_projections(losses, setup, 16, 32)).eval()
    batch = next(iter(make_loader(with_target_rows(data), tokenizer, 4, shuffle=False)))
    with (
        capture(student, plan.student_hidden, plan.student_attention, plan.student_qkv) as s_rec,
        capture(teacher, plan.teacher_hidden, plan.teacher_attention, plan.teacher_qkv) as t_rec,
        torch.no_grad(),
    ):
        trainee.recorder = s_rec
        live = _step_losses(trainee, teacher, batch, terms, (s_rec, t_rec))
        replayed = _step_losses(trainee, None, batch, terms, (s_rec, None), targets=store)
    assert set(live) == {"soft", "embedding", "hidden", "attention", "relation"}
    for name in live:
        assert float(replayed[name]) == pytest.approx(float(live[name]), rel=2e-3, abs=1e-5), name


def test_an_entry_is_reused_and_a_damaged_one_recomputed(tmp_path, tokenizer, models, capsys):
    teacher, student = models
    _, plan = _plan(LossConfig(hidden_weight=1), student, teacher)
    data = _data(tokenizer)
    first = teacher_targets(teacher, data, tokenizer, plan, False, 2, budget_gb=1, cache_dir=tmp_path)
    calls = []
    handle = teacher.register_forward_hook(lambda *_: calls.append(1))
    again = teacher_targets(teacher, data, tokenizer, plan, False, 2, budget_gb=1, cache_dir=tmp_path)
    assert not calls and again.folder == first.folder
    np.testing.assert_array_equal(again.row("hidden.2", 1), first.row("hidden.2", 1))
    assert again.row("hidden.2", 1).shape == (len(data.rows[1]["input_ids"]), 32)
    expected = np.array(first.row("hidden.2", 3))  # a copy: the damage below rewrites the mapped file
    victim = first.folder / "hidden.2.npy"
    victim.write_bytes(victim.read_bytes()[:-64])  # a truncated file
    capsys.readouterr()
    fixed = teacher_targets(teacher, data, tokenizer, plan, False, 2, budget_gb=1, cache_dir=tmp_path)
    assert "damaged" in capsys.readouterr().out and calls
    np.testing.assert_array_equal(fixed.row("hidden.2", 3), expected)
    handle.remove()
    other = teacher_targets(teacher, _data(tokenizer, TEXTS[:2]), tokenizer, plan, False, 2, 1, tmp_path)
    assert other.folder != first.folder  # other inputs: another entry
    assert not list((tmp_path / "teacher-targets").glob("*.tmp-*"))  # nothing half-written left behind


def test_no_entry_over_budget_or_disk_or_without_build(tmp_path, tokenizer, models, capsys, monkeypatch):
    teacher, student = models
    _, plan = _plan(LossConfig(attention_weight=1), student, teacher)
    data = _data(tokenizer)
    assert teacher_targets(teacher, data, tokenizer, plan, False, 2, budget_gb=1e-9, cache_dir=tmp_path) is None
    out = capsys.readouterr().out
    assert "over teacher_cache_gb = 1e-09" in out and "the teacher runs live" in out
    monkeypatch.setattr("tinydistill.targets.shutil.disk_usage", lambda _p: SimpleNamespace(free=int(1e9) + 1000))
    assert teacher_targets(teacher, data, tokenizer, plan, False, 2, budget_gb=1, cache_dir=tmp_path) is None
    assert "has 1.0 GB free" in capsys.readouterr().out  # a gigabyte stays free for everything else
    monkeypatch.undo()
    assert teacher_targets(teacher, data, tokenizer, plan, False, 2, 1, tmp_path, build=False) is None
    assert not (tmp_path / "teacher-targets").exists() or not any((tmp_path / "teacher-targets").iterdir())


def test_a_layer_whose_own_mask_hides_real_tokens_is_found():
    rec = Recorder()
    mask = torch.tensor([[1, 1, 1, 0]])
    rec.allowed[1] = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    rec.allowed[2] = None
    window = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    window[..., 0, 2] = False  # a local layer: query 0 does not see the real key 2
    rec.allowed[3] = window
    assert _hides_real_tokens(rec, mask) == [3]
    rec.allowed[3] = torch.ones(1, 1, 4, 4, dtype=torch.bool).logical_and(mask.bool()[:, None, None, :])
    assert _hides_real_tokens(rec, mask) == []  # padding alone is what replay reproduces


def _stage_cfg(teacher, glue, tmp_path, *extra):
    return load_config(
        None,
        [
            f"teacher={teacher}",
            "data.task=sst-2",
            f"data.dir={glue / 'SST-2'}",
            "data.max_train_examples=48",
            "data.max_eval_examples=16",
            "data.max_length=24",
            "student={layers: 2, hidden: 32, heads: 4, ffn: 64}",
            "intermediate.train.epochs=2",
            "intermediate.train.batch_size=8",
            "intermediate.train.learning_rate=1e-3",
            "intermediate.train.log_every=1",
            "intermediate.losses={embedding_weight: 1, hidden_weight: 1, attention_weight: 1}",
            "report.enabled=false",
            f"cache_dir={tmp_path / 'cache'}",
            *extra,
        ],
    )


@pytest.mark.slow
def test_a_multi_epoch_stage_trains_the_same_on_cached_targets(tmp_path, confident_teacher, glue, capsys):
    live = distill(
        _stage_cfg(confident_teacher, glue, tmp_path, "intermediate.teacher_cache=false"),
        "intermediate",
        tmp_path / "live",
    )
    assert not (tmp_path / "cache" / "teacher-targets").exists()
    capsys.readouterr()
    cached = distill(_stage_cfg(confident_teacher, glue, tmp_path), "intermediate", tmp_path / "cached")
    assert "teacher targets: caching" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "teacher-targets").iterdir())) == 1
    h_live, h_cached = (json.loads((d / "metrics.json").read_text())["history"] for d in (live, cached))
    assert len(h_live) == len(h_cached) == 12
    for a, b in zip(h_live, h_cached):  # same steps, data and dropout; targets differ by float16 rounding
        for term in ("embedding", "hidden", "attention"):
            assert b[term] == pytest.approx(a[term], rel=5e-3), (a["step"], term)
    a, b = load_file(str(live / "model.safetensors")), load_file(str(cached / "model.safetensors"))
    table = "bert.embeddings.word_embeddings.weight"
    assert all(torch.allclose(a[k], b[k], atol=2e-3) for k in a if k != table)
    # a token row seen once gets a gradient near 0, whose sign float16 rounding can flip; Adam then moves it by up to
    # lr per step either way (1e-3 here): a few rows may differ by that much, the table as a whole does not
    gap = (a[table] - b[table]).abs()
    assert gap.mean() < 1e-6 and (gap > 2e-3).sum() <= 20 and gap.max() < 12 * 1e-3


@pytest.mark.slow
def test_one_pass_or_tinybert_arithmetic_runs_the_teacher_live(tmp_path, confident_teacher, glue, capsys):
    one = ["intermediate.train.epochs=1"]
    distill(_stage_cfg(confident_teacher, glue, tmp_path, *one), "intermediate", tmp_path / "one")
    assert "reads each row 1.0 time(s)" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "teacher-targets").exists()
    distill(
        _stage_cfg(confident_teacher, glue, tmp_path, "intermediate.losses.mode=tinybert"),
        "intermediate",
        tmp_path / "tb",
    )
    assert "embedding, hidden, attention read(s) the teacher at padding" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "teacher-targets").exists()
    forced = [*one, "intermediate.teacher_cache=true"]
    distill(_stage_cfg(confident_teacher, glue, tmp_path, *forced), "intermediate", tmp_path / "forced")
    assert len(list((tmp_path / "cache" / "teacher-targets").iterdir())) == 1
    capsys.readouterr()
    distill(_stage_cfg(confident_teacher, glue, tmp_path, *one), "intermediate", tmp_path / "again")
    assert "teacher targets: cached" in capsys.readouterr().out  # one pass, but the entry exists: it is read


def test_a_local_attention_teacher_is_not_cached(tmp_path, tokenizer, capsys):
    """ModernBERT's local layers (window 4 here) hide real tokens that replay (padding only) would show."""
    from transformers import AutoModel

    from tests.helpers import tiny_config

    torch.manual_seed(0)
    teacher = AutoModel.from_config(tiny_config("modernbert")).eval()
    rows = [{"input_ids": list(range(5, 5 + n)), "attention_mask": [1] * n} for n in (3, 3, 12, 12)]
    plan = CapturePlan(teacher_attention=[1, 2])
    assert teacher_targets(teacher, EncodedDataset(rows), tokenizer, plan, False, 2, 1, tmp_path) is None
    assert "layer(s) [2] attend locally" in capsys.readouterr().out  # in the 2nd batch: short rows come first
    assert not list(tmp_path.rglob("*.npy"))


def test_the_least_recently_used_entries_make_room_within_the_budget(tmp_path, tokenizer, models, capsys):
    teacher, student = models
    _, plan = _plan(LossConfig(hidden_weight=1), student, teacher)

    def entry(texts, budget_gb=1.0):
        return teacher_targets(teacher, _data(tokenizer, texts), tokenizer, plan, False, 2, budget_gb, tmp_path)

    old, recent = entry(TEXTS[:2]), entry(TEXTS[2:])
    entry(TEXTS[:2])  # read again: now the most recently used
    size = {e: sum(f.stat().st_size for f in e.folder.iterdir()) for e in (old, recent)}
    capsys.readouterr()
    new = entry(TEXTS, budget_gb=(2 * size[old] + size[recent]) / 1e9)  # room for old and new (old + recent)
    assert f"removing the least recently used entry {recent.folder}" in capsys.readouterr().out
    assert old.folder.is_dir() and new.folder.is_dir() and not recent.folder.exists()


def test_a_wrong_cache_setting_is_one_line_naming_the_choices():
    for setting, message in (
        ("intermediate.teacher_cache=sometimes", "intermediate.teacher_cache: Input should be 'auto', True or False"),
        (
            "intermediate.teacher_cache_gb=-1",
            "intermediate.teacher_cache_gb: Input should be greater than or equal to 0",
        ),
    ):
        with pytest.raises(TinyDistillError, match=re.escape(message)) as err:
            load_config(None, [setting])
        assert "\n" not in str(err.value)
