"""WSGI entry point for gunicorn: `gunicorn -w N hook.wsgi:app` (without --preload).

This is an edge: it reads the environment once. Each gunicorn worker imports it after the
fork, so each opens its own MongoClient.
"""

from __future__ import annotations

import logging
import sys

from bottle import Bottle

from hook.config.mongo import connect, make_indexes
from hook.config.settings import Settings
from hook.errors import ConfigError
from hook.logs import configure
from hook.store import TaskStore
from hook.web.app import create_app

GUNICORN_BOOT_ERROR = 3  # tells gunicorn's arbiter to stop rather than respawn forever


def build() -> Bottle:
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        store = TaskStore(connect(settings, app_name="hook-web"))
    except ConfigError as exc:
        configure()
        logging.getLogger("hook.wsgi").critical("cannot start: %s", exc)
        sys.exit(GUNICORN_BOOT_ERROR)
    make_indexes(store)
    return create_app(settings, store)


app = build()
