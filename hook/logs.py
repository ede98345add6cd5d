"""Logging set-up for the processes we start (web, worker, CLI): one format everywhere."""

from __future__ import annotations

import logging

from hook.redact import RedactFilter

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure(level: str = "INFO") -> None:
    """Log to stderr (journald or the terminal picks it up); idempotent."""
    logging.basicConfig(level=level, format=FORMAT)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())
    for noisy in ("pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
