"""Conversations as clients see them: the service routes use (``service``: create, read,
list, delete, branches, turns), their branches, forks and versions (``forks``), and how a
stateless client's resent messages find the conversation they continue (``continuation``).
"""
