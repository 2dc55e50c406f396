"""``chatbot serve``: run the whole product on one port."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from chatbot.settings import Settings
from server.shutdown import ChatbotServer

DEFAULT_HOST = "127.0.0.1"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
DEFAULT_PORT = 7241


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the chat UI, the API and the Burr UI")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default {DEFAULT_HOST})")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CHATBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        print(f"chatbot: invalid configuration: {problems}", file=sys.stderr)
        return 2
    from server.app import create_app

    app = create_app(settings)
    base = f"http://{args.host}:{args.port}"
    model = (
        "embedded offline model (no OPENAI_API_KEY set)"
        if settings.offline
        else f"{settings.chat_model} at {settings.openai_base_url or 'OpenAI'}"
    )
    print(
        f"Chatbot on {base}/  (API {base}/api/v0/streaming_chatbot, docs {base}/docs)\n"
        f"Model: {model}",
        file=sys.stderr,
        flush=True,
    )
    if not settings.auth_required:
        if args.host in LOOPBACK:
            print("No CHATBOT_API_KEY set: the API is open to this machine only.", file=sys.stderr)
        else:
            print(
                f"WARNING: no CHATBOT_API_KEY set and listening on {args.host}: anyone who can "
                "reach this port can use the API and read every conversation.",
                file=sys.stderr,
            )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        log_config=None,
        # uvicorn's own backstop; our drain ends replies with an error frame before it.
        timeout_graceful_shutdown=settings.shutdown_grace_s + 15,
    )
    ChatbotServer(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
