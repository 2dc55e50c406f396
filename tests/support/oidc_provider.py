"""A real OpenID Provider on loopback: npm's ``oidc-provider`` (tests/oidc), run by the Node
the suite installs, with a signing key the test made (so it can sign tokens of its own)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.server_process import REPO

PROVIDER_DIR = REPO / "tests" / "oidc"
CLIENT_ID, CLIENT_SECRET = "chatbot", "chatbot-client-secret-of-the-suite"
AUDIENCE = "urn:chatbot:api"
# API clients, each standing for a user of its name (client-credentials tokens).
API_CLIENTS = ("alice", "bob", "admin-carol")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class OpenIdProvider:
    issuer: str
    key: RSAKey
    process: subprocess.Popen = field(repr=False)

    def token_for(self, client_id: str) -> str:
        """A JWT access token for the chatbot's API, by the client-credentials grant."""
        answer = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": AUDIENCE, "scope": "chat"},
            auth=(client_id, f"{client_id}-secret"),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def sign(self, claims: dict, key: RSAKey | None = None) -> str:
        """A token signed with the provider's own key (or ``key``), claims as given."""
        signer = key or self.key
        header = {"alg": "RS256", "kid": signer.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, signer)

    def claims(self, user: str, **changes: object) -> dict:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": AUDIENCE, "sub": user, "iat": now, "exp": now + 300}
        return {**base, **changes}


def server_settings(provider: OpenIdProvider, port: int) -> dict[str, str]:
    return {
        "CHATBOT_AUTH": "oidc",
        "CHATBOT_OIDC_ISSUER": provider.issuer,
        "CHATBOT_OIDC_CLIENT_ID": CLIENT_ID,
        "CHATBOT_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "CHATBOT_OIDC_AUDIENCE": AUDIENCE,
        "CHATBOT_OIDC_ADMIN_CLAIM": "groups",
        "CHATBOT_OIDC_ADMIN_VALUES": "chat-admins",
    }


@contextmanager
def running_provider(node: Path, server_port: int, log: Path) -> Iterator[OpenIdProvider]:
    """The provider, its browser client redirecting to a chatbot on ``server_port``."""
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError("oidc-provider is not installed: run 'make oidc'")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    key = RSAKey.generate_key(2048, parameters={"kid": "suite-key", "use": "sig", "alg": "RS256"})
    site = f"http://127.0.0.1:{server_port}"
    browser = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{site}/auth/callback"],
        "post_logout_redirect_uris": [f"{site}/"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    api = [
        {
            "client_id": name,
            "client_secret": f"{name}-secret",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "scope": "chat",
        }
        for name in API_CLIENTS
    ]
    options = {
        "issuer": issuer,
        "port": port,
        "audience": AUDIENCE,
        "clients": [browser, *api],
        "signingKey": key.as_dict(private=True),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(node), "provider.mjs", json.dumps(options)],
            cwd=PROVIDER_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"READY" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield OpenIdProvider(issuer, key, process)
    finally:
        process.terminate()
        process.wait(10)
