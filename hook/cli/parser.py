"""The command line's words: every command, option and help text, in one argparse parser."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hook.cli.camio_hooks import DEFAULT_API
from hook.cli.photos import SUFFIXES
from hook.cli.simulator import DEFAULT_PORT

DESCRIPTION = """\
hook labels camera events for Camio. Camio POSTs each event (its pictures) to this server's hook
URL; the web app stores it in MongoDB, a worker finds the objects in the pictures and POSTs the
labels back to Camio. Settings come from HOOK_* environment variables (`settings` lists them)."""

EXAMPLES = """\
examples:
  # the whole service here, in the foreground: MongoDB, the web app, a worker
  export HOOK_API_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  {prog} run
  # from a second terminal (same HOOK_API_KEY): send the test photos as Camio would
  {prog} simulate "http://127.0.0.1:8000/tasks/$HOOK_API_KEY" --images tests/data
  # the queue, recent failures and the workers; the settings in force (secrets hidden)
  {prog} status
  {prog} settings --effective
  # have Camio send a camera's events here ({{key}} becomes $HOOK_API_KEY)
  {prog} register --callback-url 'https://HOST:8000/tasks/{{key}}' --camera 'front door'"""

SIMULATE_EXAMPLES = """\
It posts each picture ({suffixes}; all but JPEGs are converted to
JPEG, as Camio sends JPEGs) as one event whose callback_url points at a small server of its
own, waits for the labels and prints a line per picture (its labels and the time from POST to
callback) and a summary. It stops at the first refusal every picture would get (a wrong key,
a URL that takes no events, its callback address not allowed), saying what to change, and
never prints the key.
The hook must allow the callback address in HOOK_CALLBACK_HOSTS; `run` allows 127.0.0.1:{port}
when HOOK_CALLBACK_HOSTS is unset.

example:
  {prog} simulate "http://127.0.0.1:8000/tasks/$HOOK_API_KEY" --images tests/data"""

REGISTER_EXAMPLES = """\
example (the key stays off the command line):
  CAMIO_OAUTH_TOKEN=... {prog} register --callback-url 'https://HOST:8000/tasks/{{key}}' \\
      --camera 'front door'"""


def hook_url(text: str) -> str:
    """argparse type of simulate's URL; its message never repeats the URL (it holds the key)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or "/tasks/" not in parts.path:
        raise argparse.ArgumentTypeError("must look like http://HOST:8000/tasks/<api_key>")
    if not parts.path.split("/tasks/", 1)[1].strip("/"):
        raise argparse.ArgumentTypeError(
            "has no key after /tasks/ (is HOOK_API_KEY set in this shell?); it must look like "
            "http://HOST:8000/tasks/<api_key>"
        )
    return text


def build(prog: str) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EXAMPLES.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    _service_commands(commands)
    _settings_command(commands)
    _camio_commands(commands, prog)
    status = commands.add_parser(
        "status",
        help="the queue, the oldest waiting task, recent failures and the workers",
        description="Read the queue and the workers' heartbeats from MongoDB (never starts "
        "the embedded one): tasks by status (how many queued ones are retrying), the oldest "
        "waiting task, the last failures with their reasons, and each worker: running, "
        "stopping, stopped (it said so on its way out) or gone (it stopped beating).",
    )
    status.add_argument("--json", action="store_true", help="print JSON, for machines")
    _task_commands(commands)
    _simulate_command(commands, prog)
    _rules_command(commands)
    _verify_command(commands)
    return top


def _service_commands(commands: argparse._SubParsersAction) -> None:
    commands.add_parser(
        "run",
        help="run the whole service here in the foreground (to try it, or on one box)",
        description="Start MongoDB (the embedded one, unless HOOK_MONGO_URI is set), the web "
        "app (gunicorn on HOOK_BIND) and HOOK_WORKERS workers; restart any that dies; log "
        "'hook is up' once the web answers and every worker has loaded its model. Ctrl-C "
        "stops everything. With HOOK_CALLBACK_HOSTS unset, labels may also go to "
        f"127.0.0.1:{DEFAULT_PORT}, where `simulate` takes them.",
    )
    commands.add_parser(
        "web",
        help="become gunicorn serving the web app (what the hook-web unit runs)",
        description="Replace this process by gunicorn serving hook.wsgi:app on HOOK_BIND "
        "(with HOOK_TLS_CERT/HOOK_TLS_KEY: https), HOOK_WEB_WORKERS processes, so systemd "
        "supervises gunicorn itself.",
    )
    commands.add_parser(
        "mongo",
        help="become the embedded MongoDB (what the hook-mongo unit runs)",
        description="Replace this process by the embedded MongoDB server (nx-27017) on "
        "127.0.0.1:HOOK_EMBEDDED_PORT with its data in HOOK_DATA_DIR/mongo.",
    )


