"""Standard Webhooks signatures: the spec's test vector, rotation, and the receiver's checks,
each also against the official library (standardwebhooks), which shares no code with ours."""

from __future__ import annotations

import base64
import os
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from hook.callbacks.signing import Signer, key_of, parse_secrets, sign, verify
from hook.errors import BadSignature

# The spec's published vector (standard-webhooks' libraries test against it).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID, STAMP, BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def new_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def test_the_specs_test_vector() -> None:
    headers = Signer([SECRET]).headers(MSG_ID, BODY, STAMP)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(STAMP),
        "webhook-signature": SIGNATURE,
    }
    assert sign(key_of(SECRET), MSG_ID, STAMP, BODY.encode()) == SIGNATURE  # bytes alike
    verify(SECRET, headers, BODY, now=STAMP)
    verify(SECRET.removeprefix("whsec_"), headers, BODY.encode(), now=STAMP + 299)  # bare base64


def test_several_secrets_each_sign_and_a_receiver_knowing_either_verifies() -> None:
    new, old = new_secret(), new_secret(24)
    now = 1_700_000_000
    headers = Signer([new, old]).headers("6b042f477050c593dd19606a", BODY, now)
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    for secret in (new, old):
        verify(secret, headers, BODY, now=now)
    with pytest.raises(BadSignature, match=r"no signature matches .* \(2 v1 checked\)"):
        verify(new_secret(), headers, BODY, now=now)


def test_the_official_library_verifies_what_we_sign() -> None:
    secrets = [new_secret(), new_secret(64)]
    now = int(time.time())
    body = '{"status":"success","labels":{"2017-05-05T01:31:13Z":{}}}'
    headers = Signer(secrets).headers("6b042f477050c593dd19606a", body, now)
    for secret in secrets:
        assert Webhook(secret).verify(body.encode(), headers) == {
            "status": "success",
            "labels": {"2017-05-05T01:31:13Z": {}},
        }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secrets[0]).verify(body.replace("success", "failure").encode(), headers)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"webhook-signature": None}, "no webhook-signature header"),
        ({"webhook-id": None, "webhook-timestamp": None}, "no webhook-id, webhook-timestamp"),
        ({"webhook-timestamp": "1614265330.5"}, "is not whole seconds"),
        ({"webhook-timestamp": str(STAMP - 301)}, "is 301 s old"),
        ({"webhook-timestamp": str(STAMP + 400)}, "is 400 s ahead"),
        ({"webhook-id": "msg_other"}, r"no signature matches .* \(1 v1 checked\)"),
        ({"webhook-signature": "v1a,abc v2,xyz"}, "holds no v1 signature"),
        ({"webhook-signature": "v1,not base64! " + SIGNATURE}, None),  # the good one counts
    ],
)
def test_verify_says_why_a_request_does_not_check_out(
    change: dict[str, str | None], why: str | None
) -> None:
    # names ignore case
    headers = {
        "Webhook-Id": MSG_ID,
        "Webhook-Timestamp": str(STAMP),
        "Webhook-Signature": SIGNATURE,
    }
    for name, value in change.items():
        headers.pop(name.title(), None)
        if value is not None:
            headers[name] = value
    if why is None:
        verify(SECRET, headers, BODY, now=STAMP)
        return
    with pytest.raises(BadSignature, match=why):
        verify(SECRET, headers, BODY, now=STAMP)


def test_a_changed_body_or_a_space_more_fails() -> None:
    headers = Signer([SECRET]).headers(MSG_ID, BODY, STAMP)
    for body in ('{"test":2432232314}', BODY + " ", '{"test": 2432232315}'):
        with pytest.raises(BadSignature, match="no signature matches"):
            verify(SECRET, headers, body, now=STAMP)


def test_a_bad_secret_is_named_by_position_never_shown() -> None:
    good = new_secret()
    for bad, why in (
        ("whsec_not*base64*at*all!!", "secret 2 of 2 is not base64"),
        ("whsec_" + base64.b64encode(b"short key").decode(), "secret 2 of 2 holds a key of 9 "),
        ("whsec_" + base64.b64encode(os.urandom(65)).decode(), "holds a key of 65 bytes"),
    ):
        with pytest.raises(ValueError, match=why) as caught:
            parse_secrets(f"{good}  {bad}")
        assert bad.removeprefix("whsec_") not in str(caught.value)
        assert good.removeprefix("whsec_") not in str(caught.value)
    with pytest.raises(ValueError, match="at least one secret"):
        Signer([])
    assert parse_secrets(f" {good}\t{SECRET} ") == (good, SECRET)
    assert repr(Signer([good, SECRET])) == "Signer(2 secrets)"


def test_a_message_id_that_could_confuse_the_signed_text_is_refused() -> None:
    for msg_id in ("a.b", "a b", "", "x\r\ny", "ü"):
        with pytest.raises(ValueError, match="message id"):
            Signer([SECRET]).headers(msg_id, BODY, STAMP)
