"""Keeping the API key out of every log line, ours and gunicorn's.

The key travels in the URL path (/tasks/<api_key>), and gunicorn writes request lines into its
error log (a worker timeout, an invalid request line) and, when on, its access log. A filter
rewrites any such path, also where it is percent-encoded (`/%74asks/<key>`, `%2Ftasks%2F<key>`,
even twice over): the server decodes what it routes, so the log must see through it too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from gunicorn.glogging import Logger

# any case: a key sent astray too; never a shell variable ($HOOK_API_KEY in a hint): a key is
# URL-safe characters only, so none starts with $
_KEY_IN_PATH = re.compile(r"(/(?i:tasks)/)(?!\$[A-Z_])[^/\s?#'\"]+")
_ENCODED = re.compile(r"[^\s'\"]*%[0-9A-Fa-f]{2}[^\s'\"]*")  # a word with a %XX in it
DECODINGS = 3  # percent-decoded this many times over at most, looking for a path with a key


def redact(text: str) -> str:
    """Replace the key segment of any /tasks/<key> path with <key>; a percent-encoded word
    that decodes to such a path is written decoded, redacted."""
    text = _KEY_IN_PATH.sub(r"\1<key>", text)
    return _ENCODED.sub(_decoded_redacted, text) if "%" in text else text


def _decoded_redacted(match: re.Match[str]) -> str:
    word = decoded = match[0]
    for _ in range(DECODINGS):
        decoded, before = unquote(decoded), decoded
        if _KEY_IN_PATH.search(decoded):
            return _KEY_IN_PATH.sub(r"\1<key>", decoded)
        if decoded == before:
            break
    return word


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
