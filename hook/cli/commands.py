"""The command line (`python -m hook`, the `hook` console script); reads the environment once.

A deliberate error (hook.errors.HookError) is one line on stderr and exit code 2 for a
configuration error (the systemd units do not restart on it), 1 otherwise; any other exception
is a bug, so it keeps its traceback (exit code 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pymongo.errors import ConnectionFailure, PyMongoError

from hook.cli import parser
from hook.cli.argv import web_argv
from hook.cli.camio_hooks import CamioClient, camera_query
from hook.cli.launcher import Launcher
from hook.cli.photos import photos_in
from hook.cli.queue_report import gather, report
from hook.cli.rules_check import check
from hook.cli.settings_report import effective_table, settings_table, update_docs
from hook.cli.simulator import simulate
from hook.cli.task_commands import forget_command, retry_command, show_command
from hook.cli.verify import verify_command
from hook.config.detectors import detector_from
from hook.config.mongo import check_answering, connect, embedded_for, not_answering
from hook.config.settings import Settings
from hook.config.table import PROJECT_DIR
from hook.detect import ensemble
from hook.errors import ConfigError, HookError
from hook.invocation import hook_command
from hook.logs import configure
from hook.redact import redact
from hook.store import TaskStore

INTERRUPTED = 130  # the shell's code for "ended by Ctrl-C"


def main(argv: list[str] | None = None) -> int:
    logging.captureWarnings(True)
    args = parser.build(hook_command()).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HookError as exc:
        print(f"hook {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return INTERRUPTED


def settings_command(args: argparse.Namespace) -> int:
    if args.update_docs:
        update_docs(PROJECT_DIR / "docs" / "configuration.md")
    elif args.effective:
        print(effective_table(os.environ))
    else:
        print(settings_table())
    return 0


def camio_command(args: argparse.Namespace) -> int:
    client = CamioClient(args.token, args.api_url)
    if args.command == "register":
        query = args.query if args.query is not None else camera_query(args.camera)
        url = args.callback_url
        if "{key}" in url:
            key = os.environ.get("HOOK_API_KEY", "").strip()
            if not key:
                raise ConfigError("--callback-url has {key} but HOOK_API_KEY is not set")
            url = url.replace("{key}", key)
        print(client.register(url, query)["id"])
    elif args.command == "hooks":
        hooks = client.hooks()
        if not hooks:
            print("no hooks registered")
        for hook in hooks:
            query = hook.get("parsed_query") or hook.get("parsedQuery") or hook.get("query")
            print(
                f"{hook.get('id')}  {hook.get('type')}  {query!r}  "
                f"{redact(str(hook.get('callback_url', '')))}"
            )
    else:
        client.unregister(args.hook_id)
        print(f"deleted hook {args.hook_id}")
    return 0


def simulate_command(args: argparse.Namespace) -> int:
    photos, others = photos_in(args.images)
    return simulate(
        args.url,
        photos,
        listen=args.listen,
        port=args.port,
        camera=args.camera,
        timeout=args.timeout,
        out=sys.stdout,
        skipped=others,
        as_json=args.json,
    )


def rules_command(args: argparse.Namespace) -> int:
    """Only HOOK_RULES is read for the file, so other settings' mistakes do not get in the way;
    the label names are checked against the models in force when they can be loaded."""
    raw = os.environ.get("HOOK_RULES", "").strip()
    path = args.file or (Path(raw) if raw else None)
    print(check(path, known=_model_labels()))
    return 0


def _model_labels() -> set[str] | str:
    """The labels of the models HOOK_MODEL names, or why they could not be had."""
    logging.getLogger("hook.detect.detector").setLevel(logging.WARNING)  # no model-loading chatter
    try:
        settings = Settings.from_env(require_api_key=False)
        return ensemble.label_names(detector_from(settings))
    except HookError as exc:
        return str(exc)


def status_command(args: argparse.Namespace) -> int:
    settings = _settings(require_api_key=False)
    check_answering(settings)
    store = TaskStore(connect(settings, app_name="hook-status", start_embedded=False))
    try:
        data = gather(store, time.time())
    except ConnectionFailure:
        raise HookError(not_answering(settings)) from None
    except PyMongoError as exc:
        raise HookError(f"MongoDB refused: {type(exc).__name__}: {exc}") from None
    print(json.dumps(data, indent=2) if args.json else report(data))
    return 0


def web_command(args: argparse.Namespace) -> int:
    exec_argv(web_argv(_settings(require_api_key=True)))
    return 1  # not reached: exec_argv replaced this process or raised


def mongo_command(args: argparse.Namespace) -> int:
    embedded = embedded_for(_settings(require_api_key=False))
    embedded.make_data_dir()
    exec_argv(embedded.command())
    return 1  # not reached


def run_command(args: argparse.Namespace) -> int:
    return Launcher(_settings(require_api_key=True), environ=os.environ).run()


def _settings(*, require_api_key: bool) -> Settings:
    settings = Settings.from_env(require_api_key=require_api_key)
    configure(settings.log_level)
    return settings


def exec_argv(argv: list[str]) -> None:
    """Replace this process, so systemd supervises the server itself, not a wrapper."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(argv[0], argv)  # noqa: S606 - a fixed argv of our own, no shell wanted
    except OSError as exc:
        raise HookError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "settings": settings_command,
    "register": camio_command,
    "hooks": camio_command,
    "unregister": camio_command,
    "simulate": simulate_command,
    "status": status_command,
    "retry": retry_command,
    "forget": forget_command,
    "show": show_command,
    "rules": rules_command,
    "verify": verify_command,
    "web": web_command,
    "mongo": mongo_command,
    "run": run_command,
}
