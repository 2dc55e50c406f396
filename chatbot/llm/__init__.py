"""LLM access: one shared ``openai.AsyncOpenAI`` client, an upstream server or the offline model."""
