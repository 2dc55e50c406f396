"""The Burr application graph: the actions (safety check, classifier, five streaming
responders), their prompts and state operations, and the one ``GraphBuilder`` expression
that wires them (``chatbot.graph.builder``).
"""
