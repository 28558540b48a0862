"""The ``datalayer`` command line: migrate, demo, serve, health, whatsapp health/cleanup.

Human output by default, ``--json`` for scripts. stdout carries only the
command's output; log lines and the progress bar go to stderr. Exit codes:
0 ok, 1 unhealthy or failed, 2 usage (argparse).

Commands are added by registrar functions listed in :data:`REGISTRARS`; a
module adds a command (or a group such as ``pool``) by appending its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from datalayer._budget import STATUS_BY_VERDICT, Budget, check_budget
from datalayer._console import Console, ProgressBar
from errorkit import captured, classify, scrub

if TYPE_CHECKING:
    from datalayer._database import Database

__all__ = ["REGISTRARS", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Sessions over the threshold listed in the human output (biggest first).
_MAX_SESSIONS_SHOWN = 10

#: ``handler(args, console) -> exit code``, set on each leaf parser as ``func``.
Handler = Callable[[argparse.Namespace, Console], int]
Registrar = Callable[[Any], None]


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _print_json(console: Console, data: Any) -> None:
    console.print(json.dumps(data, indent=2, default=str, sort_keys=False))


def _unreachable(error: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": classify(error)}


@contextmanager
def open_database() -> Iterator[Database]:
    """``Database.from_env()`` (embedded PostgreSQL when nothing is configured), closed after."""
    from datalayer._database import Database

    db = Database.from_env()
    try:
        yield db
    finally:
        db.close()


# --- migrate -------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace, console: Console) -> int:
    from datalayer._migrate import migrate

    with open_database() as db:
        applied = migrate(db)
    if args.json:
        _print_json(console, {"applied": applied})
    elif applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("database is up to date")
    return EXIT_OK


def _add_migrate(sub: Any) -> None:
    parser = sub.add_parser("migrate", help="apply the pending schema migrations")
    _json_flag(parser)
    parser.set_defaults(func=_cmd_migrate)


# --- demo ----------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from datalayer._demo import run_demo

    return EXIT_OK if run_demo(console) else EXIT_FAILED


def _add_demo(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="seed a sample salon, call every facade method, show failures being reported",
    )
    parser.set_defaults(func=_cmd_demo)


# --- serve ---------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace, console: Console) -> int:
    import uvicorn

    from datalayer._database_async import AsyncDatabase
    from datalayer.api import create_app

    # Built here (an embedded server is started now, if needed), opened by the app's
    # lifespan inside uvicorn's event loop, as psycopg_pool's async pool requires.
    db = AsyncDatabase.from_env()
    uvicorn.run(
        create_app(db, open_database=True), host=args.host, port=args.port, log_level="warning"
    )
    return EXIT_OK


def _add_serve(sub: Any) -> None:
    parser = sub.add_parser("serve", help="serve the health API with uvicorn")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.set_defaults(func=_cmd_serve)


# --- health --------------------------------------------------------------------------


def _cmd_health(args: argparse.Namespace, console: Console) -> int:
    from datalayer.api import database_report
    from datalayer.whatsapp import check_session_health

    report: dict[str, Any] = {"status": "error", "pool": None, "budget": None}
    whatsapp: dict[str, Any] = {"status": "error", "message": "database unreachable"}
    with captured("cli", "open_database", reraise=False) as boundary, open_database() as db:
        report = database_report(db)
        whatsapp = dict(check_session_health(db))
    if boundary.error is not None:
        report["database"] = _unreachable(boundary.error)
    report["whatsapp"] = {"status": whatsapp["status"], "message": whatsapp["message"]}
    healthy = report["status"] == "ok" and whatsapp["status"] in ("healthy", "warning")
    report["status"] = "ok" if healthy else "error"
    if args.json:
        _print_json(console, report)
        return EXIT_OK if healthy else EXIT_FAILED
    database = report["database"]
    label = console.style("datalayer health:", "bold")
    console.print(f"{label} {console.status(report['status'])}")
    rows: list[tuple[str, str, str]] = [
        (
            "database",
            console.status("ok" if database["ok"] else "error"),
            f"ping {database['latency_ms']} ms" if database["ok"] else database["error"],
        ),
        ("whatsapp", console.status(whatsapp["status"]), whatsapp["message"]),
    ]
    budget = report.get("budget")
    if isinstance(budget, dict):
        status = STATUS_BY_VERDICT.get(budget.get("verdict", ""), "-")
        rows.append(("budget", console.status(status), budget.get("message", "")))
    console.table(["check", "status", "detail"], rows)
    pool = report.get("pool")
    if isinstance(pool, dict) and pool:
        console.print()
        console.heading("pool")
        console.fields(pool)
    return EXIT_OK if healthy else EXIT_FAILED


def _add_health(sub: Any) -> None:
    parser = sub.add_parser("health", help="check the database, the pool and the WhatsApp state")
    _json_flag(parser)
    parser.set_defaults(func=_cmd_health)


# --- whatsapp ------------------------------------------------------------------------


def _cmd_whatsapp_health(args: argparse.Namespace, console: Console) -> int:
    from datalayer.whatsapp import check_session_health

    report: dict[str, Any] | None = None
    with captured("cli", "open_database", reraise=False) as boundary, open_database() as db:
        report = dict(
            check_session_health(
                db,
                session_id=args.session,
                threshold=args.threshold,
                warning_expired=args.warning_expired,
                critical_expired=args.critical_expired,
            )
        )
    if report is None or boundary.error is not None:
        kind = classify(boundary.error) if boundary.error is not None else "internal"
        report = {"status": "error", "message": f"database unreachable ({kind})"}
        if args.json:
            _print_json(console, report)
        else:
            console.print(f"whatsapp auth state: {console.status('error')}: {report['message']}")
        return EXIT_FAILED
    ok = report["status"] in ("healthy", "warning")
    if args.json:
        _print_json(console, report)
        return EXIT_OK if ok else EXIT_FAILED
    console.print(
        f"{console.style('whatsapp auth state:', 'bold')} {console.status(report['status'])}"
    )
    console.print(report["message"])
    console.print()
    last = report["last_cleanup"]
    console.fields(
        {
            "session": report["session_id"] or "(all)",
            "auth records": report["auth_records"],
            "keys": report["total_keys"],
            "expired keys": report["expired_keys"],
            "threshold": f"{report['threshold']} keys per session",
            "last cleanup": (
                f"{last['finished_at']} ({last['deleted']} deleted)" if last else "never"
            ),
            "checked at": report["checked_at"],
        }
    )
    if report["keys_by_type"]:
        console.print()
        console.table(["key type", "keys"], sorted(report["keys_by_type"].items()))
    over = report["sessions_over_threshold"]
    if over:
        console.print()
        console.table(
            ["session over threshold", "keys"],
            [(s["session_id"], s["keys"]) for s in over[:_MAX_SESSIONS_SHOWN]],
        )
        if len(over) > _MAX_SESSIONS_SHOWN:
            console.print(f"... and {len(over) - _MAX_SESSIONS_SHOWN} more (--json lists them)")
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_whatsapp_cleanup(args: argparse.Namespace, console: Console) -> int:
    from datalayer.whatsapp import cleanup_expired_keys

    with open_database() as db, ProgressBar("deleting expired keys") as bar:
        result = cleanup_expired_keys(
            db, dry_run=args.dry_run, batch_size=args.batch_size, progress=bar
        )
    if args.json:
        _print_json(console, result)
    elif result["dry_run"]:
        console.print(f"dry run: {result['deleted']} expired key(s) would be deleted")
    else:
        console.print(
            f"deleted {result['deleted']} expired key(s) in {result['batches']} batch(es), "
            f"{result['duration_ms']:.0f} ms"
        )
    return EXIT_OK


def _add_whatsapp(sub: Any) -> None:
    group = sub.add_parser("whatsapp", help="WhatsApp auth-state health and cleanup")
    commands = group.add_subparsers(dest="whatsapp_command", metavar="COMMAND", required=True)

    health = commands.add_parser("health", help="expired keys, keys per session, last cleanup")
    health.add_argument("--session", default=None, help="one session id (default: all)")
    health.add_argument("--threshold", type=positive_int, default=300, help="keys per session")
    health.add_argument("--warning-expired", type=positive_int, default=100)
    health.add_argument("--critical-expired", type=positive_int, default=500)
    _json_flag(health)
    health.set_defaults(func=_cmd_whatsapp_health)

    cleanup = commands.add_parser("cleanup", help="delete expired keys in batches")
    cleanup.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    cleanup.add_argument("--batch-size", type=positive_int, default=5000)
    _json_flag(cleanup)
    cleanup.set_defaults(func=_cmd_whatsapp_cleanup)


# --- `datalayer pool budget` -------------------------------------------------------


def add_budget_command(commands: Any) -> None:
    """Register ``budget`` on the ``datalayer pool`` subparsers (``POOL_REGISTRARS``)."""
    parser = commands.add_parser(
        "budget",
        help="the server's connection slots against services x pool size",
        description=(
            "Reads max_connections, reserved slots and the connections in use (by "
            "application_name) from the server and judges the planned pools. "
            "Exit code 1 when the plan is over budget."
        ),
    )
    parser.add_argument(
        "--services",
        type=positive_int,
        default=None,
        help="services sharing the server (default POSTGRES_EXPECTED_SERVICES)",
    )
    parser.add_argument(
        "--max-size",
        type=positive_int,
        default=None,
        help="pool max size per service (default POSTGRES_MAX_CONNECTIONS)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_run_budget_command)


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer of at least 1 (every ``datalayer`` command uses it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _run_budget_command(args: argparse.Namespace, console: Console) -> int:
    from datalayer._database import Database

    db = Database.from_env()
    try:
        budget = check_budget(
            db,
            expected_services=args.services or db.settings.expected_services,
            max_size=args.max_size or db.settings.max_connections,
        )
    finally:
        db.close()
    if args.json:
        console.print(json.dumps(budget.as_dict(), indent=2))
    else:
        _print_budget(budget, console)
    return 1 if budget.verdict == "over" else 0


def _print_budget(budget: Budget, console: Console) -> None:
    status = STATUS_BY_VERDICT[budget.verdict]
    console.heading(f"connection budget: {console.status(status)} ({budget.verdict})")
    console.print(budget.message)
    console.print()
    console.fields(
        {
            "max_connections": budget.max_connections,
            "reserved": budget.reserved,
            "available": budget.available,
            "planned": (
                f"{budget.planned} ({budget.expected_services} services x {budget.max_size})"
            ),
            "spare": budget.spare,
            "in use now": budget.in_use_total,
        }
    )
    if budget.in_use_by_application:
        console.print()
        console.table(["application_name", "connections"], budget.in_use_by_application.items())


# --- pool ----------------------------------------------------------------------------


def _add_pool(sub: Any) -> None:
    if not POOL_REGISTRARS:
        return
    group = sub.add_parser("pool", help="connection pool tools")
    commands = group.add_subparsers(dest="pool_command", metavar="COMMAND", required=True)
    for register in POOL_REGISTRARS:
        register(commands)


#: Registrars of ``datalayer pool <command>``.
POOL_REGISTRARS: list[Registrar] = [add_budget_command]

#: Registrars of the top-level commands, in help order.
REGISTRARS: list[Registrar] = [
    _add_migrate,
    _add_demo,
    _add_serve,
    _add_health,
    _add_whatsapp,
    _add_pool,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datalayer",
        description="PostgreSQL data layer: schema, health, WhatsApp auth state, demo.",
        epilog="Exit codes: 0 ok, 1 unhealthy or failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def _setup_logging() -> None:
    """errorkit's setup, with log lines sent to stderr: stdout is the command's output."""
    import errorkit

    errorkit.setup(log_stream="stderr")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``datalayer`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    _setup_logging()
    console = Console()
    code = EXIT_FAILED
    command = " ".join(
        name
        for name in (
            args.command,
            getattr(args, "whatsapp_command", None),
            getattr(args, "pool_command", None),
        )
        if name
    )
    # Reported once: by the innermost boundary (store, cleanup, database), else by this one.
    # A command is not a hot path: no operation_slow line for a long cleanup or demo.
    with captured("cli", command, reraise=False, slow_ms=math.inf) as boundary:
        code = handler(args, console)
    if boundary.error is not None:
        error = boundary.error
        print(
            f"datalayer {command}: failed: {type(error).__name__}: {scrub(str(error))}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
