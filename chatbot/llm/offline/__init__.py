"""The embedded offline model: an in-process, deterministic stand-in for an OpenAI-compatible API.

It lets the product run and be tested with no key and no network. It is reached through
the ``openai`` SDK like any upstream (``transport.py``) and writes its replies by rules
(``writer.py``); every reply says it came from the offline model.
"""
