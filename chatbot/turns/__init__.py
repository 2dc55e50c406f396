"""Turns: one prompt through the graph, as an engine that yields typed events
(``chatbot.turns.turn``), its run-time side that stores the outcome and releases the lease
(``live_turn``), the replies any number of clients read while it runs (``replies``), the
one registry of the turns running in this process (``registry``: admission, stop, drain)
and the one factory of their Burr applications (``applications``).
"""
