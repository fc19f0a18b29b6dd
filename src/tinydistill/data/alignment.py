"""Teacher and student with different tokenizers: each model gets its own tokenization of the same text, and
the rows say how the two line up, so intermediate losses compare what corresponds.

- ``positions``: both tokenizers cut every text into the same pieces (MPNet and BERT: the same WordPiece pieces,
  other ids, ``<s>``/``</s>`` for ``[CLS]``/``[SEP]``, and one more ``</s>`` between the two texts of a pair).
  ``align_positions[i]`` is the teacher position of student position ``i``; hidden states and attention scores
  are compared token by token (a teacher token with no student counterpart is left out).
- ``words``: the pieces differ. ``student_words`` / ``teacher_words`` give each token the index of the student's
  word it lies in (by character offsets, in the same text of the pair; -1 for special tokens); hidden states are
  mean-pooled over each word's pieces in both models and compared word by word. Attention has no word-level
  counterpart that keeps its meaning, so the attention term is refused in this case.

Needs fast tokenizers (character offsets).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from tinydistill.data.keys import TEACHER_PREFIX
from tinydistill.errors import TinyDistillError


def _pieces(enc, i: int) -> list[tuple[int, int, int]]:
    """(text index, start, end) of every non-special token of row ``i``."""
    seq, offsets = enc.sequence_ids(i), enc["offset_mapping"][i]
    return [(s, *offsets[j]) for j, s in enumerate(seq) if s is not None]


def _positions(student_seq: list, teacher_seq: list) -> list[int]:
    """Teacher position of each student position, where both cut the same pieces: real tokens in order; a special
    token goes to the teacher token right after the one its predecessor maps to (the first one at position 0)."""
    real_t = [j for j, s in enumerate(teacher_seq) if s is not None]
    out, k = [], 0
    for i, s in enumerate(student_seq):
        if s is not None:
            out.append(real_t[k])
            k += 1
        else:
            nxt = 0 if i == 0 else out[-1] + 1
            out.append(nxt if nxt < len(teacher_seq) else -1)
    return out


def _words(enc, i: int) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Word index of each token of row ``i`` (-1: special) and each word's (text index, start, end)."""
    seq, offsets, word_ids = enc.sequence_ids(i), enc["offset_mapping"][i], enc.word_ids(i)
    index: dict[tuple[int, int], int] = {}
    spans: list[list[int]] = []
    out = []
    for j, (s, w) in enumerate(zip(seq, word_ids)):
        if s is None or w is None:
            out.append(-1)
            continue
        key = (s, w)
        if key not in index:
            index[key] = len(spans)
            spans.append([s, *offsets[j]])
        spans[index[key]][2] = offsets[j][1]
        out.append(index[key])
    return out, [tuple(x) for x in spans]


def _teacher_words(enc, i: int, spans: list[tuple[int, int, int]]) -> list[int]:
    """For each teacher token, the student word it overlaps in the same text (-1: none, or special).

    Tokens and words both come in text order, so one forward sweep finds each token's first overlapping word: a
    word that ends before a token starts cannot overlap any later token."""
    seq, offsets = enc.sequence_ids(i), enc["offset_mapping"][i]
    out, w = [], 0
    for s, (a, b) in zip(seq, offsets):
        if s is None:
            out.append(-1)
            continue
        while w < len(spans) and (spans[w][0] < s or (spans[w][0] == s and spans[w][2] <= a)):
            w += 1
        overlaps = w < len(spans) and spans[w][0] == s and spans[w][1] < b
        out.append(w if overlaps else -1)
    return out


def _equal_cut(texts, pairs, student, teacher, max_length: int) -> tuple[list, list]:
    """Each row's student and teacher encoding as ``(encoding, index)``, truncated so that both keep the same pieces
    where they cut the same pieces: a side that adds more special tokens (MPNet's second ``</s>`` in a pair) keeps
    fewer pieces at one ``max_length``, so the other side of such a row is encoded again with that many fewer."""
    kw = {"truncation": True, "return_offsets_mapping": True}
    s_enc = student(texts, pairs, max_length=max_length, **kw)
    t_enc = teacher(texts, pairs, max_length=max_length, **kw)
    s_rows, t_rows = [(s_enc, i) for i in range(len(texts))], [(t_enc, i) for i in range(len(texts))]
    for i in range(len(texts)):
        ns, nt = len(_pieces(s_enc, i)), len(_pieces(t_enc, i))
        if ns == nt:
            continue
        tok, rows = (student, s_rows) if ns > nt else (teacher, t_rows)
        pair = None if pairs is None else [pairs[i]]
        again = tok([texts[i]], pair, max_length=max_length - abs(ns - nt), **kw)
        if _pieces(again, 0) == _pieces(*(t_rows if ns > nt else s_rows)[i]):
            rows[i] = (again, 0)
    return s_rows, t_rows


def encode_pair(
    texts: list[str],
    pairs: list[str] | None,
    student: PreTrainedTokenizerBase,
    teacher: PreTrainedTokenizerBase,
    max_length: int,
) -> tuple[list[dict], str]:
    """Rows with the student's inputs, the teacher's (``teacher_*``) and their alignment; and its kind,
    ``positions`` when every row has the same pieces in both (after truncating both to the same pieces), else
    ``words``."""
    if not (student.is_fast and teacher.is_fast):
        raise TinyDistillError(
            "teacher and student tokenizers differ and one of them is not a fast tokenizer; "
            "aligning them needs character offsets (a tokenizer.json)"
        )
    s_rows, t_rows = _equal_cut(texts, pairs, student, teacher, max_length)
    same = all(_pieces(*s) == _pieces(*t) for s, t in zip(s_rows, t_rows))
    rows = []
    for (s_enc, i), (t_enc, j) in zip(s_rows, t_rows):
        row = {k: s_enc[k][i] for k in s_enc if k != "offset_mapping"}
        row |= {TEACHER_PREFIX + k: t_enc[k][j] for k in t_enc if k != "offset_mapping"}
        if same:
            row["align_positions"] = _positions(s_enc.sequence_ids(i), t_enc.sequence_ids(j))
        else:
            row["student_words"], spans = _words(s_enc, i)
            row["teacher_words"] = _teacher_words(t_enc, j, spans)
        rows.append(row)
    return rows, "positions" if same else "words"


def same_vocabulary(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    """Both tokenizers give every token the same id (one tokenization can feed both models)."""
    return a.get_vocab() == b.get_vocab()
