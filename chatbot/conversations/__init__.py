"""Conversations as clients see them: their branches, forks and versions (``forks``) and
how a stateless client's resent messages find the conversation they continue
(``continuation``).
"""
