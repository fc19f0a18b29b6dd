"""Extractive question answering (SQuAD v1.1): the answer is a span of the context, predicted as a start and an end
token.

Contexts longer than ``max_length`` are cut into overlapping windows (``data.qa.doc_stride`` tokens of overlap) with
the fast tokenizer's offsets, as transformers' ``examples/pytorch/question-answering/run_qa.py`` prepares them; a
window whose context does not hold the whole (first) answer is trained to point at its first token, as there. A
model's outputs are its start and end logits stacked into one (B, L, 2) ``logits`` tensor, so the losses, the
teacher-output cache and the trainer treat them as two classes per token; the soft losses are softmaxes over the
positions of a window where an answer may start or end (the context and the first token), never over the question.
Evaluation takes, per question, the best valid span over all its windows (the n-best search of ``utils_qa.py``'s
``postprocess_qa_predictions``) and scores it with SQuAD v1.1's exact match and F1 (torchmetrics' implementation of
the official script), per question, not per window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tinydistill.config import Config, DataConfig, LossConfig
from tinydistill.data.keys import CACHED_LOGITS, LABELS, MODEL_INPUTS
from tinydistill.data.readers import Examples, kept_rows, raw_rows, read_table, subset
from tinydistill.errors import TinyDistillError
from tinydistill.registry import register_kind
from tinydistill.tasks.base import Task
from tinydistill.ui import say

if TYPE_CHECKING:
    from torch import Tensor, nn

    from tinydistill.data.loaders import EncodedDataset

IGNORE = -100  # a position where no answer may start or end (question, separators, padding)
EXAMPLE = "example_index"  # the question a window belongs to
CHAR_STARTS, CHAR_ENDS = "char_starts", "char_ends"  # each token's span in the context (-1: not a context token)
CONTEXT = "context_chars"  # the context's characters as code points (evaluation: the answer text is cut from it)
GOLD_STARTS, GOLD_ENDS = "gold_starts", "gold_ends"  # the reference answers' character spans
_PADDING = {CHAR_STARTS: -1, CHAR_ENDS: -1, CONTEXT: -1, GOLD_STARTS: -1, GOLD_ENDS: -1}


class QASettings(BaseModel):
    """``data.qa``: the columns of a flat table (a SQuAD JSON file has fixed names), the windows and the answer
    search."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    old_keys: ClassVar[dict[str, str]] = {}

    question_column: str = Field("question", description="tables: the question")
    context_column: str = Field("context", description="tables: the passage that holds the answer")
    answers_column: str = Field(
        "answers",
        description="tables: the answers, {'text': [...], 'answer_start': [...]} (Hugging Face's squad) or a list "
        "of {'text', 'answer_start'} objects; a JSON string of either in CSV",
    )
    id_column: str = Field("id", description="tables: the question's id (named in messages; row number if absent)")
    doc_stride: int | None = Field(
        None,
        ge=1,
        description="tokens two neighbouring windows of one context share (default: a third of "
        "max_length, at most 128, as transformers' 128 of 384)",
    )
    max_answer_length: int = Field(30, ge=1, description="the longest answer predicted, in tokens")
    n_best_size: int = Field(20, ge=1, description="start and end candidates searched per window")


@dataclass
class Questions:
    """Questions with their contexts and, where labelled, each question's answers as character spans."""

    ids: list[str]
    questions: list[str]
    contexts: list[str]
    answers: list[list[tuple[int, int]]] | None
    source: str


def squad_rows(articles: list, source: str) -> list[dict]:
    """The questions of a SQuAD-layout file (``data`` -> paragraphs -> qas) as flat rows."""
    rows = []
    for article in articles:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            for qa in paragraph.get("qas", []):
                rows.append({**qa, "context": paragraph.get("context")})
    if not rows:
        raise TinyDistillError(f"{source}: a SQuAD-layout file with no questions (data -> paragraphs -> qas)")
    return rows


