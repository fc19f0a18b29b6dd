"""Prediction over a loader, the task's metrics, and the ``evaluate`` command (any model folder, any split)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from tinydistill.config import Config, DataConfig
from tinydistill.data.keys import MODEL_INPUTS
from tinydistill.data.readers import read_split
from tinydistill.data.tasks import glue_task
from tinydistill.errors import TinyDistillError
from tinydistill.tasks import Task, task_info
from tinydistill.ui import track


def compute_metrics(task: Task, outputs, labels) -> dict[str, float]:
    """The task's metrics from per-example outputs and gold labels (arrays or lists, as :func:`predict` returns)."""
    return task.metrics(outputs, labels)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, task: Task, accelerator=None) -> tuple[list, list | None]:
    """Per-example outputs (and gold labels, when the data has them) over a whole loader, in eval mode, as the
    task collects them (logits per text; predicted tags per word).

    ``model`` is a transformers model or anything called the same way (an ONNX session wrapper). With an
    ``accelerator``, batches are gathered from every process (padded to one length) without duplicates.
    """
    was_training = model.training
    model.eval()
    outs, golds, labelled = [], [], False
    device = next(model.parameters()).device if isinstance(model, nn.Module) else torch.device("cpu")
    for batch in track(loader, "evaluate"):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS}).logits.float()
        if accelerator is not None:
            batch["logits"] = logits
            batch = {k: accelerator.pad_across_processes(v, dim=1, pad_index=-100) for k, v in batch.items()}
            batch = accelerator.gather_for_metrics(batch)
            logits = batch["logits"]
        out, gold = task.collect(logits, batch)
        outs += out
        if gold is not None:
            golds += gold
            labelled = True
    model.train(was_training)
    return outs, (golds if labelled else None)


def evaluate_model(model: nn.Module, loader: DataLoader, task: Task, accelerator=None) -> dict[str, float]:
    """The task's metrics of ``model`` on ``loader``, as the model is scored (what its config saved, e.g. a tuned
    threshold)."""
    return scored_outputs(model, loader, task, accelerator)[0]


def scored_outputs(
    model: nn.Module, loader: DataLoader, task: Task, accelerator=None
) -> tuple[dict[str, float], tuple[list, list]]:
    """:func:`evaluate_model`'s metrics, and the outputs and gold labels they were computed from."""
    task = task.for_model(getattr(model, "config", None))
    outputs, labels = predict(model, loader, task, accelerator)
    if labels is None:
        raise TinyDistillError("this split has no labels to score against")
    return compute_metrics(task, outputs, labels), (outputs, labels)


def _with_model_labels(cfg: DataConfig, folder: Path) -> DataConfig:
    """``cfg`` with the label names the model folder was trained with (its config's id2label), so that the task's
    label set is not learnt from the training file: scoring a split reads that split alone."""
    config_file = folder / "config.json"
    if cfg.labels or glue_task(cfg.task) or not config_file.is_file():
        return cfg
    id2label = json.loads(config_file.read_text(encoding="utf-8")).get("id2label") or {}
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    real = names and any(n != f"LABEL_{i}" for i, n in enumerate(names))
    return cfg.model_copy(update={"labels": names}) if real else cfg


def evaluate(cfg: Config, model_dir: str | Path, split: str = "dev") -> dict[str, float]:
    """Score a saved model folder on a split of ``cfg.data`` with the task's metrics.

    Returns e.g. ``{"accuracy": 0.91, "examples": 872}``.
    """
    from tinydistill.models import load_classifier, load_tokenizer, usable_length

    task = task_info(_with_model_labels(cfg.data, Path(model_dir)))
    model = load_classifier(str(model_dir), task, who=str(model_dir))
    tokenizer = load_tokenizer(str(model_dir))
    max_length = usable_length(cfg.data.max_length, f"model {model_dir}", model.config, tokenizer)
    examples = read_split(cfg.data, split, task, seed=cfg.seed)  # an example may be several rows (an STS pair)
    batch_size = cfg.prediction.train.eval_batch_size
    loader = task.loader(task.encode(examples, tokenizer, max_length), tokenizer, batch_size)
    metrics = evaluate_model(model, loader, task)
    return {**metrics, **task.side_metrics(model, tokenizer, batch_size), "examples": len(examples)}
