"""Baseline 3, the Burr streaming-FastAPI example, exactly as the ``burr`` package ships it.

Its router is imported from the installed package (the module path has a dash,
hence ``importlib``) and mounted under the prefix the Burr UI calls. The example
builds an ``openai.AsyncOpenAI()`` per call from ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL``, classifies every prompt with a non-streaming call, and writes
its tracking log under ``~/.burr``: the harness points the first two at the fake
upstream and ``HOME`` at a temporary directory.

Run: ``uvicorn bench.servers.burr_example:app --host 127.0.0.1 --port P``
"""

import importlib

from fastapi import FastAPI

router = importlib.import_module("burr.examples.streaming-fastapi.server").router

app = FastAPI(title="burr streaming-fastapi example")
app.include_router(router, prefix="/api/v0/streaming_chatbot")
