"""Token classification (named-entity recognition): one IOB2 tag per word, read from CoNLL column files, JSONL or a
Hugging Face dataset.

Words are split into pieces by the model's tokenizer; the first piece of a word carries its tag (with
``label_all_pieces`` the others carry it too, as ``I-``, for the training losses only). Losses count labelled real
tokens only. Evaluation is per word, entity level (seqeval, conlleval rules): a word with no piece in the model's
input (cut off by ``max_length``) is scored as predicted ``O``, so its entity counts as missed, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tinydistill.config import Config, DataConfig, LossConfig
from tinydistill.data import conll
from tinydistill.data.files import data_path
from tinydistill.data.keys import CACHED_LOGITS, LABELS, WORD_KEYS
from tinydistill.data.readers import SPLITS, Examples, kept_rows, read_table, read_transfer, subset
from tinydistill.errors import TinyDistillError
from tinydistill.registry import register_kind
from tinydistill.tasks.base import AutoClass, Task
from tinydistill.ui import say

if TYPE_CHECKING:
    from torch import Tensor

    from tinydistill.data.loaders import EncodedDataset

IGNORE = -100  # label id the losses skip (padding, special tokens, continuation pieces)


class NerSettings(BaseModel):
    """``data.ner``: where the words and tags are in the files, their tag scheme, which pieces carry a tag."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    old_keys: ClassVar[dict[str, str]] = {}

    tag_column: int = Field(-1, description="column files: the tag field (0 is the word)")
    tokens_column: str = Field("tokens", description="JSONL / datasets: the list of words")
    tags_column: str = Field("tags", description="JSONL / datasets: the list of tags")
    tag_scheme: Literal["auto", "iob1", "iob2"] = Field(
        "auto", description="the files' tag scheme (auto: found from the tags; read as IOB2)"
    )
    label_all_pieces: bool = Field(
        False,
        description="every piece of a word carries its tag in the training losses (default: the first piece; "
        "evaluation always scores words)",
    )


def tagged_file(cfg: DataConfig, split: str) -> Path | None:
    """The file of ``split``: data.<split>_file, or in data.dir the one file named <split>.<anything>."""
    given = {"train": cfg.train_file, "dev": cfg.dev_file, "test": cfg.test_file}[split]
    if given is not None:
        return Path(given)
    if cfg.dir is None:
        return None
    found = sorted(Path(cfg.dir).glob(f"{split}.*"))
    if len(found) > 1:
        raise TinyDistillError(f"{cfg.dir} holds several {split} files ({', '.join(p.name for p in found)})")
    return found[0] if found else None


def read_tagged(cfg: DataConfig, split: str, require_tags: bool = True) -> conll.Tagged:
    """A split's sentences with IOB2 tags, as the file has them (no subset, no label ids; without ``require_tags``,
    JSONL rows may lack tags)."""
    if split not in SPLITS:
        raise TinyDistillError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    cfg = cfg.for_split(split)
    ner = TokenClassification.settings_of(cfg)
    if cfg.hf_dataset:
        from tinydistill.data.readers import hf_rows

        source = f"{cfg.hf_dataset}[{split}]"
        rows = hf_rows(cfg, split, ner.tags_column)
        data = conll.from_rows(rows, ner.tokens_column, ner.tags_column, source, require_tags)
    else:
        path = tagged_file(cfg, split)
        if path is None:
            raise TinyDistillError(f"no {split} data: set data.{split}_file (or data.dir with a {split}.* file)")
        data_path(path, f"{split} file", folder=False)
        if path.suffix.lower() in (".jsonl", ".json"):
            data = conll.from_rows(read_table(path), ner.tokens_column, ner.tags_column, str(path), require_tags)
        else:
            data = conll.read_conll(path, ner.tag_column)
    if not data.words:
        raise TinyDistillError(f"{data.source} has no sentences")
    conll.check_sentences(data)
    scheme = ner.tag_scheme.upper() if ner.tag_scheme != "auto" else conll.detect_scheme(data.tags)
    tagged = conll.to_iob2(data, scheme)
    if ner.tag_scheme == "auto" and data.source not in _ANNOUNCED:
        _ANNOUNCED.add(data.source)
        say(f"{data.source}: tags in {scheme}" + (", converted to IOB2" if scheme == "IOB1" else ""))
    return tagged


