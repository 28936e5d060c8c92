"""The benchmark's naive baseline: a FastAPI app that runs one forward pass per request.

It is what a first version usually looks like: a sync `def` route (Starlette runs it in its thread
pool) that tokenizes one text, runs the model under `no_grad` and takes the softmax, the way a
transformers pipeline call would. No batching, no log, no metrics. Run it with
`uvicorn benchmarks.naive:app_from_env --factory` and `TUNELOOP_NAIVE_MODEL=<artifact folder>`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from fastapi import FastAPI
from pydantic import BaseModel

from core.runtime.model import load_classifier


class NaiveRequest(BaseModel):
    inputs: str


def create_naive_app(artifact: Path) -> FastAPI:
    """The naive app over the classifier artifact at `artifact`."""
    model, tokenizer, config = load_classifier(artifact)
    model.eval()
    app = FastAPI(title="naive baseline")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Up once the model is loaded (it loads before the app exists)."""
        return {"status": "ok"}

    @app.post("/v1/predict")
    def predict(body: NaiveRequest) -> dict[str, object]:
        """One text, one forward pass, in Starlette's thread pool."""
        batch = tokenizer(body.inputs, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        probs = torch.softmax(logits.logits[0], dim=-1).tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        return {"label": config.labels[best], "score": probs[best]}

    return app


def app_from_env() -> FastAPI:
    """Factory uvicorn calls: the artifact folder comes from `TUNELOOP_NAIVE_MODEL`."""
    return create_naive_app(Path(os.environ["TUNELOOP_NAIVE_MODEL"]))
