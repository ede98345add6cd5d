"""Keeping the API key out of every log line, ours and gunicorn's.

The key travels in the URL path (/tasks/<api_key>), and gunicorn writes request lines into its
error log (a worker timeout, an invalid request line). A filter rewrites any such path.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

_KEY_IN_PATH = re.compile(r"(/tasks/)[^/\s?#'\"]+")


def redact(text: str) -> str:
    """Replace the key segment of any /tasks/<key> path with <key>."""
    return _KEY_IN_PATH.sub(r"\1<key>", text)


class RedactFilter(logging.Filter):
    """A handler filter: formats the record's message once, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class GunicornLogger(Logger):
    """gunicorn's logger with the key redacted (`--logger-class hook.redact.GunicornLogger`)."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(RedactFilter())
