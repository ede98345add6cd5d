"""Keys: which of the hook's keys a request carries, in constant time.

HOOK_API_KEY enqueues events and opens everything; a HOOK_VIEW_KEY (several, for rotation)
opens the page, the listing, results and pictures but never enqueues, so the page can be shared
without handing out the key that writes. Every key is compared as a SHA-256 digest (equal
lengths: the time does not depend on the key's length), and against every key each time (the
time does not say which key, if any, came close).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from enum import Enum
from typing import NoReturn

from hook.errors import WrongKey

log = logging.getLogger(__name__)


class KeyKind(Enum):
    INGEST = "ingest"  # HOOK_API_KEY
    VIEW = "view"  # a HOOK_VIEW_KEY


class Keys:
    """The digests of the configured keys, and what a sent key is."""

    def __init__(self, api_key: str, view_keys: Sequence[str] = ()) -> None:
        self.digests = [(KeyKind.INGEST, _digest(api_key.encode()))]
        self.digests += [(KeyKind.VIEW, _digest(key.encode())) for key in view_keys]

    def kind(self, sent: bytes) -> KeyKind | None:
        """INGEST, VIEW, or None for a key that is neither."""
        digest = _digest(sent)
        matches = [kind for kind, known in self.digests if hmac.compare_digest(digest, known)]
        return matches[0] if matches else None

    def ingest(self, sent: bytes, remote: str, doing: str = "events") -> None:
        """The key that enqueues events (and retries and forgets tasks), or WrongKey (403)
        saying which it is not; `doing` names what was refused."""
        kind = self.kind(sent)
        if kind is KeyKind.VIEW:
            log.warning("refused %s sent with a view key from %s", doing, remote)
            raise WrongKey(
                f"this key only views (HOOK_VIEW_KEY): {doing} need HOOK_API_KEY",
                field="api_key",
            )
        if kind is None:
            _refuse(remote)

    def viewer(self, sent: bytes, remote: str) -> KeyKind:
        """Either kind of key (which it is), or WrongKey (403)."""
        kind = self.kind(sent)
        if kind is None:
            _refuse(remote)
        return kind


def _refuse(remote: str) -> NoReturn:
    log.warning("refused a request with a wrong API key from %s", remote)
    raise WrongKey("wrong API key", field="api_key")


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
