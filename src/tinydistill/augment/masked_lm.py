"""Masked-LM candidates: each queried word masked in its own text (never next to the unmasked original, the reference
script's leak), many queries per forward pass, scores only at the masked positions, under ``inference_mode``."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from tinydistill.augment.words import Slot, with_word
from tinydistill.ui import track


def _vocabulary(tokenizer: PreTrainedTokenizerBase) -> tuple[list[str], torch.Tensor]:
    """Each token id as a plain word (BPE / SentencePiece word-start marks removed) and whether it may be a candidate:
    a whole, alphabetic, non-special token (WordPiece ``##`` continuations are pieces, not words)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    words, ok = [], []
    for i, tok in enumerate(tokens):
        tok = tok or ""
        word = tok.lstrip("Ġ▁")
        words.append(word)
        ok.append(i not in special and not tok.startswith("##") and word.isalpha())
    return words, torch.tensor(ok)


def _split_head(model: nn.Module) -> tuple[nn.Module | None, nn.Module | None]:
    """(encoder, LM head) when the model is one encoder plus one head module (BERT, RoBERTa, ...): the head is then
    applied to the masked positions only. (None, None) otherwise: full logits are computed."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    heads = [m for name, m in model.named_children() if m is not base and any(True for _ in m.parameters())]
    return (base, heads[0]) if isinstance(base, nn.Module) and len(heads) == 1 else (None, None)


class MaskedLMCandidates:
    """Top-k replacement words for (text, slot) queries from a fill-mask model."""

    def __init__(
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64, max_length: int = 128
    ) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        self.words, self.allowed = _vocabulary(tokenizer)
        self.encoder, self.head = _split_head(model)
        self._pieces: dict[str, int] = {}
        self._masks: dict[int, torch.Tensor] = {}

    def is_single_piece(self, word: str) -> bool:
        if word not in self._pieces:
            self._pieces[word] = len(self.tokenizer.tokenize(word))
        return self._pieces[word] == 1

    @torch.inference_mode()
    def candidates(self, queries: list[tuple[str, Slot]], k: int) -> list[list[str]]:
        """For each query, up to ``k`` words the model puts at the masked slot (best first, the original excluded).
        A query whose mask falls beyond ``max_length`` gets none."""
        texts = [with_word(text, slot, self.tokenizer.mask_token) for text, slot in queries]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[str]] = [[] for _ in texts]
        batches = [order[lo : lo + self.batch_size] for lo in range(0, len(order), self.batch_size)]
        for batch in track(batches, "masked-LM candidates"):
            enc = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            is_mask = enc["input_ids"] == self.tokenizer.mask_token_id
            where = is_mask.int().argmax(dim=1)
            scores = self._scores_at(enc, where).float()
            scores[:, ~self._allowed(scores.shape[1])] = float("-inf")
            top = scores.topk(min(k + 1, scores.shape[1]), dim=1)
            for row, i in enumerate(batch):
                if not is_mask[row].any():
                    continue
                original = queries[i][1].word.lower()
                words = [
                    self.words[t]
                    for t, s in zip(top.indices[row].tolist(), top.values[row].tolist())
                    if s != float("-inf")
                ]
                out[i] = [w for w in words if w.lower() != original][:k]
        return out

    def _allowed(self, vocab: int) -> torch.Tensor:
        """The candidate mask sized to the model's output (some models pad their vocabulary past the tokenizer's),
        made once per size."""
        if vocab not in self._masks:
            allowed = torch.zeros(vocab, dtype=torch.bool)
            n = min(vocab, len(self.allowed))
            allowed[:n] = self.allowed[:n]
            self._masks[vocab] = allowed.to(self.device)
        return self._masks[vocab]

    def _scores_at(self, enc, where: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(where.shape[0], device=where.device)
        if self.encoder is not None:
            hidden = self.encoder(**enc).last_hidden_state[rows, where]
            return self.head(hidden)
        return self.model(**enc).logits[rows, where]
