"""``python -m server.openapi_dump [--out FILE]``: the OpenAPI document, no server needed.

It documents a server with the default settings, whatever the environment or ``.env``
say, so that the document, and the UI's TypeScript types generated from it
(``npm run openapi:types`` in ``ui/``), come out the same on every machine. A running
server's ``/openapi.json`` describes that server's own settings instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from server.app import create_app
from server.settings import ServerSettings


class _DefaultSettings(ServerSettings):
    """The settings of a server given no configuration at all."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def default_document() -> dict[str, Any]:
    # Burr's UI is mounted outside the document; leaving it off spares its import.
    return create_app(_DefaultSettings(burr_ui_enabled=False)).openapi()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.openapi_dump", description=__doc__)
    parser.add_argument("--out", type=Path, help="write here instead of to standard output")
    args = parser.parse_args(argv)
    text = json.dumps(default_document(), indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
