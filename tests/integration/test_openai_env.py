"""The ``openai`` SDK configured the way a user configures it: only its environment variables.

The script below builds ``openai.OpenAI()`` with no arguments in a fresh interpreter, so
the base URL and the key can only come from ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``;
the server requires that key and proxies its embedded offline model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.server_process import StartServer

KEY = "sk-chatbot-env-test"

SCRIPT = """
import json, openai
client = openai.OpenAI()  # configured by OPENAI_BASE_URL and OPENAI_API_KEY only
reply = client.chat.completions.create(
    model="burr-chatbot", messages=[{"role": "user", "content": "Write a poem about tides"}]
)
chunks = list(client.chat.completions.create(
    model="burr-chatbot",
    messages=[{"role": "user", "content": "Why do tides turn?"}],
    stream=True,
))
print(json.dumps({
    "models": [m.id for m in client.models.list()],
    "reply": reply.choices[0].message.content,
    "mode": reply.model_extra["chatbot"]["mode"],
    "conversation": reply.model_extra["chatbot"]["conversation_id"],
    "streamed": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
}))
"""


def test_the_sdk_works_from_its_environment_variables_alone(
    home: Path, serve: StartServer
) -> None:
    server = serve(CHATBOT_API_KEY=KEY)
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "OPENAI_BASE_URL": f"{server.base_url}/v1",
            "OPENAI_API_KEY": KEY,
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["models"] == ["burr-chatbot"]
        assert result["mode"] == "generate_poem"
        assert "offline model" in result["reply"]
        assert "offline model" in result["streamed"]
        history = httpx.get(
            f"{server.api}/history/demo_streaming_chatbot/{result['conversation']}",
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
        assert history[-1]["content"] == result["reply"]
        # Without the variable the same script is refused: the key really is checked.
        env["OPENAI_API_KEY"] = "sk-wrong"
        refused = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode != 0
        assert "AuthenticationError" in refused.stderr
    finally:
        server.stop()
