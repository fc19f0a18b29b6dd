"""``tinydistill export``: a model folder to ONNX (dynamic batch and length), checked against PyTorch,
optionally with an int8 copy (onnxruntime dynamic quantisation).

The export folder is self-contained: ``model.onnx`` (and ``model.int8.onnx``), the tokenizer files,
``config.json`` (label names) and ``export.json`` with the parity check and, when data is given, the
dev metric of each ONNX model.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig

from tinydistill.errors import TinyDistillError
from tinydistill.evaluate import evaluate_model
from tinydistill.model_folders import exists_or_hub
from tinydistill.models import load_tokenizer, quietly, usable_length
from tinydistill.outputs import StagingDir, write_json
from tinydistill.tasks import Task, task_info, task_of_model
from tinydistill.ui import say

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
EXPORT_FILE = "export.json"
PARITY_TOLERANCE = 1e-4
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    except ImportError as exc:
        raise TinyDistillError(
            f"ONNX export needs the 'export' extra: pip install 'tinydistill[export]' ({exc.name} is missing)"
        ) from None
    return onnxruntime


class _LogitsOnly(nn.Module):
    """The classifier with positional inputs and its logits as the output, the shape ONNX wants; with ``split``,
    the logits' last axis as that many outputs (a QA model's start and end logits)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], split: bool = False) -> None:
        super().__init__()
        self.model, self.names, self.split = model, names, split

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        logits = self.model(**dict(zip(self.names, inputs))).logits
        return tuple(logits.unbind(-1)) if self.split else logits


def output_names(output: str | tuple[str, ...]) -> list[str]:
    """A kind's ONNX output name(s) as a list: several names are the logits' last axis, one each."""
    return [output] if isinstance(output, str) else list(output)


def model_inputs(tokenizer) -> tuple[str, ...]:
    """The encoder inputs the tokenizer produces (MPNet has no token_type_ids; BERT has)."""
    return tuple(n for n in INPUT_NAMES if n in tokenizer.model_input_names)