def _answers(value: Any, where: str) -> list[tuple[int, str]]:
    """(start, text) of each answer, from Hugging Face's dict of lists, a list of objects, or a JSON string of
    either."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TinyDistillError(f"{where}: answers {value[:60]!r} are not JSON") from None
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        value = [{"text": t, "answer_start": s} for t, s in zip(value["text"], value.get("answer_start") or [])]
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise TinyDistillError(
            f"{where}: answers must be {{'text': [...], 'answer_start': [...]}} or a list of "
            f"{{'text', 'answer_start'}} objects, not {str(value)[:60]!r}"
        )
    try:
        return [(int(a["answer_start"]), str(a["text"])) for a in value]
    except (KeyError, TypeError, ValueError):
        raise TinyDistillError(f"{where}: an answer lacks an integer answer_start or a text: {value[:3]}") from None


def _spans(row: dict, context: str, column: str, where: str) -> list[tuple[int, int]]:
    """The character spans of a row's answers, each checked against its context."""
    answers = _answers(row.get(column), where)
    if row.get("is_impossible") or not answers:
        raise TinyDistillError(
            f"{where}: the question has no answer (SQuAD 2.0's unanswerable questions); task qa reads answerable "
            "questions only (SQuAD v1.1): drop such questions"
        )
    spans = []
    for start, text in answers:
        found = context[start : start + len(text)] if start >= 0 else None
        if not text.strip() or found != text:
            raise TinyDistillError(
                f"{where}: answer {text!r} is not at character {start} of its context (it reads {found!r}); fix its "
                "answer_start"
            )
        spans.append((start, start + len(text)))
    return spans


def read_questions(cfg: DataConfig, split: str, settings: QASettings, require_answers: bool = True) -> Questions:
    """One split's questions: a SQuAD JSON file as published, or a table (JSONL, CSV, Parquet, a saved dataset)."""
    rows, source, _ = raw_rows(cfg, split)
    return questions_of(rows, source, settings, "required" if require_answers else "if present")


Answers = Literal["required", "if present", "ignored"]  # what a reader does with a file's answers


def questions_of(rows: list[dict], source: str, settings: QASettings, answers: Answers = "required") -> Questions:
    """The questions of a file's ``rows`` (a SQuAD JSON object's, or a table's in the columns ``settings`` name), with
    their answers: ``answers`` "required", "if present" or "ignored"."""
    names = (settings.question_column, settings.context_column, settings.answers_column, settings.id_column)
    if len(rows) == 1 and isinstance(rows[0].get("data"), list):
        rows, names = squad_rows(rows[0]["data"], source), ("question", "context", "answers", "id")
    question, context, answer_column, ident = names
    if not rows:
        raise TinyDistillError(f"{source} has no questions")
    missing = [c for c in (question, context) if c not in rows[0]]
    if missing:
        raise TinyDistillError(f"{source}: no column {missing[0]!r} (its columns: {', '.join(map(str, rows[0]))})")
    labelled = answers != "ignored" and answer_column in rows[0]
    if answers == "required" and not labelled:
        raise TinyDistillError(f"{source}: no column {answer_column!r} with the answers (set data.qa.answers_column)")
    ids, out = (
        [str(r.get(ident, i + 1)) for i, r in enumerate(rows)],
        Questions([], [], [], [] if labelled else None, source),
    )
    for i, row in enumerate(rows):
        where = f"{source}: question {ids[i]}"
        q, c = row.get(question), row.get(context)
        if not isinstance(q, str) or not q.strip() or not isinstance(c, str) or not c.strip():
            raise TinyDistillError(f"{where}: an empty question or context")
        out.ids.append(ids[i])
        out.questions.append(q)
        out.contexts.append(c)
        if labelled:
            out.answers.append(_spans(row, c, answer_column, where))
    return out


def table_row(settings: QASettings, ident: str, question: str, context: str, spans: list[tuple[int, int]]) -> dict:
    """One question as a table row in the columns ``data.qa`` names, its answers as Hugging Face's squad writes them."""
    answers = {"text": [context[a:b] for a, b in spans], "answer_start": [a for a, _ in spans]}
    return {
        settings.id_column: ident,
        settings.question_column: question,
        settings.context_column: context,
        settings.answers_column: answers,
    }


