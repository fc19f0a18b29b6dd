"""Layer maps: which teacher layer each student layer learns from.

Layers are numbered 1..M (student) and 1..N (teacher); 0 is the embedding layer, distilled by the
embedding loss and never part of a map. A pair (m, n) aligns student layer m's output hidden state
with teacher layer n's, and student layer m's attention scores with teacher layer n's.

uniform (TinyBERT's g(m) = m * N / M): m -> floor(m * N / M). When N is a multiple of M this is
exactly TinyBERT's map (hidden j <-> j*k, attention i <-> i*k + k - 1 with 0-based attentions,
k = N / M). When it is not, the floor keeps the last student layer on the last teacher layer
(M * N / M = N) and spreads the others as evenly as integers allow, e.g. N=6, M=4 -> 1, 3, 4, 6.
A student deeper than its teacher (M > N) maps its first layers to teacher layer 1 (never to 0).
last: only (M, N).
explicit: a list of [student_layer, teacher_layer] pairs, each index validated.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinydistill.errors import TinyDistillError

LayerPairs = list[tuple[int, int]]


def uniform_map(num_student: int, num_teacher: int) -> LayerPairs:
    """TinyBERT's uniform map g(m) = floor(m * N / M) for m = 1..M."""
    _check_sizes(num_student, num_teacher)
    return [(m, max(1, (m * num_teacher) // num_student)) for m in range(1, num_student + 1)]


def last_map(num_student: int, num_teacher: int) -> LayerPairs:
    """Only the last student layer learns, from the last teacher layer."""
    _check_sizes(num_student, num_teacher)
    return [(num_student, num_teacher)]


def explicit_map(pairs: Sequence[Sequence[int]], num_student: int, num_teacher: int) -> LayerPairs:
    """Validate user-given (student_layer, teacher_layer) pairs, 1-based."""
    _check_sizes(num_student, num_teacher)
    out: LayerPairs = []
    for pair in pairs:
        if len(pair) != 2:
            raise TinyDistillError(f"layer_map entry {list(pair)} must be [student_layer, teacher_layer]")
        s, t = int(pair[0]), int(pair[1])
        if not 1 <= s <= num_student:
            raise TinyDistillError(
                f"layer_map entry {[s, t]}: student layer {s} is outside 1..{num_student} "
                f"(the student has {num_student} layers; 0 is the embedding layer, set by embedding_weight)"
            )
        if not 1 <= t <= num_teacher:
            raise TinyDistillError(
                f"layer_map entry {[s, t]}: teacher layer {t} is outside 1..{num_teacher} "
                f"(the teacher has {num_teacher} layers)"
            )
        out.append((s, t))
    if len({s for s, _ in out}) != len(out):
        raise TinyDistillError(f"layer_map {pairs} maps a student layer twice")
    if not out:
        raise TinyDistillError("layer_map is empty")
    return out


def resolve_map(spec: str | Sequence[Sequence[int]], num_student: int, num_teacher: int) -> LayerPairs:
    """Turn a config value ('uniform', 'last' or a list of pairs) into validated layer pairs."""
    if spec == "uniform":
        return uniform_map(num_student, num_teacher)
    if spec == "last":
        return last_map(num_student, num_teacher)
    if isinstance(spec, str):
        raise TinyDistillError(f"unknown layer_map {spec!r}: use uniform, last, or a list of [student, teacher] pairs")
    return explicit_map(spec, num_student, num_teacher)


def _check_sizes(num_student: int, num_teacher: int) -> None:
    if num_student < 1 or num_teacher < 1:
        raise TinyDistillError(f"layer counts must be positive (student {num_student}, teacher {num_teacher})")
