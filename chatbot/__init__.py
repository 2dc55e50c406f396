"""The Burr application behind the chatbot: actions, graph, LLM clients, persistence.

Nothing in this package knows about HTTP; ``server`` is the only caller.
"""
