"""Standard Webhooks signatures (standardwebhooks.com): what lets a receiver trust a callback.

A signature is `v1,` + base64 of HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`,
with the body's bytes exactly as sent. A secret is `whsec_` + base64 of the key (24 to 64
random bytes, as the spec asks); the bare base64 without the prefix is taken too, as every
Standard Webhooks library reads it, so one value works on both sides. Several secrets sign
with each (the signatures space-separated in one header): during a rotation a receiver that
knows either the old or the new one verifies.

`verify` is the receiver's side, for `python -m hook verify` and the tests; it never trusts
the clock of the sender, only the tolerance around its own `now`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from hook.errors import BadSignature

PREFIX = "whsec_"
VERSION = "v1"
MIN_KEY, MAX_KEY = 24, 64  # bytes of key, as the spec asks of a symmetric secret
TOLERANCE = 300  # seconds a receiver accepts between webhook-timestamp and its own clock
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MSG_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # no "." (the signed text's separator), no spaces


def key_of(secret: str) -> bytes:
    """The raw key of `whsec_<base64>` (or the bare base64); ValueError that never shows it."""
    text = secret.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64 after whsec_ (a Standard Webhooks secret)") from None
    if not MIN_KEY <= len(key) <= MAX_KEY:
        raise ValueError(f"holds a key of {len(key)} bytes; it must be {MIN_KEY} to {MAX_KEY}")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """One `v1,<base64>` signature of the message."""
    data = body.encode() if isinstance(body, str) else body
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + data, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


class Signer:
    """Signs callbacks with one or more secrets (the first is the current one, by convention)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("needs at least one secret")
        keys = []
        for n, secret in enumerate(secrets, 1):
            try:
                keys.append(key_of(secret))
            except ValueError as exc:  # by position: the value itself is never shown
                raise ValueError(f"secret {n} of {len(secrets)} {exc}") from None
        self._keys = tuple(keys)

    def __repr__(self) -> str:  # the keys must never reach a log line
        return f"Signer({len(self._keys)} secret{'s' * (len(self._keys) > 1)})"

    def headers(self, msg_id: str, body: str | bytes, timestamp: int) -> dict[str, str]:
        """webhook-id, webhook-timestamp and webhook-signature (one entry per secret)."""
        if not MSG_ID.fullmatch(msg_id):
            raise ValueError(f"message id {msg_id!r} must be 1 to 128 of A-Z a-z 0-9 _ -")
        signatures = " ".join(sign(key, msg_id, timestamp, body) for key in self._keys)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }


def parse_secrets(raw: str) -> tuple[str, ...]:
    """HOOK_SIGNING_SECRET: space-separated secrets, each checked (ValueError by position)."""
    secrets = tuple(raw.split())
    Signer(secrets)
    return secrets


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: str | bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> None:
    """Return if one of the v1 signatures in `headers` is `secret`'s over `body` and the
    timestamp is within `tolerance` s of `now`; else BadSignature saying why."""
    key = key_of(secret)
    given = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in HEADERS if name not in given]
    if missing:
        raise BadSignature(f"no {', '.join(missing)} header")
    stamp = given["webhook-timestamp"].strip()
    if not stamp.isdigit():
        raise BadSignature(f"webhook-timestamp {stamp[:40]!r} is not whole seconds")
    age = now - int(stamp)
    if age > tolerance:
        raise BadSignature(f"webhook-timestamp is {age:.0f} s old (more than {tolerance:g} s)")
    if age < -tolerance:
        raise BadSignature(f"webhook-timestamp is {-age:.0f} s ahead (more than {tolerance:g} s)")
    expected = base64.b64decode(sign(key, given["webhook-id"], int(stamp), body)[3:])
    offered = [entry.partition(",") for entry in given["webhook-signature"].split()]
    ours = [value for version, _, value in offered if version == VERSION]
    for value in ours:
        try:
            if hmac.compare_digest(base64.b64decode(value, validate=True), expected):
                return
        except (binascii.Error, ValueError):
            continue  # a malformed entry matches nothing; another may still match
    if not ours:
        raise BadSignature("webhook-signature holds no v1 signature")
    raise BadSignature(f"no signature matches the secret and this body ({len(ours)} v1 checked)")
