"""``chatbot serve``: run the whole product on one port; ``db`` and ``keys`` manage its data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn
from pydantic import ValidationError

from server.paths import API_PREFIX
from server.settings import ServerSettings

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
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the port and the database (default 1)",
    )
    db = commands.add_parser("db", help="the database schema (migrations)")
    db.add_argument(
        "action",
        choices=["upgrade", "current"],
        help="upgrade: migrate to this release's schema (serve also does it at start); "
        "current: show the schema's revision",
    )
    keys = commands.add_parser("keys", help="per-user API keys (CHATBOT_AUTH=keys)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once, on the last line")
    create.add_argument("--user", required=True, help="the user the key signs in")
    create.add_argument("--admin", action="store_true", help="may open Burr's UI and /metrics")
    actions.add_parser("list", help="every key's id, user, creation and last use (never the key)")
    revoke = actions.add_parser("revoke", help="delete keys: a user's, or one by its id")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="every key of this user")
    which.add_argument("--id", dest="key_id", help="the key with this id (see `keys list`)")
    return parser


def _keys(args: argparse.Namespace, database_url: str) -> int:
    """``chatbot keys create|list|revoke`` on the configured database (servers may run)."""
    from chatbot.database import StoreUnavailable, opened
    from chatbot.users.api_keys import ApiKeys, InvalidUserId

    async def run() -> int:
        async with opened(database_url) as dialect:
            keys = ApiKeys(dialect)
            if args.action == "create":
                record, key = await keys.create(args.user, admin=args.admin)
                role = "an admin" if record.admin else "not an admin"
                print(f"Key {record.id} for {record.user_id} ({role}); it is shown only now:")
                print(key)
            elif args.action == "list":
                print(_key_table(await keys.list()))
            else:
                revoked = await keys.revoke(user_id=args.user, key_id=args.key_id)
                whose = f"of user {args.user!r}" if args.user else f"with id {args.key_id!r}"
                if not revoked:
                    print(f"chatbot keys revoke: no key {whose}", file=sys.stderr)
                    return 1
                print(f"Revoked {revoked} key{'s' if revoked > 1 else ''} {whose}.")
            return 0

    try:
        return asyncio.run(run())
    except (StoreUnavailable, InvalidUserId) as exc:
        print(f"chatbot keys {args.action}: error: {exc}", file=sys.stderr, flush=True)
        return 1


def _key_table(keys: list) -> str:
    rows = [("ID", "USER", "ADMIN", "CREATED", "LAST USED")]
    for key in keys:
        used = key.last_used_at
        rows.append(
            (
                key.id,
                key.user_id,
                "yes" if key.admin else "no",
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{used:%Y-%m-%d %H:%M}" if used else "never",
            )
        )
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def _db(action: str, database_url: str) -> int:
    """``chatbot db upgrade|current``: one line about the schema, or one error line."""
    from chatbot.database import StoreUnavailable, schema_revision

    try:
        where, found, head = asyncio.run(schema_revision(database_url, upgrade=action == "upgrade"))
    except StoreUnavailable as exc:
        print(f"chatbot db {action}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    state = "up to date" if found == head else f"this release's is {head}"
    print(f"{where}: schema revision {found or 'none'} ({state})", flush=True)
    return 0


def _database_line(where: str, other_pids: list[int], workers: int) -> str:
    """The banner's line about the database: who shares it, and with whom."""
    sharing = [f"by the {workers} workers"] if workers > 1 else []
    if len(other_pids) == 1:
        sharing.append(f"with another server process (pid {other_pids[0]})")
    elif other_pids:
        listed = ", ".join(str(pid) for pid in other_pids)
        sharing.append(f"with {len(other_pids)} other server processes (pids {listed})")
    line = f"Database: {where}"
    return f"{line}, shared {' and '.join(sharing)}" if sharing else line


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT, stream=sys.stderr)


