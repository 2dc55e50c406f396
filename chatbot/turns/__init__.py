"""Turns: one prompt through the graph, as an engine that yields typed events
(``chatbot.turns.turn``), its run-time side that stores the outcome and releases the lease
(``live_turn``), and the replies any number of clients read while it runs (``replies``).
"""
