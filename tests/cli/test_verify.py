"""A receiver's side: `python -m hook verify` on saved requests, and docs/delivery.md's snippet."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

from hook.callbacks.signing import Signer
from tests.factories import ROOT
from tests.procs import hook_cli

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's test vector
MSG_ID, STAMP, BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER = "whsec_" + base64.b64encode(os.urandom(32)).decode()


def verify_cli(body: Path, *args: str, **env: str) -> tuple[int, str, str]:
    done = hook_cli(
        "verify", "--id", MSG_ID, "--timestamp", STAMP, "--body", str(body), *args, **env
    )
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def test_verify_says_valid_for_the_specs_vector(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    assert verify_cli(
        body, "--signature", SIGNATURE, "--secret", SECRET, "--now", "1614265332"
    ) == (0, f"valid: webhook-id {MSG_ID}, 20 bytes, signed 2 s before --now", "")


def test_verify_says_why_not_and_exits_1(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY + b"\n")  # one byte more than was signed
    code, out, err = verify_cli(body, "--signature", SIGNATURE, "--secret", SECRET, "--now", STAMP)
    assert (code, out) == (1, "")
    why = "no signature matches the secret and this body (1 v1 checked)"
    assert err == f"hook verify: invalid: {why}"
    body.write_bytes(BODY)
    code, _, err = verify_cli(body, "--signature", SIGNATURE, "--secret", SECRET)  # now: years on
    assert code == 1 and "webhook-timestamp is" in err and "s old (more than 300 s)" in err


def test_verify_takes_the_secrets_from_the_environment_any_one_will_do(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    code, out, _ = verify_cli(
        body, "--signature", SIGNATURE, "--now", STAMP, HOOK_SIGNING_SECRET=f"{OTHER} {SECRET}"
    )
    assert code == 0 and out.endswith("by secret 2 of 2")
    code, _, err = verify_cli(
        body, "--signature", SIGNATURE, "--now", STAMP, HOOK_SIGNING_SECRET=OTHER
    )
    assert code == 1 and "no signature matches" in err


def test_verify_refuses_a_bad_or_missing_secret_without_showing_it(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    code, _, err = verify_cli(body, "--signature", SIGNATURE, "--secret", "whsec_N0T~base64~XYZ")
    assert code == 2 and "secret 1 of 1 is not base64" in err and "N0T" not in err
    code, _, err = verify_cli(body, "--signature", SIGNATURE)
    assert code == 2 and "give --secret or set HOOK_SIGNING_SECRET" in err


def delivery_snippet() -> str:
    """The receiver's check that docs/delivery.md offers, after its `receiver snippet` marker."""
    text = (ROOT / "docs" / "delivery.md").read_text()
    after = text.split("<!-- receiver snippet -->\n```python\n", 1)[1]
    return after.split("```", 1)[0]


def test_the_docs_receiver_snippet_verifies_what_hook_signs() -> None:
    snippet = delivery_snippet()
    assert len(snippet.splitlines()) <= 12  # the short one it promises
    space: dict[str, Any] = {}
    exec(snippet, space)  # the page's own code, run as a reader would
    from_hook = space["from_hook"]
    body = b'{"status":"success","labels":{"2017-05-05T01:31:13Z":{}}}'
    now = int(time.time())
    headers = Signer([OTHER, SECRET]).headers("6b042f477050c593dd19606a", body, now)
    assert from_hook(SECRET, headers, body) and from_hook(OTHER, headers, body)
    assert not from_hook(SECRET, headers, body + b" ")
    assert not from_hook("whsec_" + base64.b64encode(os.urandom(32)).decode(), headers, body)
    stale = Signer([SECRET]).headers("6b042f477050c593dd19606a", body, now - 301)
    assert not from_hook(SECRET, stale, body)
    vector = {"webhook-id": MSG_ID, "webhook-timestamp": STAMP, "webhook-signature": SIGNATURE}
    assert not from_hook(SECRET, vector, BODY)  # right signature, but 2021's timestamp
    assert from_hook(SECRET, vector, BODY, tolerance=10**10)