def sample_batch(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Padded int64 tensors for ``texts`` (rows of different lengths, so padding is exercised)."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: enc[k] for k in model_inputs(tokenizer)}


def export_onnx(
    model: nn.Module, tokenizer, path: str | Path, opset: int = 18, output: str | tuple[str, ...] = "logits"
) -> Path:
    """Write ``model`` (a classifier, sentence encoder or QA model, eval mode) to ONNX with dynamic batch and sequence
    axes; its output is named ``output`` (several names: the logits' last axis, one output each)."""
    _require_onnx()
    names = model_inputs(tokenizer)
    # batch 2 and length > 2 in the example: torch.export specialises dimensions of size 0 and 1
    example = sample_batch(tokenizer, ["an example sentence for tracing the graph", "a shorter one"], 32)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = (tuple({0: batch, 1: length} for _ in names),)  # one entry: the *inputs tuple
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "onnxscript", "torch.export", "torch._dynamo"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _LogitsOnly(model, names, split=not isinstance(output, str)),
            tuple(example[n] for n in names),
            str(path),
            dynamo=True,
            input_names=list(names),
            output_names=output_names(output),
            dynamic_shapes=dynamic,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    model.train(was_training)
    return path


class _quiet_loggers:
    """Silence chatty loggers (the exporter prints its progress at INFO/WARNING) for a ``with`` block."""

    def __init__(self, *names: str) -> None:
        self.loggers = [logging.getLogger(n) for n in names]

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


def quantize_int8(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation (weights int8, activations quantised on the fly) with onnxruntime."""
    _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_loggers("root"):
        quantize_dynamic(str(onnx_path), str(out_path), weight_type=QuantType.QInt8)
    return Path(out_path)


@dataclass
class OnnxOutput:
    logits: torch.Tensor


class OnnxClassifier:
    """An ONNX classifier that is called like a transformers model: ``model(**batch).logits``; ``config``: the
    exported model's (what scoring reads from it, e.g. a tuned threshold).

    It runs on the CPU with as many threads as torch uses, so timings compare like for like.
    """

    training = False

    def __init__(self, path: str | Path, threads: int | None = None, config=None) -> None:
        self.config = config
        ort = _require_onnx()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path = Path(path)

    def __call__(self, **batch: torch.Tensor) -> OnnxOutput:
        feed = {n: batch[n].cpu().numpy().astype(np.int64) for n in self.input_names}
        outputs = self.session.run(None, feed)  # several outputs: the logits' last axis (see export_onnx)
        return OnnxOutput(torch.from_numpy(outputs[0] if len(outputs) == 1 else np.stack(outputs, axis=-1)))

    def eval(self) -> OnnxClassifier:
        return self

    def train(self, _mode: bool = True) -> OnnxClassifier:  # an ONNX graph has no training mode
        return self


@torch.inference_mode()
def max_logit_difference(model: nn.Module, onnx_model: OnnxClassifier, batches: list[dict[str, torch.Tensor]]) -> float:
    """Largest |PyTorch logit - ONNX logit| over the batches (eval mode, fp32)."""
    model.eval()
    worst = 0.0
    for b in batches:
        b = {k: v for k, v in b.items() if k in INPUT_NAMES}
        ref = model(**b).logits.float()
        worst = max(worst, float((ref - onnx_model(**b).logits).abs().max()))
    return worst


def parity_texts() -> list[list[str]]:
    """Batches that differ in size and padding, for the parity check when no data is given."""
    return [
        ["a"],
        ["the film is a triumph of style over substance , and a slow one at that .", "bad"],
        [f"sentence number {i} " + "with some words " * (i % 5) for i in range(9)],
    ]


def check_parity(
    model: nn.Module,
    onnx_model: OnnxClassifier,
    batches: list[dict[str, torch.Tensor]],
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Refuse an export whose logits differ from PyTorch's by more than ``tolerance``."""
    delta = max_logit_difference(model, onnx_model, batches)
    if not delta <= tolerance:
        raise TinyDistillError(f"ONNX export differs from PyTorch: max |Δlogit| = {delta:.3g} > {tolerance:g}")
    return delta


def export(
    model_dir: str | Path,
    output_dir: str | Path,
    cfg=None,
    quantize: bool = True,
    split: str = "dev",
    tolerance: float = PARITY_TOLERANCE,
    overwrite: bool = False,
) -> dict:
    """Export a saved model folder to ``output_dir`` (ONNX fp32, and int8 with ``quantize``).

    The parity check runs on batches of varied length and padding (the first batches of ``split`` when
    ``cfg`` names the task data); with ``cfg`` the split's metric is also measured for PyTorch, ONNX
    fp32 and ONNX int8. Returns what ``export.json`` holds.
    """
    _require_onnx()
    exists_or_hub(str(model_dir))
    inputs = {"model being exported": model_dir, **(cfg.input_paths() if cfg is not None else {})}
    with StagingDir(output_dir, "export", inputs, overwrite or (cfg is not None and cfg.overwrite)) as tmp:
        tokenizer = load_tokenizer(str(model_dir))
        kind = task_of_model(quietly(AutoConfig.from_pretrained, str(model_dir)), model_dir)
        model = quietly(kind.auto_model.from_pretrained, str(model_dir), dtype=torch.float32).eval()
        longest = usable_length(512, "model", model.config, tokenizer)
        batches = [sample_batch(tokenizer, texts, longest) for texts in parity_texts()]
        task, loader = _task_loader(cfg, split, model, tokenizer) if cfg is not None else (None, None)
        batches += [b for b, _ in zip(loader or [], range(4))]
        say(f"exporting {model_dir} to ONNX")
        onnx_path = export_onnx(model, tokenizer, tmp / ONNX_FILE, output=kind.onnx_output)
        result: dict = {
            "model": str(model_dir),
            "pipeline_tag": kind.pipeline_tag,  # the transformers.pipeline task the folder serves
            "onnx": ONNX_FILE,
            "onnx_output": kind.onnx_output,
            "max_abs_logit_diff": check_parity(model, OnnxClassifier(onnx_path), batches, tolerance),
            "parity_tolerance": tolerance,
            "parity_rows": sum(len(b["input_ids"]) for b in batches),
        }
        runners = {"pytorch": model, "onnx": OnnxClassifier(onnx_path, config=model.config)}
        if quantize:
            say("quantising to int8 (dynamic)")
            quantize_int8(onnx_path, tmp / INT8_FILE)
            runners["onnx_int8"] = OnnxClassifier(tmp / INT8_FILE, config=model.config)
            result["int8"] = INT8_FILE
            result["int8_max_abs_logit_diff"] = max_logit_difference(model, runners["onnx_int8"], batches)
        if task is not None:
            result["split"], result["metric"] = split, task.metric
            result["scores"] = {name: evaluate_model(m, loader, task)[task.metric] for name, m in runners.items()}
        tokenizer.save_pretrained(tmp)
        model.config.save_pretrained(tmp)
        write_json(tmp / EXPORT_FILE, result)
    return result


def _task_loader(cfg, split: str, model: nn.Module, tokenizer) -> tuple[Task, object]:
    """The task ``cfg`` names and a loader over ``split`` at the length the model takes."""
    task = task_info(cfg.data)
    max_length = usable_length(cfg.data.max_length, "model", model.config, tokenizer)
    return task, task.eval_loader(
        cfg.data, split, tokenizer, cfg.prediction.train.eval_batch_size, max_length, cfg.seed
    )