def augment_questions_into(cfg: Config, settings: QASettings, out: Path, sources: Callable[[], Any]) -> dict:
    """Write the training questions and their TinyBERT copies to ``out/train.jsonl`` in the columns ``data.qa``
    names; returns the metrics. Only a question is rewritten: its context and answer spans stay as they are, so
    every copy keeps its labels. ``sources()`` loads the candidates."""
    from tinydistill.augment.texts import augment_metrics, augment_texts, write_rows

    if cfg.data.dir is not None:
        raise TinyDistillError("augment for task qa reads data.train_file (a SQuAD JSON file or a table), not data.dir")
    q = read_questions(cfg.data, "train", settings)
    keep = kept_rows(cfg.data, "train", len(q.ids), cfg.seed)
    index = list(range(len(q.ids))) if keep is None else keep
    t0 = time.perf_counter()
    found = sources()
    t1 = time.perf_counter()
    texts = [q.questions[i] for i in index]
    variants = augment_texts(texts, cfg.augment, cfg.seed, found.vectors, found.masked_lm, tag="question")
    times = (t0, t1, time.perf_counter())
    rows = [
        table_row(settings, q.ids[i] if k == 0 else f"{q.ids[i]}-aug{k}", text, q.contexts[i], q.answers[i])
        for i, copies in zip(index, variants)
        for k, text in enumerate(copies)
    ]
    write_rows(out / "train.jsonl", rows, header=True)
    counts = (len(index), len(rows), len(index))
    return augment_metrics(cfg.augment, q.source, counts, times, train_file="train.jsonl")


def _check_room(ex: Examples, tokenizer, max_length: int, stride: int) -> None:
    """Refuse a question so long that its windows leave no more context than the stride."""
    lengths = [len(t) for t in tokenizer(ex.texts, add_special_tokens=False)["input_ids"]]
    room = [max_length - n - tokenizer.num_special_tokens_to_add(pair=True) for n in lengths]
    bad = [i for i, r in enumerate(room) if r <= stride]
    if bad:
        i = bad[0]
        raise TinyDistillError(
            f"{ex.source}: {len(bad)} question(s) leave no room for their context (the first, {ex.texts[i][:50]!r}, "
            f"takes {lengths[i]} of max_length {max_length} tokens, leaving {max(room[i], 0)}, not more than "
            f"data.qa.doc_stride {stride}); raise max_length or lower data.qa.doc_stride"
        )


def window_labels(in_context: list[bool], offsets: list, span: tuple[int, int] | None) -> list[list[int]]:
    """Per token [is start, is end]: 1 at the answer's first and last token when the window's context holds the
    whole ``span`` (else at the first token, as transformers' run_qa.py does), 0 where an answer may start or end,
    IGNORE elsewhere; no 1 at all for an unlabelled window (``span`` None)."""
    labels = [[0, 0] if c or i == 0 else [IGNORE, IGNORE] for i, c in enumerate(in_context)]
    if span is None:
        return labels
    context = [i for i, c in enumerate(in_context) if c]
    if not context or not (offsets[context[0]][0] <= span[0] and offsets[context[-1]][1] >= span[1]):
        labels[0] = [1, 1]
        return labels
    start = max(i for i in context if offsets[i][0] <= span[0])
    end = min(i for i in context if offsets[i][1] >= span[1])
    labels[start][0], labels[end][1] = 1, 1
    return labels