def _worker_log_config(level: str) -> dict:
    """What ``_configure_logging`` does, as a dictConfig uvicorn applies in each worker."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": _LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(getattr(args, "log_level", "info"))
    try:
        settings = ServerSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CHATBOT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        print(f"chatbot: invalid configuration: {problems}", file=sys.stderr)
        return 2
    if args.command == "db":
        return _db(args.action, settings.resolved_database_url)
    if args.command == "keys":
        if not settings.per_user_keys:
            print(
                "chatbot keys: note: CHATBOT_AUTH does not include 'keys': servers accept "
                "these keys once it does",
                file=sys.stderr,
            )
        return _keys(args, settings.resolved_database_url)
    # Imported here, not at the top: uvicorn's spawned workers re-import this module before
    # they answer the supervisor's health checks, and Burr's import is slow.
    from chatbot.store import StoreUnavailable, check_store

    # Open the database (and migrate its schema) once before serving: an unreachable or
    # unusable one is a one-line error and exit status 1, not a lifespan traceback (or,
    # with workers, children that fail one after another). The answer is the banner's
    # line about the database, which says who else shares a SQLite file.
    try:
        where, others = asyncio.run(check_store(settings.resolved_database_url))
    except StoreUnavailable as exc:
        print(f"chatbot serve: error: {exc}", file=sys.stderr, flush=True)
        return 1
    database = _database_line(where, others, args.workers)
    if settings.resolved_tracking == "file":
        try:
            settings.resolved_tracking_dir.mkdir(parents=True, exist_ok=True)
            probe = settings.resolved_tracking_dir / ".chatbot-write-probe"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            print(
                f"chatbot serve: error: the Burr tracking directory "
                f"{settings.resolved_tracking_dir} is not writable ({exc.strerror}); set "
                "CHATBOT_TRACKING_DIR elsewhere, or CHATBOT_TRACKING=database or off",
                file=sys.stderr,
                flush=True,
            )
            return 1
    base = f"http://{args.host}:{args.port}"
    model = (
        "embedded offline model (no OPENAI_API_KEY set)"
        if settings.offline
        else f"{settings.chat_model} at {settings.openai_base_url or 'OpenAI'}"
    )
    print(
        f"Chatbot on {base}/  (API {base}{API_PREFIX}, docs {base}/docs)\nModel: {model}",
        file=sys.stderr,
        flush=True,
    )
    print(database, file=sys.stderr, flush=True)
    if settings.per_user_keys:
        print("Sign-in: per-user API keys (chatbot keys create --user NAME)", file=sys.stderr)
    if not settings.auth_required:
        if args.host in LOOPBACK:
            print(
                "No sign-in (CHATBOT_AUTH, CHATBOT_API_KEY): the API is open to this machine only.",
                file=sys.stderr,
            )
        else:
            print(
                f"WARNING: no sign-in (CHATBOT_AUTH, CHATBOT_API_KEY) and listening on "
                f"{args.host}: anyone who can reach this port can use the API and read every "
                "conversation.",
                file=sys.stderr,
            )
    # An import string and a factory, so that each worker process builds its own app (and
    # reads its settings from the environment) after uvicorn has forked it.
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # A worker that has not answered the supervisor's ping within this is killed and
        # replaced; uvicorn's 5 s default is shorter than a cold start on a busy small host.
        timeout_worker_healthcheck=30,
        log_level=args.log_level,
        access_log=False,
        # X-Forwarded-For is applied by the app itself (server.forwarded), which keeps the
        # peer that connected for the auth proxy's check.
        proxy_headers=False,
        # A WebSocket message is a request body too: the same limit, or uvicorn's 16 MiB.
        ws_max_size=settings.max_body_bytes,
        log_config=_worker_log_config(args.log_level) if args.workers > 1 else None,
        # uvicorn's own backstop; our drain ends replies with an error frame before it.
        timeout_graceful_shutdown=settings.shutdown_grace_s + 15,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
