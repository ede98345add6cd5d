"""`python -m hook verify`: check a saved callback's signature as its receiver would.

The secret comes from --secret or HOOK_SIGNING_SECRET (so it need not be on a command line,
where other users can see it); with several (space-separated), any one that verifies will do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hook.callbacks.signing import key_of, verify
from hook.errors import BadSignature, ConfigError


def verify_command(args: argparse.Namespace) -> int:
    """0 and a line when the signature checks out; BadSignature (exit 1) saying why if not."""
    secrets = (args.secret or os.environ.get("HOOK_SIGNING_SECRET", "")).split()
    if not secrets:
        raise ConfigError("no secret to check with: give --secret or set HOOK_SIGNING_SECRET")
    for n, secret in enumerate(secrets, 1):
        try:
            key_of(secret)
        except ValueError as exc:  # by position: the value is never shown
            raise ConfigError(f"secret {n} of {len(secrets)} {exc}") from None
    body = args.body.read_bytes() if args.body else sys.stdin.buffer.read()
    headers = {
        "webhook-id": args.id,
        "webhook-timestamp": args.timestamp,
        "webhook-signature": args.signature,
    }
    now = time.time() if args.now is None else args.now
    reasons = []
    for n, secret in enumerate(secrets, 1):
        try:
            verify(secret, headers, body, now=now, tolerance=args.tolerance)
        except BadSignature as exc:
            reasons.append(str(exc))
            continue
        which = f", by secret {n} of {len(secrets)}" if len(secrets) > 1 else ""
        when = "ago" if args.now is None else "before --now"
        age = now - int(args.timestamp)
        print(f"valid: webhook-id {args.id}, {len(body)} bytes, signed {age:.0f} s {when}{which}")
        return 0
    tried = f" (tried {len(secrets)} secrets)" if len(secrets) > 1 else ""
    raise BadSignature(f"invalid: {reasons[-1]}{tried}")
