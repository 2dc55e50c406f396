"""HTTP for the chatbot: FastAPI app factory, routes, SSE framing, the ``chatbot`` CLI."""