def encode_questions(ex: Examples, tokenizer, max_length: int, stride: int, training: bool = False) -> EncodedDataset:
    """One row per window of each question's context: the model inputs, ``labels`` (L, 2) (see
    :func:`window_labels`), the question's index and, for evaluation, each token's character span, the context and
    the reference answers."""
    from tinydistill.data.loaders import EncodedDataset

    if not getattr(tokenizer, "is_fast", False):
        raise TinyDistillError(f"task qa needs a fast tokenizer (offsets); {type(tokenizer).__name__} is not one")
    _check_room(ex, tokenizer, max_length, stride)
    enc = tokenizer(
        [q.lstrip() for q in ex.texts],
        ex.pairs,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    rows, answered = [], set()
    windows = len(enc["input_ids"])
    if ex.soft is not None and len(ex.soft) != windows:
        raise TinyDistillError(
            f"{ex.source}: the teachers' outputs cover {len(ex.soft)} windows, the student reads {windows}; give "
            "teachers and student one tokenizer and one max_length"
        )
    for w, k in enumerate(enc["overflow_to_sample_mapping"]):
        in_context = [s == 1 for s in enc.sequence_ids(w)]
        offsets = enc["offset_mapping"][w]
        row = {key: enc[key][w] for key in MODEL_INPUTS if key in enc} | {EXAMPLE: k}
        if ex.labels is not None:  # a transfer-set question has no answers: its windows no gold position
            row[LABELS] = window_labels(in_context, offsets, ex.labels[k][0] if ex.labels[k] else None)
            if ex.labels[k] and row[LABELS][0][0] != 1:
                answered.add(k)
        if ex.soft is not None:  # several teachers' combined start/end logits, one (L, 2) per window
            row[CACHED_LOGITS] = ex.soft[w]
        if not training:
            row[CHAR_STARTS] = [o[0] if c else -1 for o, c in zip(offsets, in_context)]
            row[CHAR_ENDS] = [o[1] if c else -1 for o, c in zip(offsets, in_context)]
            row[CONTEXT] = np.frombuffer(ex.pairs[k].encode("utf-32-le"), dtype=np.int32)
            if ex.labels is not None:
                row[GOLD_STARTS], row[GOLD_ENDS] = ([s[j] for s in ex.labels[k]] for j in (0, 1))
        rows.append(row)
    labelled = sum(1 for spans in ex.labels if spans) if ex.labels is not None else 0
    _say_cut(ex, labelled - len(answered), labelled, max_length, len(rows))
    return EncodedDataset(rows, None, ex)


def _say_cut(ex: Examples, unanswered: int, labelled: int, max_length: int, windows: int) -> None:
    """Refuse data where no window holds any answer; say how many of the ``labelled`` questions have none."""
    if unanswered and unanswered == labelled:
        raise TinyDistillError(
            f"{ex.source}: no window of any question holds its whole answer at max_length {max_length}; raise "
            "max_length (and check answer_start)"
        )
    if unanswered:
        say(
            f"{ex.source}: {unanswered} of {labelled} questions have no window that holds their whole answer (trained "
            "to point at the first token there)"
        )
    if windows > len(ex):
        say(f"{ex.source}: {len(ex)} questions in {windows} windows of at most {max_length} tokens")


class SpanCollator:
    """Pads the inputs (PadBoth), the per-token labels with IGNORE, character spans, contexts and references with -1
    and cached teacher logits (L, 2) per row with zeros."""

    def __init__(self, tokenizer, teacher_tokenizer=None) -> None:
        from tinydistill.data.loaders import PadBoth

        self.inputs = PadBoth(tokenizer, teacher_tokenizer)

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        extra = (LABELS, CACHED_LOGITS, EXAMPLE, *_PADDING)
        batch = self.inputs([{k: v for k, v in r.items() if k not in extra} for r in rows])
        width = batch["input_ids"].shape[1]
        batch[EXAMPLE] = torch.tensor([r[EXAMPLE] for r in rows])
        if LABELS in rows[0]:
            batch[LABELS] = _pad([np.asarray(r[LABELS]) for r in rows], width, IGNORE)
        if CACHED_LOGITS in rows[0]:
            batch[CACHED_LOGITS] = _pad([np.asarray(r[CACHED_LOGITS]) for r in rows], width, 0).float()
        for key, value in _PADDING.items():
            if key in rows[0]:
                size = width if key in (CHAR_STARTS, CHAR_ENDS) else max(len(r[key]) for r in rows)
                batch[key] = _pad([np.asarray(r[key]) for r in rows], size, value)
        return batch


def _pad(arrays: list[np.ndarray], width: int, value: float) -> Tensor:
    """(B, width, ...) from rows of (n_i, ...) arrays, padded at the end with ``value``."""
    import torch

    out = np.full((len(arrays), width, *arrays[0].shape[1:]), value, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.from_numpy(out)


def best_span(start: Tensor, end: Tensor, valid: Tensor, n_best: int, max_tokens: int) -> tuple[float, int, int]:
    """The best answer of one window: start, end (L,) logits, valid (L,) bool (context tokens) -> (score, first
    token, last token) over the ``n_best`` highest starts and ends, with 0 <= last - first < ``max_tokens``;
    (-inf, -1, -1) when no span is valid."""
    import torch

    if not bool(valid.any()):
        return float("-inf"), -1, -1
    k = min(n_best, int(valid.sum()))
    low = torch.finfo(start.dtype).min
    firsts = start.masked_fill(~valid, low).topk(k).indices
    lasts = end.masked_fill(~valid, low).topk(k).indices
    length = lasts[None, :] - firsts[:, None]
    score = (start[firsts][:, None] + end[lasts][None, :]).masked_fill((length < 0) | (length >= max_tokens), -np.inf)
    best = int(score.argmax())
    i, j = divmod(best, k)
    value = float(score[i, j])
    return (value, int(firsts[i]), int(lasts[j])) if value > float("-inf") else (float("-inf"), -1, -1)


def _text(codes: Tensor) -> str:
    """A context from its padded code points."""
    kept = codes[codes >= 0].numpy().astype(np.int32)
    return kept.tobytes().decode("utf-32-le")


class SpanModels:
    """The task's model class: a transformers question-answering model whose output also holds ``logits``, its
    start and end logits stacked (B, L, 2) (saved and loaded as a plain ``AutoModelForQuestionAnswering``)."""

    def from_config(self, config) -> nn.Module:
        from transformers import AutoModelForQuestionAnswering

        return with_span_logits(AutoModelForQuestionAnswering.from_config(config))

    def from_pretrained(self, name: str, config=None, dtype=None) -> nn.Module:
        from transformers import AutoModelForQuestionAnswering

        kwargs = {"config": config} if config is not None else {}
        return with_span_logits(AutoModelForQuestionAnswering.from_pretrained(name, dtype=dtype, **kwargs))


def with_span_logits(model: nn.Module) -> nn.Module:
    """``model`` whose outputs gain ``logits`` = stack(start_logits, end_logits) on the last axis (a forward hook)."""
    model.register_forward_hook(_stack_logits)
    return model


def _stack_logits(_module, _args, output):
    import torch

    output["logits"] = torch.stack([output.start_logits, output.end_logits], dim=-1)
    return output


@register_kind
class QuestionAnswering(Task):
    """Extractive QA: soft cross-entropy (or KL) over a window's positions for start and end at temperature T, hard
    cross-entropy to the gold positions; SQuAD exact match and F1 per question."""

    kind = "qa"
    aliases = ("question-answering", "extractive-qa")
    settings_key = "qa"
    settings_model = QASettings
    recognise_rank = 2
    auto_model: ClassVar = SpanModels()
    pipeline_tag = "question-answering"
    per_token_outputs = True
    onnx_output = ("start_logits", "end_logits")
    ensembles = True

    def __init__(self, name: str, settings: QASettings | None = None) -> None:
        super().__init__(name, None, "f1", settings)

    @property
    def num_labels(self) -> int:
        return 2  # a start and an end logit per token

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return any(a.endswith("ForQuestionAnswering") for a in getattr(config, "architectures", None) or [])

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> QuestionAnswering:
        if cfg.labels:
            raise TinyDistillError("data.labels: task qa has no label set (answers are spans of the context)")
        return cls(name, cls.settings_of(cfg))

    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        if cfg.soft_label_column:
            raise TinyDistillError("data.soft_label_column is for one label per text; task qa has none")
        q = read_questions(cfg, split, self.settings, require_labels)
        ex = Examples(q.questions, q.contexts, q.answers, q.source)
        keep = kept_rows(cfg, split, len(ex), seed)
        return ex if keep is None else subset(ex, keep)

    def read_transfer(self, cfg: DataConfig, path: str | Path) -> Examples:
        """The questions and contexts of a transfer file (SQuAD JSON or a table, as ``read``; any answers are not
        read): the teacher's start and end distributions are their targets, and no window has a gold position."""
        q = questions_of(read_table(path, cfg), str(path), self.settings, answers="ignored")
        return Examples(q.questions, q.contexts, [[] for _ in q.questions], q.source)

    def encode(
        self, ex: Examples, tokenizer, max_length: int, teacher_tokenizer=None, training: bool = False
    ) -> EncodedDataset:
        if teacher_tokenizer is not None:
            raise TinyDistillError(
                "task qa needs the teacher and the student to share one tokenizer (their windows and answer "
                "positions are tokens); build the student from the teacher, or give it the teacher's tokenizer"
            )
        stride = self.settings.doc_stride or min(128, max_length // 3)
        return encode_questions(ex, tokenizer, max_length, stride, training)

    def collator(self, tokenizer, teacher_tokenizer=None):
        return SpanCollator(tokenizer, teacher_tokenizer)

    def augment_into(self, cfg: Config, out: Path, sources: Callable[[], Any]) -> dict:
        return augment_questions_into(cfg, self.settings, out, sources)

    def config_kwargs(self) -> dict:
        return {"num_labels": 2}

    def trained_head(self, config) -> bool:
        return self.recognises(config, None)

    def check_head(self, config, who: str) -> None:
        return None  # a start and an end logit: nothing to permute

    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        from tinydistill import losses as L

        keep = labels[..., 0] != IGNORE if labels is not None else mask.bool()
        fn = L.soft_cross_entropy if cfg.soft_loss == "ce" else L.kl_divergence
        return fn(*L.over_positions(keep, student, teacher), cfg.temperature, cfg.t2_scaling)

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        from tinydistill import losses as L

        (logits,) = L.over_positions(labels[..., 0] != IGNORE, student)
        gold = labels.transpose(1, 2).reshape(-1, labels.shape[1])  # (B * 2, L), as over_positions lays them out
        has = (gold == 1).any(-1)  # an unlabelled window has no gold position
        return L.hard_cross_entropy(logits[has], gold[has].argmax(-1))

    def ensemble_logits(self, logits: list[list], weights: list[float], temperature: float) -> list[np.ndarray]:
        """Per window (L, 2): T log of the weighted mean of the teachers' start (and end) distributions over the
        window's positions at T. The soft loss renormalises it over the answer positions, which weighs each teacher
        by the mass it puts there (all of it, for a fine-tuned teacher, up to the little it leaves on the question)."""
        from scipy.special import log_softmax, logsumexp

        out = []
        for windows in zip(*logits):
            parts = [
                np.log(w) + log_softmax(t.astype(np.float64) / temperature, axis=0) for t, w in zip(windows, weights)
            ]
            out.append((temperature * logsumexp(np.stack(parts), axis=0)).astype(np.float32))
        return out

    def collect(self, logits: Tensor, batch: dict) -> tuple[list, list | None]:
        s, logits = self.settings, logits.float().cpu()
        starts, ends = batch[CHAR_STARTS].cpu(), batch[CHAR_ENDS].cpu()
        outs, golds = [], [] if GOLD_STARTS in batch else None
        for i in range(len(logits)):
            context = _text(batch[CONTEXT][i].cpu())
            score, a, b = best_span(
                logits[i, :, 0], logits[i, :, 1], starts[i] >= 0, s.n_best_size, s.max_answer_length
            )
            text = context[int(starts[i][a]) : int(ends[i][b])] if a >= 0 else ""
            example = int(batch[EXAMPLE][i])
            outs.append((example, score, text))
            if golds is not None:
                spans = zip(batch[GOLD_STARTS][i].tolist(), batch[GOLD_ENDS][i].tolist())
                golds.append((example, [context[a:b] for a, b in spans if a >= 0]))
        return outs, golds

    def metrics(self, outputs, golds) -> dict[str, float]:
        from torchmetrics.functional.text import squad

        best: dict[int, tuple[float, str]] = {}
        for example, score, text in outputs:
            if example not in best or score > best[example][0]:
                best[example] = (score, text)
        references = dict(golds)
        preds = [{"prediction_text": best[k][1], "id": str(k)} for k in references]
        target = [
            {"answers": {"text": refs, "answer_start": [0] * len(refs)}, "id": str(k)} for k, refs in references.items()
        ]
        scores = squad(preds, target)
        return {"f1": float(scores["f1"]) / 100, "exact_match": float(scores["exact_match"]) / 100}