_ANNOUNCED: set[str] = set()  # files whose tag scheme was printed (once per file and process)


def encode_words(
    ex: Examples, tokenizer, max_length: int, label_all_pieces: bool = False, labels: list[str] | None = None
) -> EncodedDataset:
    """Rows of ``input_ids``/``attention_mask`` (...), ``labels`` per piece (-100 where no loss counts), and per word
    its first piece (``word_starts``, -1 when cut off) and gold tag (``word_tags``), for evaluation."""
    from tinydistill.data.loaders import EncodedDataset, check_not_empty

    if not getattr(tokenizer, "is_fast", False):
        raise TinyDistillError(
            f"token classification needs a fast tokenizer (word alignment); {type(tokenizer).__name__} is not one"
        )
    try:
        enc = tokenizer(ex.words, is_split_into_words=True, truncation=True, max_length=max_length)
    except (AssertionError, ValueError) as exc:  # byte-level BPE (RoBERTa, ...) without add_prefix_space
        raise TinyDistillError(
            f"{type(tokenizer).__name__} cannot read pre-split words: {str(exc).splitlines()[0]} (save the "
            "tokenizer with add_prefix_space=True into the model folder)"
        ) from None
    rows, cut_sentences, cut_words, empty_words = [], 0, 0, 0
    for i in range(len(ex)):
        row = {k: enc[k][i] for k in enc}
        word_ids = enc.word_ids(i)
        starts = [-1] * len(ex.words[i])
        for pos, w in enumerate(word_ids):
            if w is not None and starts[w] < 0:
                starts[w] = pos
        row["word_starts"] = starts
        last = max((w for w in word_ids if w is not None), default=-1)
        cut = len(starts) - 1 - last  # words after the last one that fits
        cut_sentences += cut > 0
        cut_words += cut
        empty_words += starts.count(-1) - cut  # words the tokenizer makes no piece of
        if ex.labels is not None:
            tags = ex.labels[i]
            row["word_tags"] = list(tags)
            row[LABELS] = [
                _piece_label(tags, w, pos, starts, label_all_pieces, labels) for pos, w in enumerate(word_ids)
            ]
        rows.append(row)
    data = EncodedDataset(rows, None, ex)
    check_not_empty(data, tokenizer, "")
    if cut_words:
        say(
            f"{ex.source}: {cut_sentences} of {len(ex)} sentences do not fit in {max_length} pieces; "
            f"their last {cut_words} words are cut off and scored as predicted O (an entity there counts as missed)"
        )
    if empty_words:
        say(f"{ex.source}: {empty_words} words make no piece at all (e.g. only zero-width characters); scored as O")
    return data


def _piece_label(tags, w, pos, starts, all_pieces, names) -> int:
    if w is None:
        return IGNORE
    if starts[w] == pos:
        return tags[w]
    if not all_pieces or tags[w] == IGNORE:  # a transfer-set word has no tag
        return IGNORE
    name = names[tags[w]]  # a continuation piece of B-X is inside the entity: I-X
    return names.index("I-" + name[2:]) if name.startswith("B-") and "I-" + name[2:] in names else tags[w]


class TokenCollator:
    """Pads the inputs (PadBoth), the per-piece labels with -100, the per-word keys with -100 / -1 and cached teacher
    logits (L, C) per row with zeros."""

    def __init__(self, tokenizer, teacher_tokenizer=None) -> None:
        from tinydistill.data.loaders import PadBoth

        self.inputs = PadBoth(tokenizer, teacher_tokenizer)

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        extra = (LABELS, CACHED_LOGITS, *WORD_KEYS)
        batch = self.inputs([{k: v for k, v in r.items() if k not in extra} for r in rows])
        width = batch["input_ids"].shape[1]
        if LABELS in rows[0]:
            batch[LABELS] = _pad([r[LABELS] for r in rows], width, IGNORE)
        for key in WORD_KEYS:
            if key in rows[0]:
                batch[key] = _pad([r[key] for r in rows], max(len(r[key]) for r in rows), IGNORE)
        if CACHED_LOGITS in rows[0]:
            t = torch.zeros(len(rows), width, len(rows[0][CACHED_LOGITS][0]))
            for i, r in enumerate(rows):
                # torch.tensor copies: cached rows are read-only memory maps
                t[i, : len(r[CACHED_LOGITS])] = torch.tensor(r[CACHED_LOGITS])
            batch[CACHED_LOGITS] = t
        return batch