def _settings_command(commands: argparse._SubParsersAction) -> None:
    table = commands.add_parser(
        "settings",
        help="the settings: their defaults (Markdown), or the values in force",
        description="Without options: every HOOK_* setting with its default and meaning, as "
        "the Markdown table of docs/configuration.md.",
    )
    what = table.add_mutually_exclusive_group()
    what.add_argument(
        "--effective",
        action="store_true",
        help="print the values in force from this environment, secrets hidden",
    )
    what.add_argument(  # a developer's option, so not in --help; --update-readme: its old name
        "--update-docs",
        "--update-readme",
        dest="update_docs",
        action="store_true",
        help=argparse.SUPPRESS,  # writes the defaults table into docs/configuration.md
    )


def _camio_commands(commands: argparse._SubParsersAction, prog: str) -> None:
    def camio(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, **kwargs)
        sub.add_argument(
            "--token",
            default=os.environ.get("CAMIO_OAUTH_TOKEN", ""),
            help="Camio developer OAuth token (default: $CAMIO_OAUTH_TOKEN)",
        )
        sub.add_argument(
            "--api-url",
            default=os.environ.get("CAMIO_API_URL") or DEFAULT_API,
            help=f"Camio API (default: $CAMIO_API_URL or {DEFAULT_API})",
        )
        return sub

    register = camio(
        "register",
        "register this hook with Camio; prints the new hook's id",
        epilog=REGISTER_EXAMPLES.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    register.add_argument(
        "--callback-url",
        required=True,
        help="this server's hook URL, https://HOST:8000/tasks/{key}: {key} is replaced by "
        "$HOOK_API_KEY, so the key never appears on a command line",
    )
    which = register.add_mutually_exclusive_group(required=True)
    which.add_argument("--camera", help="send the events of this camera (by its name)")
    which.add_argument("--query", help="send the events matching this parsed_query (1==1: all)")
    camio("hooks", "list the hooks registered with Camio (keys shown as <key>)")
    unregister = camio("unregister", "delete a hook registered with Camio")
    unregister.add_argument("hook_id", help="the id `register` printed, or one `hooks` lists")


def _rules_command(commands: argparse._SubParsersAction) -> None:
    rules = commands.add_parser(
        "rules",
        help="rules per camera (HOOK_RULES): check a rules file",
        description="The rules file (HOOK_RULES, TOML) says per camera which detections are "
        "reported: labels, min_score, min_area, rename, ignore_zones, only_zones.",
    )
    what = rules.add_subparsers(dest="rules_command", required=True, metavar="command")
    check = what.add_parser(
        "check",
        help="validate a rules file and print what each entry does",
        description="Validate a rules file and print what each [[camera]] entry does; exit 2 "
        "with file:line: key: problem when it is invalid.",
    )
    check.add_argument(
        "file", nargs="?", type=Path, metavar="FILE", help="the rules file (default: $HOOK_RULES)"
    )


def _verify_command(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify",
        help="check a callback's signature (HOOK_SIGNING_SECRET) as its receiver would",
        description="Check a saved callback's Standard Webhooks signature: its webhook-id, "
        "webhook-timestamp and webhook-signature headers and its body, byte for byte. Exit 0 "
        "if valid; 1, saying why, if not (wrong secret or body, too old or new, malformed).",
    )
    verify.add_argument("--id", required=True, help="the webhook-id header (the task id)")
    verify.add_argument("--timestamp", required=True, help="the webhook-timestamp header")
    verify.add_argument("--signature", required=True, help="the webhook-signature header")
    verify.add_argument(
        "--secret",
        help="whsec_... (default: $HOOK_SIGNING_SECRET; several, space-separated: any one)",
    )
    verify.add_argument(
        "--body", type=Path, metavar="FILE", help="the request's body (default: standard input)"
    )
    verify.add_argument(
        "--now",
        type=float,
        metavar="SECONDS",
        help="unix time to judge the timestamp by (default: now), for a request saved earlier",
    )
    verify.add_argument(
        "--tolerance",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how far the timestamp may be from --now (default: 300, as the spec suggests)",
    )


def _task_commands(commands: argparse._SubParsersAction) -> None:
    """retry, forget, show: one task or a few, by id (as `status` and the listing show them)."""
    where = (
        " It reads MongoDB as `status` does (HOOK_MONGO_URI, HOOK_MONGO_DB) and never "
        "starts the embedded one."
    )
    retry = commands.add_parser(
        "retry",
        help="queue failed tasks again, to be labeled and delivered again",
        description="Queue failed tasks again: a new series of attempts, starting now. Each "
        "is labeled again from its images, so a fixed receiver, rules file or model applies; "
        "its failure is kept in its history. One whose images are gone sends its stored "
        "labels again, or is refused if it has none. Only failed tasks are retried. Prints "
        "a line per task; the exit code is 1 if any named task was not requeued." + where,
    )
    retry.add_argument(
        "task_ids", nargs="*", metavar="TASK_ID", help="a failed task's id (or --failed)"
    )
    retry.add_argument(
        "--failed", action="store_true", help="every failed task instead; prints the count"
    )
    forget = commands.add_parser(
        "forget",
        help="remove tasks for good, with their images and pictures",
        description="Remove tasks with everything kept of them (images, labels, annotated "
        "pictures). A task a worker is on is left alone unless --force. Prints a line per "
        "task; the exit code is 1 if any was not removed (the others are)." + where,
    )
    forget.add_argument("task_ids", nargs="+", metavar="TASK_ID", help="a task's id")
    forget.add_argument(
        "--force",
        action="store_true",
        help="remove running tasks too (their worker then settles nothing, but a callback it "
        "has begun may still arrive)",
    )
    show = commands.add_parser(
        "show",
        help="what hook found for a task: labels, drops, times, errors; save its pictures",
        description="Print a task's result: status, camera, times, attempts, the last error, "
        "and per image its timestamp, size, labels with their scores, what the camera's "
        "rules dropped and why, and its annotated picture's URL (the key shown as "
        "<api_key>)." + where,
    )
    show.add_argument("task_id", metavar="TASK_ID", help="the task's id")
    show.add_argument(
        "--save",
        type=Path,
        metavar="DIR",
        help="write the annotated pictures as DIR/<task_id>-<index>.jpg (exit code 1 if none "
        "are kept: not made yet, turned off, or expired)",
    )
    show.add_argument("--json", action="store_true", help="print the result as JSON")


def _simulate_command(commands: argparse._SubParsersAction, prog: str) -> None:
    sim = commands.add_parser(
        "simulate",
        help="play Camio: post pictures as events, print their labels",
        description="Play Camio against a running hook.",
        epilog=SIMULATE_EXAMPLES.format(prog=prog, suffixes=" ".join(SUFFIXES), port=DEFAULT_PORT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("url", type=hook_url, help="the hook URL, http://HOST:8000/tasks/<api_key>")
    sim.add_argument(
        "--images",
        type=Path,
        required=True,
        metavar="DIR",
        help="a folder of pictures; other files are listed as skipped",
    )
    sim.add_argument(
        "--listen",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address of the callback server, as the hook reaches it (it must be allowed by "
        "the hook's HOOK_CALLBACK_HOSTS; default: 127.0.0.1)",
    )
    sim.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the callback server (default: {DEFAULT_PORT}; 0: any free one, which "
        "the hook must then allow)",
    )
    sim.add_argument(
        "--camera",
        default="simulated camera",
        help="the camera name in the events (default: simulated camera)",
    )
    sim.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for labels after the last POST (default: 60)",
    )
    sim.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per line instead: each picture, then a summary",
    )
