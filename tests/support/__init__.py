"""Test support: real server processes, a fake OpenAI-compatible upstream, an SSE client."""