def _pad(seqs: list[list[int]], width: int, value: int) -> Tensor:
    import torch

    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


@register_kind
class TokenClassification(Task):
    """One IOB2 tag per word: losses over labelled real tokens; entity-level precision, recall and F1 (seqeval)."""

    kind = "token-classification"
    aliases = ("ner",)
    settings_key = "ner"
    settings_model = NerSettings
    recognise_rank = 2
    per_token_outputs = True
    auto_model = AutoClass("AutoModelForTokenClassification")
    pipeline_tag = "token-classification"
    no_label = IGNORE  # the tag of every word of a transfer-set sentence

    def __init__(self, name: str, label_names: list[str], metric: str = "f1", settings: NerSettings | None = None):
        super().__init__(name, label_names, metric, settings)

    @classmethod
    def recognises(cls, config, folder: Path | None) -> bool:
        return any(a.endswith("ForTokenClassification") for a in getattr(config, "architectures", None) or [])

    @classmethod
    def from_data(cls, cfg: DataConfig, name: str) -> TokenClassification:
        """Its label set from data.labels, or O plus B-/I- of every entity type of the training file."""
        labels = list(cfg.labels) if cfg.labels else conll.label_set(conll.entity_types(read_tagged(cfg, "train").tags))
        if len(labels) < 2:
            raise TinyDistillError("the training data holds no entity tag (every tag is O): nothing to learn")
        return cls(name, labels, "f1", cls.settings_of(cfg))

    def read(self, cfg: DataConfig, split: str, seed: int = 0, require_labels: bool = True) -> Examples:
        if cfg.soft_label_column:
            raise TinyDistillError("data.soft_label_column is for one label per text; token classification has none")
        data = read_tagged(cfg, split, require_labels)
        index = {t: i for i, t in enumerate(self.label_names)}
        ids = []
        for tags, place in zip(data.tags, data.where):
            unknown = next((t for t in tags if t not in index), None)
            if unknown is not None:
                raise TinyDistillError(
                    f"{place}: tag {unknown!r} (in the sentence starting there) is not in the label set "
                    f"{self.label_names}; fix the tag or set data.labels"
                )
            ids.append([index[t] for t in tags])
        labelled = all(len(t) == len(w) for t, w in zip(data.tags, data.words))
        ex = Examples([" ".join(w) for w in data.words], None, ids if labelled else None, data.source, data.words)
        keep = kept_rows(cfg, split, len(ex), seed)
        return ex if keep is None else subset(ex, keep)

    def read_transfer(self, cfg: DataConfig, path: str | Path) -> Examples:
        """Untagged sentences for the teacher to tag: a .txt file (one sentence per line, words split at white
        space) or JSONL (data.ner.tokens_column; tags, if any, ignored). Every word's tag is IGNORE: only the soft loss
        over every real token (soft_tokens: all) and the intermediate losses learn from them."""
        path = Path(path)
        if path.suffix.lower() == ".txt":
            words = [t.split() for t in read_transfer(cfg, path, self.no_label).texts]
        elif path.suffix.lower() in (".jsonl", ".json"):
            ner = self.settings
            data = conll.from_rows(read_table(path), ner.tokens_column, ner.tags_column, str(path), False)
            conll.check_sentences(data)
            words = data.words
        else:
            raise TinyDistillError(
                f"{path}: a transfer file for token classification is .txt (one sentence per line) or JSONL "
                f"(a {self.settings.tokens_column!r} list per row)"
            )
        if not words:
            raise TinyDistillError(f"transfer file {path} has no sentences")
        return Examples([" ".join(w) for w in words], None, [[self.no_label] * len(w) for w in words], str(path), words)

    def augment_into(self, cfg: Config, out: Path, sources: Callable[[], Any]) -> dict:
        """Only words tagged ``O`` are replaced, never an entity's: every copy keeps its tags word for word."""
        self.read(cfg.data, "train", seed=cfg.seed)  # validates words and tags with the usual messages
        data = read_tagged(cfg.data, "train")
        keep = kept_rows(cfg.data, "train", len(data.words), cfg.seed)
        if keep is not None:
            data = conll.Tagged(
                *([getattr(data, k)[i] for i in keep] for k in ("words", "tags", "where")),
                data.source,
                data.scheme,
                [data.raw[i] for i in keep],
                data.per_line,
            )
        others = [tagged_file(cfg.data, s) for s in ("dev", "test")] if cfg.data.dir is not None else []
        others = [f for f in others if f is not None and f.is_file()]
        from tinydistill.augment.tagged import augment_tagged_into

        return augment_tagged_into(cfg, data, self.settings.tokens_column, out, sources, others)

    def check_transfer(self, losses: LossConfig) -> None:
        if losses.soft_weight > 0 and losses.soft_tokens == "labelled":
            raise TinyDistillError(
                "data.transfer_files hold untagged sentences: the soft loss over labelled tokens never sees them; "
                "set soft_tokens: all (the loss then counts every real token)"
            )

    def encode(
        self, ex: Examples, tokenizer, max_length: int, teacher_tokenizer=None, training: bool = False
    ) -> EncodedDataset:
        if teacher_tokenizer is not None:
            raise TinyDistillError(
                "token classification needs the teacher and the student to share one tokenizer (their tags sit on "
                "the pieces of each word); build the student from the teacher, or give it the teacher's tokenizer"
            )
        return encode_words(ex, tokenizer, max_length, training and self.settings.label_all_pieces, self.label_names)

    def collator(self, tokenizer, teacher_tokenizer=None):
        return TokenCollator(tokenizer, teacher_tokenizer)

    def soft_loss(
        self, cfg: LossConfig, student: Tensor, teacher: Tensor, labels: Tensor | None, mask: Tensor
    ) -> Tensor:
        if cfg.soft_tokens == "labelled":
            if labels is None:
                raise TinyDistillError("soft_tokens: labelled needs labelled data; set soft_tokens: all")
            keep = labels != IGNORE
        else:
            keep = mask.bool()
        from tinydistill import losses as L

        fn = L.soft_cross_entropy if cfg.soft_loss == "ce" else L.kl_divergence
        return fn(*L.select_tokens(keep, student, teacher), cfg.temperature, cfg.t2_scaling)

    def hard_loss(self, student: Tensor, labels: Tensor) -> Tensor:
        from tinydistill import losses as L

        keep = labels != IGNORE  # padding, continuation pieces, transfer-set sentences
        s, y = L.select_tokens(keep, student, labels)
        return L.hard_cross_entropy(s, y)

    def collect(self, logits: Tensor, batch: dict) -> tuple[list, list | None]:
        import torch

        pred = logits.float().argmax(-1).cpu()
        starts = batch["word_starts"].cpu()
        outs = []
        for i in range(len(starts)):
            s = starts[i][starts[i] != IGNORE]
            words = torch.full((len(s),), self.label_names.index("O") if "O" in self.label_names else 0)
            inside = s >= 0
            words[inside] = pred[i, s[inside]]
            outs.append(words.numpy())
        if "word_tags" not in batch:
            return outs, None
        tags = batch["word_tags"].cpu()
        return outs, [t[t != IGNORE].numpy() for t in tags]

    def metrics(self, outputs, golds) -> dict[str, float]:
        from seqeval.metrics import classification_report

        names = self.label_names
        pred = [[names[i] for i in p] for p in outputs]
        gold = [[names[i] for i in g] for g in golds]
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
        micro = report["micro avg"]
        flat_p, flat_g = np.concatenate([*outputs, []]), np.concatenate([*golds, []])
        out = {
            "f1": float(micro["f1-score"]),
            "precision": float(micro["precision"]),
            "recall": float(micro["recall"]),
            "token_accuracy": float((flat_p == flat_g).mean()) if len(flat_g) else 0.0,
        }
        for typ, row in report.items():
            if not typ.endswith(" avg"):
                out[f"f1_{typ}"] = float(row["f1-score"])
        return out
