"""ONNX export, int8 quantisation and the inference benchmark, on tiny random classifiers."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification
from typer.testing import CliRunner

from tinydistill.bench import bench, forward_flops
from tinydistill.cli import app
from tinydistill.errors import TinyDistillError
from tinydistill.export import (
    INT8_FILE,
    ONNX_FILE,
    OnnxClassifier,
    check_parity,
    export,
    export_onnx,
    sample_batch,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_classifier_dir, glue):
    from tinydistill.config import load_config

    cfg = load_config(
        None, ["data.task=sst-2", f"data.dir={glue / 'SST-2'}", "data.max_eval_examples=64", "data.max_length=32"]
    )
    out = tmp_path_factory.mktemp("export") / "student-onnx"
    return export(tiny_classifier_dir, out, cfg), out


@pytest.mark.slow
def test_onnx_matches_pytorch_on_new_batch_and_lengths(exported, tiny_classifier_dir, tokenizer):
    _, out = exported
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()
    onnx = OnnxClassifier(out / ONNX_FILE)
    # shapes never seen at export time: batch 1, batch 5 with heavy padding, a long row
    for texts in (["one"], ["a b c", "x", "some longer sentence here " * 3, "y z", "w"], ["long " * 60]):
        batch = sample_batch(tokenizer, texts, 128)
        with torch.inference_mode():
            ref = model(**batch).logits
        got = onnx(**batch).logits
        assert got.shape == ref.shape
        assert torch.allclose(got, ref, atol=1e-4), (got - ref).abs().max()


@pytest.mark.slow
def test_export_folder_is_self_contained_and_reports(exported):
    result, out = exported
    assert {ONNX_FILE, INT8_FILE, "config.json", "tokenizer.json", "export.json"} <= {p.name for p in out.iterdir()}
    on_disk = json.loads((out / "export.json").read_text())
    assert on_disk["max_abs_logit_diff"] <= 1e-4 and on_disk["parity_rows"] > 64
    assert set(on_disk["scores"]) == {"pytorch", "onnx", "onnx_int8"}
    assert on_disk["scores"]["onnx"] == pytest.approx(on_disk["scores"]["pytorch"], abs=1 / 64)
    # int8 really is quantised: a smaller file whose logits differ, but not wildly
    assert (out / INT8_FILE).stat().st_size < 0.6 * (out / ONNX_FILE).stat().st_size
    assert 0 < on_disk["int8_max_abs_logit_diff"] < 1.0


def test_parity_check_refuses_a_wrong_export(exported, tiny_classifier_dir, confident_teacher, tokenizer):
    _, out = exported
    other = AutoModelForSequenceClassification.from_pretrained(confident_teacher).eval()
    batch = sample_batch(tokenizer, ["a sentence", "another one here"], 32)
    with pytest.raises(TinyDistillError, match="differs from PyTorch"):
        check_parity(other, OnnxClassifier(out / ONNX_FILE), [batch])


@pytest.mark.slow
def test_export_without_token_type_ids(tmp_path, tokenizer):
    """Models whose tokenizer gives no token_type_ids (MPNet-style) export with two inputs."""
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=1)).eval()
    tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, model_input_names=["input_ids", "attention_mask"])
    path = export_onnx(model, tok, tmp_path / "m.onnx")
    onnx = OnnxClassifier(path)
    assert onnx.input_names == ["input_ids", "attention_mask"]
    batch = sample_batch(tok, ["abc def", "g"], 16)
    assert np.allclose(onnx(**batch).logits, model(**batch).logits.detach(), atol=1e-4)


def test_flops_scale_with_model_size(tiny_classifier_dir, tokenizer):
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config

    batch = sample_batch(tokenizer, ["a short one", "and a somewhat longer sentence"], 32)
    big = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=4))
    small = BertForSequenceClassification(tiny_bert_config(tokenizer.vocab_size, layers=2))
    ratio = forward_flops(big, batch) / forward_flops(small, batch)
    assert 1.8 < ratio <= 2.0  # the encoder layers dominate; the head and pooler are counted once


@pytest.mark.slow
def test_bench_scores_and_times_every_runtime(tmp_path, tiny_classifier_dir, confident_teacher, glue):
    from tinydistill.config import load_config

    cfg = load_config(
        None, ["data.task=sst-2", f"data.dir={glue / 'SST-2'}", "data.max_eval_examples=48", "data.max_length=32"]
    )
    result = bench(confident_teacher, tiny_classifier_dir, tmp_path / "b", cfg, examples=48)
    names = [r["model"] for r in result["rows"]]
    assert names == [f"{w} {r}" for w in ("teacher", "student") for r in ("pytorch", "onnx", "onnx_int8")]
    for row in result["rows"]:
        assert row["examples_per_s"] > 0 and row["latency_ms"] > 0 and 0 <= row["score"] <= 1
    by = {r["model"]: r for r in result["rows"]}
    assert by["teacher onnx"]["score"] == by["teacher pytorch"]["score"]
    assert result["flop_ratio"] == pytest.approx(1.0)  # same architecture, different weights
    assert "FLOP ratio" in (tmp_path / "b" / "bench.md").read_text()


@pytest.mark.slow
def test_cli_export_and_refusals(tmp_path, tiny_classifier_dir):
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(tiny_classifier_dir), "-o", str(tmp_path / "e"), "--no-int8"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e" / ONNX_FILE).is_file() and not (tmp_path / "e" / INT8_FILE).exists()
    with pytest.raises(TinyDistillError, match="unknown runtime"):
        bench(tiny_classifier_dir, tiny_classifier_dir, tmp_path / "b", runtimes=("tensorrt",))
