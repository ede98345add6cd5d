"""`python -m hook <command>`: the command line. An edge: reads the environment once."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from pymongo.errors import PyMongoError

from hook.camio import DEFAULT_API, CamioClient, CamioError, camera_query
from hook.errors import ConfigError
from hook.launcher import Launcher, web_argv
from hook.logs import configure
from hook.mongo import connect, embedded_for
from hook.redact import redact
from hook.settings import PROJECT_DIR, Settings, settings_table, update_readme
from hook.simulate import images_in, simulate
from hook.status import gather, report
from hook.store import TaskStore


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m hook", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("run", help="run MongoDB (embedded), the web app and workers here")
    commands.add_parser("web", help="become gunicorn serving hook.wsgi:app (systemd's entry)")
    commands.add_parser("mongo", help="become the embedded MongoDB server (systemd's entry)")
    table = commands.add_parser("settings", help="print the settings table (Markdown)")
    table.add_argument(
        "--update-readme",
        action="store_true",
        help="write it into README.md between its settings markers",
    )

    def camio(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
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

    register = camio("register", "register this hook with Camio; prints the new hook's id")
    register.add_argument(
        "--callback-url",
        required=True,
        help="this server's hook URL: https://HOST:8000/tasks/<api_key>",
    )
    which = register.add_mutually_exclusive_group(required=True)
    which.add_argument("--camera", help="send the events of this camera")
    which.add_argument("--query", help="send the events matching this parsed_query (1==1: all)")
    camio("hooks", "list the hooks registered with Camio")
    unregister = camio("unregister", "delete a hook registered with Camio")
    unregister.add_argument("hook_id")

    status = commands.add_parser("status", help="queue depth, oldest task, failures, workers")
    status.add_argument("--json", action="store_true", help="print JSON")
    sim = commands.add_parser("simulate", help="play Camio: post images, print the labels")
    sim.add_argument("url", help="the hook URL, http://HOST:8000/tasks/<api_key>")
    sim.add_argument("--images", type=Path, required=True, help="a folder of .jpg/.png files")
    sim.add_argument(
        "--listen",
        default="127.0.0.1",
        help="address for the callback (must be in the server's HOOK_CALLBACK_HOSTS)",
    )
    sim.add_argument("--port", type=int, default=0, help="port for the callback (default: any)")
    sim.add_argument("--camera", default="simulated camera")
    sim.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for labels")
    return top  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "settings":
            if args.update_readme:
                update_readme(PROJECT_DIR / "README.md")
            else:
                print(settings_table())
            return 0
        if args.command in ("register", "hooks", "unregister"):
            return camio_command(args)
        if args.command == "simulate":
            return simulate(
                args.url,
                images_in(args.images),
                listen=args.listen,
                port=args.port,
                camera=args.camera,
                timeout=args.timeout,
                out=sys.stdout,
            )
        settings = Settings.from_env(require_api_key=args.command in ("run", "web"))
        configure(settings.log_level)
        if args.command == "status":
            return status_command(settings, as_json=args.json)
        if args.command == "web":
            exec_argv(web_argv(settings))
        if args.command == "mongo":
            embedded = embedded_for(settings)
            embedded.make_data_dir()
            exec_argv(embedded.command())
        return Launcher(settings).run()
    except (ConfigError, CamioError, ValueError, OSError) as exc:
        print(f"hook {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


def exec_argv(argv: list[str]) -> None:
    """Replace this process, so systemd supervises the server itself, not a wrapper."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - a fixed argv of our own, no shell wanted


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
            print(f"{hook.get('id')}  {hook.get('type')}  {query!r}  "
                  f"{redact(str(hook.get('callback_url', '')))}")  # fmt: skip
    else:
        client.unregister(args.hook_id)
        print(f"deleted hook {args.hook_id}")
    return 0


def status_command(settings: Settings, *, as_json: bool) -> int:
    store = TaskStore(connect(settings, app_name="hook-status", start_embedded=False))
    try:
        data = gather(store, time.time())
    except PyMongoError as exc:
        print(f"hook status: MongoDB does not answer: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if as_json else report(data))
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
