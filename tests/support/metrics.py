"""Read the server's Prometheus metrics as a dict (name, or name{labels}, to value)."""

from __future__ import annotations

import httpx


def scrape(
    client: httpx.Client, base_url: str, headers: dict[str, str] | None = None
) -> dict[str, float]:
    text = client.get(f"{base_url}/metrics", headers=headers).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
