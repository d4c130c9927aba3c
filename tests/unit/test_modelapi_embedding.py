"""Unit tests of the modelapi embedding models (determinism, shape, features, speed)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sandbox.modelapi import embedding
from sandbox.modelapi.embedding import MODELS, UnknownModelError, get_model, tokenize

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"
TEXTS = [
    "Disk /var is 95% full on db-01",
    "Pod OOMKilled: memory limit exceeded",
    "TLS certificate expires in 3 days",
    "",
]
# Pinned outputs: a model version is immutable once indexes exist for it. If one
# of these changes, every index built by that version silently becomes wrong;
# make a new version instead of editing an existing one.
GOLDEN_SHA256 = {
    "v1": "06636dc36330bad9489f3f1135029cbcc7f93d2d16d3d92f14f2a48f584aca8e",
    "v2": "6c7fa3907ba384a0685bd914824e366e409c1dc65c1635189910dd4f30ebafef",
}


def _digest(version: str, texts: list[str]) -> str:
    return hashlib.sha256(get_model(version).embed(texts).tobytes()).hexdigest()


def _cosine(version: str, a: str, b: str) -> float:
    vecs = get_model(version).embed([a, b])
    return float(vecs[0] @ vecs[1])


def test_registry_has_v1_and_v2_with_distinct_dimensions() -> None:
    assert {"v1", "v2"} <= set(MODELS)
    assert get_model("v1").dimension == 256
    assert get_model("v2").dimension == 384
    assert get_model("v1").version == "v1" and get_model("v2").version == "v2"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_embed_shape_dtype_and_unit_norm(version: str) -> None:
    model = get_model(version)
    vecs = model.embed(TEXTS)
    assert vecs.shape == (len(TEXTS), model.dimension)
    assert vecs.dtype == np.float32
    norms = np.linalg.norm(vecs, axis=1)
    np.testing.assert_allclose(norms[:3], 1.0, atol=1e-6)
    assert norms[3] == 0.0, "a text without features must embed to the zero vector"
    assert model.embed([]).shape == (0, model.dimension)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_embedding_matches_pinned_digest(version: str) -> None:
    assert _digest(version, TEXTS) == GOLDEN_SHA256[version]


def test_vectors_identical_across_processes_with_different_hash_seeds() -> None:
    code = (
        "import hashlib, sys\n"
        "from modelapi.embedding import get_model\n"
        f"texts = {TEXTS!r}\n"
        "for v in ('v1', 'v2'):\n"
        "    print(v, hashlib.sha256(get_model(v).embed(texts).tobytes()).hexdigest())\n"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SANDBOX_DIR)}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        got = dict(line.split() for line in out.stdout.splitlines())
        assert got == {"v1": _digest("v1", TEXTS), "v2": _digest("v2", TEXTS)}


def test_models_differ_in_features_not_only_dimension() -> None:
    # v2 has character 4-grams, so inflected forms are close; v1 sees two unrelated words.
    assert _cosine("v1", "timeout", "timeouts") == pytest.approx(0.0, abs=1e-6)
    assert _cosine("v2", "timeout", "timeouts") > 0.3
    # v2 also has bigrams: word order matters to it, not to v1.
    assert _cosine("v1", "disk full", "full disk") == pytest.approx(1.0, abs=1e-6)
    assert _cosine("v2", "disk full", "full disk") < 0.99


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_related_texts_score_higher_than_unrelated(version: str) -> None:
    related = _cosine(version, "pod OOMKilled memory limit", "container memory limit OOMKilled")
    unrelated = _cosine(version, "pod OOMKilled memory limit", "TLS certificate expired")
    assert related > unrelated + 0.3


def test_tokenize_lowercases_and_drops_stop_words() -> None:
    assert tokenize("The Disk is FULL on db-01") == ["disk", "full", "db", "01"]
    assert _cosine("v1", "the disk is full", "disk full") == pytest.approx(1.0, abs=1e-6)


def test_unknown_version_error_names_valid_versions() -> None:
    with pytest.raises(UnknownModelError) as err:
        get_model("v9")
    assert "v9" in str(err.value) and "v1" in str(err.value) and "v2" in str(err.value)


def test_embed_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError):
        get_model("v1").embed("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_cold_path_embeds_the_same_as_the_cached_one(version: str) -> None:
    """How fast is ``make bench``'s to say (no timed assertion here); the feature-hash cache must
    never change a vector."""
    docs = [
        f"Alert {i}: high 5xx rate on checkout-{i} after deploy; pods restarting, "
        f"p99 latency {i * 7} ms, upstream database connection pool exhausted"
        for i in range(100)
    ]
    embedding._bucket.cache_clear()
    cold = get_model(version).embed(docs)
    warm = get_model(version).embed(docs)
    assert cold.shape == (100, get_model(version).dimension) and (cold == warm).all()
