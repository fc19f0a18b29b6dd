"""Loading teachers and checkpoints, and the checks that refuse incompatible teacher/student pairs."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from tinydistill.data.readers import TaskInfo
from tinydistill.errors import TinyDistillError


def _exists_or_hub(name: str) -> None:
    """Local folders must exist; anything else is treated as a hub id unless the hub is off."""
    if Path(name).exists():
        return
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise TinyDistillError(f"model not found: {name} (no such folder"
                               + (")" if looks_local else "; HF_HUB_OFFLINE=1 forbids fetching it from the hub)"))


def _quietly(fn, *args, **kwargs):
    """Load without the 'newly initialized weights' chatter; errors become one-line messages."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return fn(*args, **kwargs)
    except (OSError, ValueError) as exc:
        raise TinyDistillError(f"could not load {args[0]}: {str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(level)


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    _exists_or_hub(name)
    return _quietly(AutoTokenizer.from_pretrained, name)


def load_masked_lm(name: str) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """A fill-mask model (eval mode) and its tokenizer, from a folder or a hub id."""
    from transformers import AutoModelForMaskedLM

    _exists_or_hub(name)
    model = _quietly(AutoModelForMaskedLM.from_pretrained, name)
    tokenizer = _quietly(AutoTokenizer.from_pretrained, name)
    if tokenizer.mask_token_id is None:
        raise TinyDistillError(f"{name}: its tokenizer has no mask token; is it a masked-LM model?")
    return model.eval(), tokenizer


def label_kwargs(task: TaskInfo) -> dict:
    """config kwargs that give a classifier the task's labels (names in ``id2label``)."""
    if task.is_regression:
        return {"num_labels": 1, "problem_type": "regression"}
    names = task.label_names
    return {"num_labels": len(names), "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)}, "problem_type": "single_label_classification"}


def has_task_labels(config) -> bool:
    """True when a config carries real label names (not transformers' LABEL_0, LABEL_1 defaults)."""
    id2label = getattr(config, "id2label", None) or {}
    return bool(id2label) and any(str(v) != f"LABEL_{k}" for k, v in id2label.items())


def check_labels(model_config, task: TaskInfo, who: str) -> None:
    """Refuse a model whose label map differs from the task's (permuted logits silently ruin distillation)."""
    if task.is_regression:
        if getattr(model_config, "num_labels", 1) != 1:
            raise TinyDistillError(f"{who} has {model_config.num_labels} outputs but the task is a regression (1 output)")
        return
    if not has_task_labels(model_config):
        return
    theirs = [str(model_config.id2label[i]) for i in range(len(model_config.id2label))]
    if theirs != task.label_names:
        raise TinyDistillError(f"label maps differ: {who} has id2label {theirs}, the task has {task.label_names}; "
                               "re-train it on this task's labels or set data.labels to its order")


def load_classifier(name: str, task: TaskInfo, who: str = "model", require_head: bool = False) -> nn.Module:
    """A sequence classifier for ``task`` from a folder or hub id; a new head when it has none
    (or, with ``require_head``, an error: a teacher must already be fine-tuned on the task)."""
    _exists_or_hub(name)
    config = _quietly(AutoConfig.from_pretrained, name)
    check_labels(config, task, who)
    regression_head = task.is_regression and getattr(config, "problem_type", None) == "regression"
    if require_head and not (has_task_labels(config) or regression_head):
        raise TinyDistillError(f"{who} {name} has no task head for {task.name} (no label names in its config): "
                               "fine-tune it first (`tinydistill finetune`); distilling from an untrained head is noise")
    if not has_task_labels(config) or config.num_labels != task.num_labels:
        for key, value in label_kwargs(task).items():
            setattr(config, key, value)
    return _quietly(AutoModelForSequenceClassification.from_pretrained, name, config=config)


def load_backbone(name: str) -> nn.Module:
    """A bare encoder (no task head), e.g. a pre-trained teacher for general distillation."""
    _exists_or_hub(name)
    return _quietly(AutoModel.from_pretrained, name)


def check_vocab(teacher_tok: PreTrainedTokenizerBase, student_tok: PreTrainedTokenizerBase | None,
                teacher_model: nn.Module, student_model: nn.Module) -> None:
    """Refuse a student whose vocabulary differs from the teacher's (same ids must mean the same tokens)."""
    tv, sv = teacher_model.config.vocab_size, student_model.config.vocab_size
    if tv != sv:
        raise TinyDistillError(f"vocabularies differ: teacher embeds {tv} token ids, student {sv}; "
                               "build the student with the teacher's tokenizer")
    if student_tok is None:
        return
    a, b = teacher_tok.get_vocab(), student_tok.get_vocab()
    if a != b:
        only_t = sorted(set(a) - set(b))[:3]
        only_s = sorted(set(b) - set(a))[:3]
        moved = [t for t in set(a) & set(b) if a[t] != b[t]][:3]
        raise TinyDistillError(f"tokenizer vocabularies differ (teacher {len(a)} entries, student {len(b)}): "
                               f"only in teacher {only_t}, only in student {only_s}, different ids {moved}")


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients, for good: ``train()`` on this module becomes a no-op."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.train = lambda mode=True: model  # nothing the student does can flip the teacher back
    return model


logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
