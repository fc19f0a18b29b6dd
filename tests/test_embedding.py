"""Sentence-embedding distillation (task: embedding): sentence-transformers folders in and out, the losses, the STS
metric, the data readers, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import AutoModel, BertModel

from tests.conftest import tiny_bert_config
from tinydistill.config import LossConfig, load_config
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import SentenceEmbedding, task_info
from tinydistill.tasks.embedding import EmbeddingSettings
from tinydistill.tasks.sentence_encoder import SentenceEncoder

STS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sts" / "stsbenchmark"
STS_COLUMNS = [
    "data.header=false",
    "data.quoting=false",
    "data.delimiter='\t'",
    "data.text_column=5",
    "data.text_pair_column=6",
    "data.label_column=4",
]


@pytest.fixture(scope="module")
def st_teacher(tmp_path_factory, tokenizer) -> Path:
    """A tiny random BERT as a sentence-transformers model: mean pooling, normalised (as all-mpnet-base-v2). Its
    weights are drawn wider than BERT's 0.02 (at 0.15) so sentences get distinct vectors: at 0.02 they nearly
    coincide, and what a student can still learn is below the noise of its own dropout."""
    path = tmp_path_factory.mktemp("st_teacher")
    torch.manual_seed(3)
    BertModel(tiny_bert_config(tokenizer.vocab_size, layers=2, hidden=32, initializer_range=0.15)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    st = SentenceTransformer(modules=[Transformer(str(path)), Pooling(32, "mean"), Normalize()], device="cpu")
    st.save(str(path))
    return path


def embedding_config(tmp_path, teacher, *extra: str):
    return load_config(
        None,
        [
            f"output_dir={tmp_path / 'run'}",
            f"teacher={teacher}",
            "data.task=embedding",
            f"data.train_file={STS / 'sts-train.csv'}",
            f"data.dev_file={STS / 'sts-dev.csv'}",
            *STS_COLUMNS,
            "data.max_length=32",
            "data.max_train_examples=160",
            "data.max_eval_examples=80",
            "student={layers: 1, hidden: 16, heads: 4, ffn: 32}",
            "prediction.train.epochs=2",
            "prediction.train.batch_size=16",
            "prediction.train.learning_rate=3e-3",
            "report.enabled=false",
            *extra,
        ],
    )


def test_teacher_folder_pooling_and_normalisation_are_honoured(st_teacher, tokenizer, tmp_path):
    cfg = embedding_config(tmp_path, st_teacher)
    task = task_info(cfg.data)
    model = task.auto_model.from_pretrained(str(st_teacher))
    sentences = ["A man is playing a guitar.", "Two dogs run on the beach in the sun."]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(**batch).logits.numpy()
    theirs = SentenceTransformer(str(st_teacher), device="cpu").encode(sentences)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_plain_encoder_needs_a_stated_pooling(tiny_teacher_dir, tokenizer, tmp_path):
    with pytest.raises(TinyDistillError, match="no pooling information.*data.embedding.pooling"):
        from tinydistill.stages import distill

        distill(embedding_config(tmp_path, tiny_teacher_dir), "prediction")
    task = task_info(embedding_config(tmp_path, tiny_teacher_dir, "data.embedding.pooling=cls").data)
    model = task.auto_model.from_pretrained(str(tiny_teacher_dir))
    batch = tokenizer(["One sentence here."], return_tensors="pt")
    with torch.no_grad():
        vec = model(**batch).logits
        cls = AutoModel.from_pretrained(tiny_teacher_dir)(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(vec, cls)


@pytest.fixture(scope="module")
def distilled(st_teacher, tmp_path_factory) -> tuple[Path, object]:
    from tinydistill.stages import distill

    tmp = tmp_path_factory.mktemp("embedding_run")
    cfg = embedding_config(tmp, st_teacher, f"data.test_file={STS / 'sts-test.csv'}")
    return distill(cfg, "prediction", tmp / "student"), cfg


@pytest.mark.slow
def test_distilled_student_loads_with_sentence_transformers_and_automodel(distilled):
    out, _ = distilled
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective_after"]["total"] < metrics["objective_before"]["total"]
    assert -1 <= metrics["dev"]["spearman"] <= 1
    st = SentenceTransformer(str(out), device="cpu")
    kinds = [type(m).__name__ for m in st]
    assert kinds == ["Transformer", "Pooling", "Dense", "Normalize"]  # 16 wide -> the teacher's 32, normalised
    vec = st.encode(["A cat sits on the mat.", "Stocks fell sharply on Monday."])
    assert vec.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    assert type(AutoModel.from_pretrained(out)).__name__ == "BertModel"
    # the same vectors through tinydistill's own loading (evaluate, export, bench use it)
    task = SentenceEmbedding("embedding")
    ours = task.auto_model.from_pretrained(str(out))
    batch = st.tokenizer(["A cat sits on the mat."], return_tensors="pt")
    with torch.no_grad():
        np.testing.assert_allclose(ours(**batch).logits.numpy()[0], vec[0], atol=1e-5)


@pytest.mark.slow
def test_intermediate_losses_train_an_embedding_student(st_teacher, tmp_path):
    from tinydistill.stages import distill

    cfg = embedding_config(
        tmp_path,
        st_teacher,
        "student={teacher_layers: [2]}",
        "intermediate.train.epochs=1",
        "intermediate.train.batch_size=16",
        "intermediate.losses.soft_weight=1",
    )
    out = distill(cfg, "intermediate", tmp_path / "inter")
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["objective_before"]) >= {"hidden", "attention", "soft"}
    assert m["objective_after"]["total"] < m["objective_before"]["total"]


def test_sentence_losses_against_hand_computed_values():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    mse = SentenceEmbedding("embedding").soft_loss(LossConfig(), s, t, None, torch.ones(2, 3))
    assert mse.item() == pytest.approx((1 + 1 + 0 + 1) / 4)
    task = SentenceEmbedding("embedding")
    task.settings.loss = "cosine"
    assert task.soft_loss(LossConfig(), s, t, None, torch.ones(2, 3)).item() == pytest.approx((1 + 0) / 2)
    task.settings.loss = "similarity"  # cosine matrices: the student's is the identity, the teacher's all ones
    assert task.soft_loss(LossConfig(), s, t, None, torch.ones(2, 3)).item() == pytest.approx((0 + 1 + 1 + 0) / 4)


def test_sts_metric_rejoins_pairs_in_any_order():
    task = SentenceEmbedding("embedding")
    # pair 0 identical (cos 1), pair 1 orthogonal (cos 0), pair 2 opposite-ish (cos -0.6): gold in the same order
    a = {0: [1, 0], 1: [1, 0], 2: [1, 0], 3: [0, 1], 4: [1, 0], 5: [-0.6, 0.8]}
    gold = [5.0, 2.0, 0.5]
    order = [5, 0, 3, 1, 4, 2]
    outputs = [np.asarray(a[k], dtype=float) for k in order]
    golds = [[k, gold[k // 2]] for k in order]
    assert task.metrics(outputs, golds)["spearman"] == pytest.approx(1.0)
    golds_reversed = [[k, gold[2 - k // 2]] for k in order]
    assert task.metrics(outputs, golds_reversed)["spearman"] == pytest.approx(-1.0)


def test_training_sentences_are_both_sides_once_and_transfer_files_add_more(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tb\nOne.\tTwo.\nTwo.\tThree.\n", encoding="utf-8")
    more = tmp_path / "more.txt"
    more.write_text("Four.\nOne.\n", encoding="utf-8")
    cfg = load_config(
        None,
        [
            "data.task=embedding",
            f"data.train_file={pairs}",
            "data.text_column=a",
            "data.text_pair_column=b",
            f"data.transfer_files=[{more}]",
        ],
    )
    task = task_info(cfg.data)
    assert task.read(cfg.data, "train").texts == ["One.", "Two.", "Three."]
    assert task.read_transfer(cfg.data, more).texts == ["Four.", "One."]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("g\tf\t2012\t1\t5.5\tA b.\tC d.\n", "score '5.5' is outside 0-5"),
        ("g\tf\t2012\t1\t-1\tA b.\tC d.\n", "score '-1' is outside 0-5"),
        ("g\tf\t2012\t1\tsame\tA b.\tC d.\n", "score 'same' is not a number"),
    ],
)
def test_bad_sts_scores_are_refused_with_the_row(tmp_path, content, message):
    dev = tmp_path / "dev.csv"
    dev.write_text("g\tf\t2012\t0\t3.0\tA b.\tC d.\n" + content, encoding="utf-8")
    cfg = embedding_config(tmp_path, "unused", f"data.dev_file={dev}")
    with pytest.raises(TinyDistillError, match=f"row 2: {message}"):
        task_info(cfg.data).read(cfg.data, "dev")


def test_other_bad_input_is_one_line(st_teacher, tmp_path):
    from tinydistill.stages import distill

    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tscore\nA b.\t3\n", encoding="utf-8")
    cfg = load_config(
        None, ["data.task=embedding", f"data.dev_file={dev}", "data.text_column=sentence", "data.label_column=score"]
    )
    with pytest.raises(TinyDistillError, match="needs two sentence columns and a score"):
        task_info(cfg.data).read(cfg.data, "dev")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TinyDistillError, match="train file .*empty.txt has no examples"):
        task_info(cfg.data).read(cfg.data.model_copy(update={"train_file": str(empty)}), "train")
    with pytest.raises(TinyDistillError, match="cannot be held out"):
        task_info(cfg.data.model_copy(update={"dev_file": None, "dev_fraction": 0.1}))
    narrow = embedding_config(tmp_path, st_teacher, "data.embedding.projection=none")
    with pytest.raises(TinyDistillError, match="16 dimensions, the teacher's 32"):
        distill(narrow, "prediction", tmp_path / "narrow")
    assert not (tmp_path / "narrow").exists()


def test_encoder_wrapper_exposes_the_backbone(st_teacher):
    model = SentenceEmbedding("embedding").auto_model.from_pretrained(str(st_teacher))
    assert isinstance(model, SentenceEncoder)
    assert model.config.model_type == "bert" and model.output_size == 32
    assert model.base_model is model.backbone.base_model
    from tinydistill.cache import teacher_fingerprint

    key = teacher_fingerprint(model)
    model.normalize = False  # other vectors from the same weights: another teacher-output cache entry
    assert teacher_fingerprint(model) != key


@pytest.mark.slow
def test_evaluate_export_and_compare_serve_embedding_models(distilled, st_teacher, tmp_path):
    from tinydistill.bench import bench
    from tinydistill.compare import compare
    from tinydistill.evaluate import evaluate
    from tinydistill.export import export

    out, cfg = distilled
    test = evaluate(cfg, out, "test")
    assert test["examples"] == 80 and -1 <= test["spearman"] <= 1
    result = export(out, tmp_path / "onnx", cfg)
    assert result["pipeline_tag"] == "feature-extraction" and result["onnx_output"] == "sentence_embedding"
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / result["onnx"]), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["sentence_embedding"]
    assert result["max_abs_logit_diff"] < 1e-4  # encoder + pooling + dense + normalisation in one graph
    assert result["scores"]["onnx"] == pytest.approx(result["scores"]["pytorch"], abs=1e-6)
    # a classification probe on frozen vectors: the word that decides the label is in every sentence's mean
    probe = {}
    for split, n in (("train", 60), ("dev", 20)):
        probe[split] = tmp_path / f"probe-{split}.jsonl"
        rows = [{"sentence": f"item {i} was {'good' if i % 2 else 'awful'}", "label": i % 2} for i in range(n)]
        probe[split].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    files = {"probe_train_file": str(probe["train"]), "probe_dev_file": str(probe["dev"])}
    with_probe = cfg.model_copy(update={"data": cfg.data.model_copy(update={"embedding": EmbeddingSettings(**files)})})
    assert evaluate(with_probe, out, "dev")["probe_accuracy"] >= 0.9
    rows = compare([out], tmp_path / "cmp", cfg=with_probe, teacher=st_teacher)  # a published teacher: any folder
    assert [r.kept_percent is not None for r in rows] == [True, True]
    assert all(0.9 <= r.side["probe_accuracy"] <= 1 for r in rows)
    assert "probe accuracy" in (tmp_path / "cmp" / "report.md").read_text()
    with pytest.raises(
        TinyDistillError, match="both data.embedding.probe_train_file and data.embedding.probe_dev_file"
    ):
        task_info(cfg.data.model_copy(update={"embedding": EmbeddingSettings(probe_train_file=str(probe["train"]))}))
    timed = bench(st_teacher, out, tmp_path / "b", cfg, examples=32, runtimes=("pytorch",), larger_batches=(64,))
    assert all(r["examples_per_s_at_64"] > 0 and r["score"] is not None for r in timed["rows"])
    assert "ex/s @64" in (tmp_path / "b" / "bench.md").read_text()


@pytest.mark.slow
def test_pipeline_skips_teacher_finetuning_and_chains_general_intermediate_prediction(st_teacher, tmp_path):
    from tinydistill.compare import compare
    from tinydistill.pipeline import pipeline

    cfg = embedding_config(
        tmp_path,
        st_teacher,
        "general.enabled=true",
        "general.max_passages=64",
        "general.max_length=32",
        "general.train.epochs=1",
        "intermediate.train.epochs=1",
        "report.enabled=true",
        "report.speed_examples=16",
    )
    messages: list[str] = []
    summary = pipeline(cfg, log=messages.append)
    run = tmp_path / "run"
    assert any("stage 2 (teacher fine-tuning): not needed" in m for m in messages)
    assert not (run / "2-teacher").exists()
    assert set(summary["stages"]) == {"1-general", "3-intermediate", "4-prediction"}
    assert summary["metric"] == "spearman" and summary["rows"]["teacher"]["score"] is not None
    assert [type(m).__name__ for m in SentenceTransformer(str(run / "4-prediction"), device="cpu")][-1] == "Normalize"
    rows = compare([run], tmp_path / "cmp", cfg=cfg)  # the run's teacher is the published folder
    assert len(rows) == 2


def test_a_published_student_takes_the_teachers_pooling_normalisation_and_width(st_teacher, tokenizer, tmp_path):
    path = tmp_path / "cls_student"
    torch.manual_seed(4)
    BertModel(tiny_bert_config(tokenizer.vocab_size, layers=1, hidden=16)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    SentenceTransformer(modules=[Transformer(str(path)), Pooling(16, "cls")], device="cpu").save(str(path))
    task = SentenceEmbedding("embedding")
    teacher = task.auto_model.from_pretrained(str(st_teacher))
    student = task.student_for(task.auto_model.from_pretrained(str(path)), teacher)
    assert student.pooling.pooling_mode == "mean" and student.normalize
    assert student.output_size == 32 and student.dense.linear.in_features == 16
    batch = tokenizer(["A short one.", "A somewhat longer second sentence."], padding=True, return_tensors="pt")
    with torch.no_grad():
        np.testing.assert_allclose(student(**batch).logits.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    task.settings.loss = "similarity"  # compares similarities: the student keeps its width, no Dense layer
    own = task.student_for(task.auto_model.from_pretrained(str(path)), teacher)
    assert own.dense is None and own.output_size == 16 and own.pooling.pooling_mode == "mean" and own.normalize


def test_least_squares_start_recovers_a_linear_map():
    from tinydistill.tasks.sentence_encoder import least_squares

    g = torch.Generator().manual_seed(0)
    x, a, b = torch.randn(300, 8, generator=g), torch.randn(8, 12, generator=g), torch.randn(12, generator=g)
    linear = torch.nn.Linear(8, 12)
    least_squares(linear, x, x @ a + b, ridge=0)
    with torch.no_grad():
        np.testing.assert_allclose(linear(x).numpy(), (x @ a + b).numpy(), atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("projection", ["dense", "pca"])
def test_the_projection_starts_fitted_to_the_teacher(st_teacher, tokenizer, projection):
    """A new Dense layer starts as the least-squares map (lower loss than its random start); with pca the targets are
    the teacher's vectors in its principal axes, at the student's width."""
    from torch.utils.data import DataLoader

    cfg = embedding_config(Path("."), st_teacher, f"data.embedding.projection={projection}").data
    task = task_info(cfg)
    teacher = task.auto_model.from_pretrained(str(st_teacher)).eval()
    torch.manual_seed(5)
    student = task.student_for(BertModel(tiny_bert_config(tokenizer.vocab_size, layers=1, hidden=16)), teacher)
    assert student.dense_is_new and student.output_size == (16 if projection == "pca" else 32)
    rows = task.encode(task.read(cfg, "train"), tokenizer, 32)
    loader = DataLoader(rows, batch_size=40, collate_fn=task.collator(tokenizer))

    def loss() -> float:
        with torch.no_grad():
            batch = next(iter(loader))
            ins = {k: batch[k] for k in ("input_ids", "attention_mask")}
            return task.soft_loss(LossConfig(), student.eval()(**ins).logits, teacher(**ins).logits, None, None).item()

    before = loss() if projection == "dense" else None
    task.prepare(student, teacher, loader)
    after = loss()
    if projection == "pca":
        assert task.components.shape == (16, 32)
        reduced = task.reduced(torch.randn(3, 32))
        np.testing.assert_allclose(reduced.norm(dim=-1).numpy(), 1.0, atol=1e-5)
        np.testing.assert_allclose((task.components @ task.components.T).numpy(), np.eye(16), atol=1e-4)
        assert after < 2 / 16  # unit vectors: a random start is ~2/width away
    else:
        assert after < 0.5 * before
