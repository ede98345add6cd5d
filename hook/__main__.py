"""`python -m hook <command>`: the command line. An edge: reads the environment once."""

from __future__ import annotations

import argparse
import logging
import sys

from hook.errors import ConfigError
from hook.launcher import Launcher
from hook.logs import configure
from hook.settings import PROJECT_DIR, Settings, settings_table, update_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("run", help="run MongoDB (embedded), the web app and workers here")
    table = commands.add_parser("settings", help="print the settings table (Markdown)")
    table.add_argument(
        "--update-readme",
        action="store_true",
        help="write it into README.md between its settings markers",
    )
    args = parser.parse_args(argv)

    if args.command == "settings":
        if args.update_readme:
            update_readme(PROJECT_DIR / "README.md")
        else:
            print(settings_table())
        return 0
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"hook: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level)
    if args.command == "run":
        try:
            return Launcher(settings).run()
        except ConfigError as exc:
            logging.getLogger("hook").critical("%s", exc)
            return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
