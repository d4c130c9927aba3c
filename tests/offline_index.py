"""The model API's vector search over a corpus snapshot, in process: a stand-in for ``sb`` in
checks that only call ``sb.version()`` and ``sb.search()`` (no sandbox, same code and data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sandbox.modelapi.corpus import load_snapshot
from sandbox.modelapi.embedding import get_model

CORPUS = Path(__file__).resolve().parents[1] / "sandbox" / "modelapi" / "data" / "corpus"


class OfflineIndex:
    """The model API's vector search over a corpus snapshot, in process (no sandbox)."""

    def __init__(self, snapshot: str = "2026-11-01", model: str = "v1"):
        self.docs, self.model = load_snapshot(CORPUS / f"{snapshot}.jsonl"), get_model(model)
        self.vectors = self.model.embed([d.text() for d in self.docs])

    def version(self):
        return {"model": self.model.version}

    def search(self, text, k=5):
        scores = self.vectors @ self.model.embed([text])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return {"results": [{"id": self.docs[i].id, "title": self.docs[i].title, "score": float(scores[i])}
                            for i in order]}
