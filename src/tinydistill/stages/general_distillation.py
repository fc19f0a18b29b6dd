"""Stage 1: general distillation of a pre-trained teacher into a new student on unlabelled text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from accelerate.utils import set_seed
from torch.utils.data import Subset

from tinydistill.cache import default_cache_dir
from tinydistill.config import Config
from tinydistill.data.corpus import encode_corpus
from tinydistill.data.loaders import EncodedDataset, encode_examples, encode_passages, make_loader
from tinydistill.data.readers import Examples, read_corpus, read_split
from tinydistill.errors import TinyDistillError
from tinydistill.models import freeze, load_backbone
from tinydistill.objectives import reads_logits
from tinydistill.outputs import StagingDir
from tinydistill.report import ModelEntry
from tinydistill.stages.template import (
    PROBE_BATCHES,
    StagePlan,
    check_token_alignment,
    checkpoint_spec,
    distill_run,
    fitted,
    run_stage,
    tokenizers,
)
from tinydistill.students import build_student
from tinydistill.tasks import Task, task_info
from tinydistill.trainer import Callback


def general(
    cfg: Config, output_dir: str | Path | None = None, task: Task | None = None, callbacks: Sequence[Callback] = ()
) -> Path:
    """Stage 1: distil a pre-trained (not fine-tuned) ``cfg.teacher`` into a new ``cfg.student`` on
    unlabelled text (``cfg.general.corpus``, or the task's training text when unset), with the
    embedding, hidden-state and attention losses. Writes a bare encoder (no task head). ``task``: the task
    ``cfg.data`` describes, when the caller has built it (its training text is read without a corpus)."""
    out = Path(output_dir or cfg.output_dir)
    if reads_logits(cfg.general.losses):
        raise TinyDistillError(
            "general distillation has no labels or task logits: set general.losses soft_weight and hard_weight to 0"
        )
    with StagingDir(out, "general", cfg.input_paths(), cfg.overwrite) as tmp:
        run_stage(_plan(cfg, out, task), cfg, tmp, callbacks)
    return out


def _plan(cfg: Config, out: Path, task: Task | None) -> StagePlan:
    g = cfg.general
    set_seed(cfg.seed)
    teacher = freeze(load_backbone(cfg.teacher))
    student = build_student(cfg.student, teacher, task=None)
    tokenizer, teacher_tok = tokenizers(cfg, cfg.teacher, teacher, student)
    data, passages = _passages(cfg, task, tokenizer, teacher_tok, fitted(g.max_length, tokenizer, teacher, student))
    bs = g.train.batch_size
    train = make_loader(
        data,
        tokenizer,
        bs,
        shuffle=True,
        seed=cfg.seed,
        group_by_length=g.train.group_by_length,
        teacher_tokenizer=teacher_tok,
    )
    probe = Subset(data, range(min(len(data), PROBE_BATCHES * bs)))
    probe_loader = make_loader(probe, tokenizer, bs, shuffle=False, teacher_tokenizer=teacher_tok)
    return StagePlan(
        name="general",
        title="Stage 1: general distillation",
        run=distill_run(g, teacher, student, (train, None, probe_loader), None, select_best=False),
        train=g.train,
        checkpoint=checkpoint_spec(cfg, out, "general", g.train),
        tokenizer=tokenizer,
        entries=lambda r, folder: [
            ModelEntry("teacher", teacher, Path(cfg.teacher), None, teacher_tok),
            ModelEntry("student", r.student, folder, None),
        ],
        timed=data,
        metrics={"passages": passages, "windows": len(data)},
    )


def _passages(cfg: Config, task: Task | None, tokenizer, teacher_tok, max_length: int) -> tuple[EncodedDataset, int]:
    """The unlabelled text in windows of ``max_length`` tokens, and how many passages it held: a corpus read lazily
    (it may be larger than memory), or the task's training text; with a teacher of another tokenizer each passage
    is one window, truncated (two tokenizations of one window cannot be cut alike)."""
    g = cfg.general
    if g.corpus and teacher_tok is None:
        cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        return encode_corpus(g.corpus, tokenizer, max_length, g.max_passages, cfg.seed, cache)
    if g.corpus:
        texts = read_corpus(g.corpus, g.max_passages)
    else:
        ex = read_split(cfg.data, "train", task or task_info(cfg.data), seed=cfg.seed, require_labels=False)
        texts = [t if not ex.pairs else f"{t} {p}" for t, p in zip(ex.texts, ex.pairs or ex.texts)]
        texts = texts[: g.max_passages] if g.max_passages else texts
    if teacher_tok is None:
        return encode_passages(texts, tokenizer, max_length), len(texts)
    data = encode_examples(Examples(texts, None, None, "corpus"), tokenizer, max_length, teacher_tok)
    check_token_alignment(g.losses, data)
    return data, len(texts)
