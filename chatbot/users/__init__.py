"""Users: who may ask, and what is theirs.

``api_keys`` keeps the per-user keys that ``chatbot keys`` makes and servers check;
``chatbot.domain.owners`` says how a user's conversations are kept apart from everyone
else's. Recognising a request's user (keys, sessions) is the HTTP layer's part.
"""
