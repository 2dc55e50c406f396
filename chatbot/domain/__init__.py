"""The chatbot's vocabulary: chat items, a turn's typed events, the modes, the errors a turn
can end with, branch ids and the pure branch tree.

Everything here is plain data and pure functions. It imports nothing from the graph, the
LLM clients, the store, the relay or the runtime, so every other package can build on it.
"""
