"""The Burr application behind the chatbot: actions, graph, LLM clients, persistence.

Nothing in this package knows about HTTP; ``server`` is the only caller.
"""

from chatbot.burr_serde import skip_pandas_serde_plugin

# Before any module of this package imports ``burr.core``: see chatbot/burr_serde.py.
skip_pandas_serde_plugin()
