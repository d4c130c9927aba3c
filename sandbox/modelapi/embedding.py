"""Deterministic, versioned embedding "models" computed with numpy.

These are not neural models: they are signed feature-hashing vectorisers
("the hashing trick") that behave like an embedding model from an operator's
point of view. Each version has a fixed output dimension and feature set, so
an index built by one version cannot be queried with another - exactly the
failure mode a real model upgrade causes.

* ``v1`` (dim 256): lower-cased word unigrams minus a small stop-word list,
  sublinear term frequency ``1 + ln(tf)``.
* ``v2`` (dim 384): the v1 unigrams plus word bigrams and character 4-grams
  of each word (with ``#`` word-boundary markers), hashed with a different
  seed, so similar words ("timeout"/"timeouts") land close together.

Hashing uses :func:`hashlib.blake2b` with a per-model personalisation string,
never Python's salted :func:`hash`, so a text maps to bit-identical vectors in
every process and on every machine. Each feature lands in bucket
``h mod dim`` with sign ``+1`` or ``-1`` from the top bit of ``h`` (signed
hashing keeps collisions unbiased). Vectors are L2-normalised float32; a text
with no features (empty, or only stop words) embeds to the zero vector.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

__all__ = [
    "EmbeddingModel",
    "MODELS",
    "STOP_WORDS",
    "UnknownModelError",
    "get_model",
    "tokenize",
]

STOP_WORDS: frozenset[str] = frozenset(
    """a an and are as at be been by can for from has have how i in into is it
    its of on or our so that the their then there this to was we were what when
    where which while why will with you your""".split()
)

_TOKEN_RE = re.compile(r"[a-z0-9]+")


class UnknownModelError(LookupError):
    """Raised when a model version is not one of :data:`MODELS`."""


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and return its alphanumeric words minus stop words."""
    return [t for t in _TOKEN_RE.findall(text.lower()) if t not in STOP_WORDS]


@lru_cache(maxsize=1 << 17)
def _bucket(feature: str, seed: bytes, dimension: int) -> tuple[int, float]:
    """Return ``(index, sign)`` of ``feature`` for a model seed and dimension."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=seed).digest()
    value = int.from_bytes(digest, "little")
    return value % dimension, (1.0 if value >> 63 else -1.0)


@dataclass(frozen=True)
class EmbeddingModel:
    """A versioned hashing vectoriser; see the module docstring for the scheme.

    Attributes:
        version: Public version string, e.g. ``"v1"``.
        dimension: Length of every output vector.
        seed: blake2b personalisation bytes (at most 16); changes every bucket.
        bigram_weight: Weight of word-bigram features (0 disables them).
        char_ngram: Character n-gram size taken from each word (0 disables).
        char_weight: Weight of character n-gram features.
        description: One-line human description.
    """

    version: str
    dimension: int
    seed: bytes
    bigram_weight: float = 0.0
    char_ngram: int = 0
    char_weight: float = 0.0
    description: str = ""

    def features(self, text: str) -> Counter[str]:
        """Return the weighted feature counts of ``text`` (before hashing)."""
        words = tokenize(text)
        feats: Counter[str] = Counter("u:" + w for w in words)
        if self.bigram_weight > 0:
            feats.update(f"b:{a} {b}" for a, b in pairwise(words))
        if self.char_ngram > 0 and self.char_weight > 0:
            n = self.char_ngram
            for word in words:
                padded = f"#{word}#"
                feats.update("c:" + padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
        return feats

    def _weight(self, feature: str) -> float:
        """Return the family weight of a feature from its prefix."""
        kind = feature[0]
        if kind == "b":
            return self.bigram_weight
        if kind == "c":
            return self.char_weight
        return 1.0

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text into an L2-normalised float32 vector of ``dimension``."""
        vec = np.zeros(self.dimension, dtype=np.float64)
        feats = self.features(text)
        if feats:
            idx = np.empty(len(feats), dtype=np.intp)
            val = np.empty(len(feats), dtype=np.float64)
            for i, (feature, tf) in enumerate(feats.items()):
                bucket, sign = _bucket(feature, self.seed, self.dimension)
                idx[i] = bucket
                val[i] = sign * self._weight(feature) * (1.0 + math.log(tf))
            np.add.at(vec, idx, val)
            # fsum is exactly rounded, so the norm cannot depend on BLAS or SIMD paths.
            norm = math.sqrt(math.fsum((vec * vec).tolist()))
            if norm > 0.0:
                vec /= norm
        return vec.astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape ``(len(texts), dimension)``."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of texts, not a single string")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.embed_one(text)
        return out


MODELS: dict[str, EmbeddingModel] = {
    "v1": EmbeddingModel(
        version="v1",
        dimension=256,
        seed=b"labkit-embed-v1",
        description="word unigrams, sublinear tf, signed hashing into 256 dims",
    ),
    "v2": EmbeddingModel(
        version="v2",
        dimension=384,
        seed=b"labkit-embed-v2",
        bigram_weight=0.7,
        char_ngram=4,
        char_weight=0.35,
        description="unigrams + bigrams + char 4-grams, signed hashing into 384 dims",
    ),
}


def get_model(version: str) -> EmbeddingModel:
    """Return the model for ``version`` or raise :class:`UnknownModelError`."""
    try:
        return MODELS[version]
    except KeyError:
        valid = ", ".join(sorted(MODELS))
        raise UnknownModelError(
            f"unknown model version {version!r}; valid versions: {valid}"
        ) from None
