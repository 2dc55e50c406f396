"""Burr tracking: where each turn's steps, states and stream timings are written for Burr's
tracking UI, off the event loop (``chatbot.tracking.files``: Burr's local file layout).
"""
