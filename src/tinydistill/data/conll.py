"""Token-tagged sentences: CoNLL column files and JSONL (``tokens`` / ``tags`` lists), tags in IOB1 or IOB2.

Tags are returned in IOB2 (every entity starts with ``B-``) whatever the file's scheme; :func:`detect_scheme` says
which one a file uses. Every problem is reported as one line naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinydistill.errors import TinyDistillError

DOCSTART = "-DOCSTART-"


@dataclass
class Tagged:
    """Sentences as word lists with one tag per word, and where each sentence starts (for messages)."""

    words: list[list[str]]
    tags: list[list[str]]
    where: list[str]  # "file:line" of each sentence's first word (or "file:row" for JSONL)
    source: str
    scheme: str = "IOB2"  # what the file used; ``tags`` are IOB2 either way
    raw: list | None = None  # each sentence as read (CoNLL: its lines' fields; JSONL: its object), for rewriting
    per_line: bool = False  # one word per line (CoNLL): word k of a sentence is k lines below its first


def _fields(line: str) -> list[str]:
    return line.rstrip("\n").split("\t") if "\t" in line else line.split()


def read_conll(path: Path, tag_column: int = -1) -> Tagged:
    """Sentences of a column file: one word per line (the word first, the tag in ``tag_column``), blank lines between
    sentences, ``-DOCSTART-`` lines skipped. Every word line must have as many fields as the first one."""
    words, tags, where, raw = [], [], [], []
    width = None
    current: list[list[str]] = []
    start = 0

    def close() -> None:
        if current:
            words.append([f[0] for f in current])
            tags.append([f[tag_column] for f in current])
            where.append(f"{path}:{start}")
            raw.append(list(current))
            current.clear()

    try:
        with path.open(encoding="utf-8-sig") as fh:  # a byte-order mark would hide the first -DOCSTART-
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    close()
                    continue
                fields = _fields(line)
                if fields[0] == DOCSTART:
                    close()
                    continue
                if width is None:
                    width = len(fields)
                    if width < 2:
                        raise TinyDistillError(
                            f"{path}:{n}: one field per line, so the file has no tag column "
                            "(expected `word ... tag`, fields separated by spaces or a tab)"
                        )
                    if not -width <= tag_column < width or tag_column in (0, -width):
                        raise TinyDistillError(
                            f"{path}: data.ner.tag_column {tag_column} is not a tag column of its {width} fields "
                            f"(the word is field 0; use 1..{width - 1} or -1 for the last)"
                        )
                if len(fields) != width:
                    raise TinyDistillError(
                        f"{path}:{n}: {len(fields)} fields, but the file's lines have {width} "
                        f"({line.strip()[:40]!r}); a stray space or tab?"
                    )
                if not current:
                    start = n
                current.append(fields)
            close()
    except UnicodeDecodeError as exc:
        raise TinyDistillError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return Tagged(words, tags, where, str(path), raw=raw, per_line=True)


def from_rows(rows: list[dict], tokens_key: str, tags_key: str, source: str, require_tags: bool = True) -> Tagged:
    """Sentences from objects holding a list of words and a list of tags (JSONL files, Hugging Face datasets);
    without ``require_tags`` a row may have no tags (its tag list is then empty)."""
    words, tags, where = [], [], []
    for i, row in enumerate(rows, 1):
        w, t = row.get(tokens_key), row.get(tags_key)
        if not isinstance(w, list):
            raise TinyDistillError(
                f"{source}: row {i} has no list in {tokens_key!r} (keys: {', '.join(map(str, row))}); "
                "set data.ner.tokens_column"
            )
        if t is None and not require_tags:
            t = []
        elif not isinstance(t, list):
            raise TinyDistillError(
                f"{source}: row {i} has no list in {tags_key!r} (keys: {', '.join(map(str, row))}); "
                "set data.ner.tags_column"
            )
        if t and len(t) != len(w) or (require_tags and len(t) != len(w)):
            raise TinyDistillError(f"{source}: row {i} has {len(w)} tokens but {len(t)} tags")
        for what, values in ((tokens_key, w), (tags_key, t)):
            bad = next(
                (j for j, x in enumerate(values) if isinstance(x, bool) or not isinstance(x, (str, int, float))), None
            )
            if bad is not None:  # a null would become the word "None"
                raise TinyDistillError(
                    f"{source}: row {i}, {what!r} item {bad + 1} is {json.dumps(values[bad])}, not a word or tag"
                )
        words.append([str(x) for x in w])
        tags.append([str(x) for x in t])
        where.append(f"{source}:{i}")
    return Tagged(words, tags, where, source, raw=rows)


def check_sentences(data: Tagged) -> None:
    """Refuse an empty sentence or an empty word (the words are what a model reads)."""
    for w, place in zip(data.words, data.where):
        if not w:
            raise TinyDistillError(f"{place}: an empty sentence (no tokens); drop it")
        bad = next((x for x in w if not x.strip()), None)
        if bad is not None:
            raise TinyDistillError(f"{place}: a sentence holds an empty token")


def _split(tag: str) -> tuple[str, str | None]:
    """('B' | 'I' | 'O', entity type)."""
    if tag == "O":
        return "O", None
    if len(tag) > 2 and tag[0] in "BIES" and tag[1] in "-_":
        return tag[0], tag[2:]
    return "?", None


def detect_scheme(tags: list[list[str]]) -> str:
    """'IOB1' when entities mostly start with ``I-`` (B- only between two adjacent entities of one type), else
    'IOB2'."""
    starts_b = starts_i = 0
    for sent in tags:
        prev = "O"
        for tag in sent:
            kind, typ = _split(tag)
            pkind, ptyp = _split(prev)
            if kind == "I" and (pkind == "O" or ptyp != typ):
                starts_i += 1
            elif kind == "B" and pkind == "O":
                starts_b += 1
            prev = tag
    return "IOB1" if starts_i > starts_b else "IOB2"


def to_iob2(data: Tagged, scheme: str) -> Tagged:
    """``data`` with IOB2 tags (converted from IOB1 where ``scheme`` says so). A tag that is neither ``O`` nor
    ``B-``/``I-`` plus a type, or (in IOB2) an ``I-`` tag that starts an entity, is refused with its place."""
    out = []
    for sent, place in zip(data.tags, data.where):
        file, _, first = place.rpartition(":")
        new, prev = [], "O"
        for k, tag in enumerate(sent):
            kind, typ = _split(tag)
            at = f"{file}:{int(first) + k}" if data.per_line else f"{place}, token {k + 1}"
            if kind not in "BIO" or (kind == "O" and tag != "O"):
                raise TinyDistillError(f"{at}: tag {tag!r} is not O, B-<type> or I-<type>")
            pkind, ptyp = _split(prev)
            starts = kind == "I" and (pkind == "O" or ptyp != typ)
            if starts and scheme == "IOB2":
                raise TinyDistillError(
                    f"{at}: {tag!r} follows {prev!r} in an IOB2 file (an entity must start with B-{typ}); "
                    "fix the tag, or set data.ner.tag_scheme: iob1 if the file is IOB1"
                )
            new.append(f"B-{typ}" if starts else tag)
            prev = tag
        out.append(new)
    return Tagged(data.words, out, data.where, data.source, scheme, data.raw, data.per_line)


def entity_types(tags: list[list[str]]) -> list[str]:
    return sorted({t[2:] for sent in tags for t in sent if t != "O"})


def label_set(types: list[str]) -> list[str]:
    """The IOB2 tags of ``types``: O, then B- and I- of each type."""
    return ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
