"""Wire protocols: each module turns a turn's typed events into one protocol's bytes.

Adding a protocol means adding one module here and one router; the turn itself
(``chatbot.turns.turn``) does not change.
"""
