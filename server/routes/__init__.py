"""The API's routers; thin on purpose: validation here, behaviour in ``chatbot``."""
