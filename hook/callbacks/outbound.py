"""The headers every callback carries beside its body: signature, context, the operator's own.

    webhook-id         the task id: the same on every attempt, by any worker, so a receiver
                       drops repeats by it (sent with or without a signing secret)
    webhook-timestamp  unix seconds of this attempt
    webhook-signature  with HOOK_SIGNING_SECRET only (hook.callbacks.signing)
    X-Hook-Camera, X-Hook-User   the event's camera and user_id (left out when absent),
                       UTF-8 percent-encoded outside printable ASCII (and `%` itself)
    X-Hook-Attempt     the task's attempt number, from 1
    (custom)           HOOK_CALLBACK_HEADERS, e.g. an Authorization the receiver demands

Custom headers are checked once, at start-up: a name that would break the request or pass for
one of ours is refused, and a value is never shown in a message, a repr or a log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from requests.exceptions import InvalidHeader
from requests.utils import check_header_validity

from hook.callbacks.signing import MSG_ID, Signer

# Framing and hop-by-hop headers (the HTTP client sets them) and ours: refused as custom ones.
RESERVED = frozenset(
    (
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "content-type",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "content-encoding",
    )
)
RESERVED_PREFIXES = ("webhook-", "x-hook-")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field name
VALUE = re.compile(r"[\x20-\x7e\xa0-\xff\t]*")  # printable latin-1 (HTTP/1.1's bytes), no CR/LF
SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")  # kept as is in context
MAX_CONTEXT = 1024  # characters of a camera or user header at most (servers limit headers)


class Outbound:
    """What to send beside a callback's body; one per worker, built at the edge."""

    def __init__(self, signer: Signer | None = None, custom: Mapping[str, str] | None = None):
        self.signer = signer
        self.custom = dict(custom or {})

    def __repr__(self) -> str:  # names only: the values may be credentials
        return f"Outbound(signer={self.signer!r}, custom={sorted(self.custom)})"

    def headers_for(
        self,
        msg_id: str,
        body: str,
        *,
        camera: str | None,
        user: str | None,
        attempt: int,
        now: float,
        custom: bool = True,
    ) -> dict[str, str]:
        """The headers of one attempt at delivering `body` as message `msg_id` at `now`;
        `custom` False leaves out HOOK_CALLBACK_HEADERS (meant for the callback's receiver)."""
        if not MSG_ID.fullmatch(msg_id):
            raise ValueError(f"message id {msg_id!r} must be 1 to 128 of A-Z a-z 0-9 _ -")
        headers = dict(self.custom) if custom else {}
        stamp = int(now)
        if self.signer is not None:
            headers.update(self.signer.headers(msg_id, body, stamp))
        else:
            headers.update({"webhook-id": msg_id, "webhook-timestamp": str(stamp)})
        if camera is not None:
            headers["X-Hook-Camera"] = context_value(camera)
        if user is not None:
            headers["X-Hook-User"] = context_value(user)
        headers["X-Hook-Attempt"] = str(attempt)
        return headers


def context_value(text: str, limit: int = MAX_CONTEXT) -> str:
    """`text` fit for a header: printable ASCII kept, anything else (and `%`) percent-encoded
    as UTF-8, spaces at either end too (HTTP would trim them); cut to `limit` characters,
    never inside a character. `urllib.parse.unquote` gives the text back."""
    pieces = [quote(char, safe=SAFE, errors="replace") for char in text]
    for ends in (range(len(pieces)), range(len(pieces) - 1, -1, -1)):
        for index in ends:
            if pieces[index] != " ":
                break
            pieces[index] = "%20"
    kept, size = [], 0
    for piece in pieces:
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept).rstrip(" ")  # cut short, it may end in what were inner spaces


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept (to refuse them)."""


def parse_custom_headers(raw: str) -> dict[str, str]:
    """HOOK_CALLBACK_HEADERS: a JSON object (starting with `{`), else a file holding one."""
    text, where = raw.strip(), ""
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.exists():  # not named: it may be a mistyped value rather than a path
            raise ValueError("names no file, and is no JSON object (one starts with {)")
        where = f"{path}: "
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise ValueError(f"{where}cannot read it ({why})") from None
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:  # its message names the place, never the text
        why = f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        raise ValueError(where + why) from None
    if not isinstance(pairs, _Pairs):
        raise ValueError(f"{where}must be a JSON object of header name -> value")
    headers: dict[str, str] = {}
    for name, value in pairs:
        check_header(name, value)
        if name.lower() in {known.lower() for known in headers}:
            raise ValueError(f"{where}header {name} is given twice (names ignore case)")
        headers[name] = value
    return headers


def check_header(name: str, value: Any) -> None:
    """ValueError naming the header (never showing its value) if it may not be sent."""
    if not TOKEN.fullmatch(name):
        raise ValueError(
            f"header name {_shown(name)} is not an HTTP token "
            "(letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    lower = name.lower()
    if lower in RESERVED or lower.startswith(RESERVED_PREFIXES):
        refused = f"{', '.join(sorted(RESERVED))}, webhook-*, X-Hook-*"
        raise ValueError(
            f"header {name} is not allowed: the HTTP client or hook sets it (refused: {refused})"
        )
    if not isinstance(value, str):
        raise ValueError(f"header {name}: its value must be a JSON string")
    if not VALUE.fullmatch(value):
        raise ValueError(
            f"header {name}: its value holds a line break, a control character "
            "or a character outside Latin-1"
        )
    if value != value.strip(" \t"):
        raise ValueError(f"header {name}: its value starts or ends with whitespace")
    try:  # the HTTP client's own rule, or it would refuse the header on every POST
        check_header_validity((name, value))
    except InvalidHeader:
        raise ValueError(
            f"header {name}: the HTTP client refuses its value (it may not "
            "start with a space of any kind)"
        ) from None


def _shown(name: Any) -> str:
    """A header name for a message: escaped, and cut short (it may be a mistyped value)."""
    text = str(name)
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
