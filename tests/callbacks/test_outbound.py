"""The headers beside a callback's body: context, signature, the operator's own; and how
HOOK_SIGNING_SECRET and HOOK_CALLBACK_HEADERS are checked at start-up and kept out of sight."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from hook.callbacks.outbound import MAX_CONTEXT, Outbound, context_value, parse_custom_headers
from hook.callbacks.signing import Signer, verify
from hook.cli.settings_report import effective_table
from hook.config.settings import Settings
from hook.errors import ConfigError
from tests.factories import API_KEY

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TASK_ID = "6b042f477050c593dd19606a"
BODY = '{"status":"success","labels":{}}'
TOKEN = "Bearer s3cr3t-t0ken-value"  # a custom header's value: never to be seen again


def test_every_callback_carries_its_context_and_a_stable_id_without_a_secret() -> None:
    plain = Outbound().headers_for(
        TASK_ID, BODY, camera="front door", user="u1", attempt=3, now=1_700_000_000.9
    )
    assert plain == {
        "webhook-id": TASK_ID,
        "webhook-timestamp": "1700000000",
        "X-Hook-Camera": "front door",
        "X-Hook-User": "u1",
        "X-Hook-Attempt": "3",
    }
    none = Outbound().headers_for(TASK_ID, BODY, camera=None, user=None, attempt=1, now=5)
    assert "X-Hook-Camera" not in none and "X-Hook-User" not in none


def test_signed_and_custom_headers_go_together() -> None:
    outbound = Outbound(Signer([SECRET]), {"Authorization": TOKEN})
    headers = outbound.headers_for(TASK_ID, BODY, camera="c", user=None, attempt=1, now=1000.0)
    assert headers["Authorization"] == TOKEN and headers["webhook-id"] == TASK_ID
    assert headers["webhook-timestamp"] == "1000"
    verify(SECRET, headers, BODY, now=1000)
    assert TOKEN not in repr(outbound) and "Authorization" in repr(outbound)
    with pytest.raises(ValueError, match="message id"):
        outbound.headers_for("a.b", BODY, camera=None, user=None, attempt=1, now=1)


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("front door", "front door"),
        ("café ☂", "caf%C3%A9 %E2%98%82"),
        ("100% porch", "100%25 porch"),  # % itself, so that unquote gives the text back
        (" edge ", "%20edge%20"),  # HTTP would trim spaces at either end
        ("line\r\nbreak\t", "line%0D%0Abreak%09"),
        ("<script>", "<script>"),
    ],
)
def test_camera_and_user_are_percent_encoded_outside_printable_ascii(text: str, sent: str) -> None:
    assert context_value(text) == sent
    assert unquote(sent) == text


def test_a_long_camera_name_is_cut_between_characters() -> None:
    cut = context_value("é" * 1000)
    assert len(cut) <= MAX_CONTEXT and cut.endswith("%C3%A9")
    assert unquote(cut, errors="strict") == "é" * (len(cut) // 6)
    assert context_value("a" * 5000) == "a" * MAX_CONTEXT


def test_custom_headers_from_json_or_a_file(tmp_path: Path) -> None:
    given = {"Authorization": TOKEN, "X-Api-Key": "k-1", "User-Agent": "hook/0.1 (latin-1: é)"}
    assert parse_custom_headers(json.dumps(given)) == given
    path = tmp_path / "headers.json"
    path.write_text(json.dumps(given))
    assert parse_custom_headers(f" {path} ") == given


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ('{"Host": "VALUE"}', "header Host is not allowed"),
        ('{"content-length": "VALUE"}', "header content-length is not allowed"),
        ('{"Transfer-Encoding": "VALUE"}', "header Transfer-Encoding is not allowed"),
        ('{"CONNECTION": "VALUE"}', "header CONNECTION is not allowed"),
        ('{"Content-Type": "VALUE"}', "header Content-Type is not allowed"),
        ('{"Webhook-Signature": "VALUE"}', "header Webhook-Signature is not allowed"),
        ('{"webhook-anything": "VALUE"}', "header webhook-anything is not allowed"),
        ('{"x-hook-camera": "VALUE"}', "header x-hook-camera is not allowed"),
        ('{"Bad Name": "VALUE"}', "header name 'Bad Name' is not an HTTP token"),
        ('{"X-Api": "VALUE\\r\\nX-Evil: 1"}', "header X-Api: its value holds a line break"),
        ('{"X-Api": "VALUE\\u20ac"}', "outside Latin-1"),
        ('{"X-Api": " VALUE"}', "header X-Api: its value starts or ends with whitespace"),
        ('{"X-Api": "\\u00a0VALUE"}', "header X-Api: the HTTP client refuses its value"),
        ('{"Content-Encoding": "gzip"}', "header Content-Encoding is not allowed"),
        ('{"X-Api": 12}', "header X-Api: its value must be a JSON string"),
        ('{"X-Api": "VALUE", "x-api": "VALUE"}', "header x-api is given twice"),
        ('{"X-Api": "VALUE",}', "not JSON: "),
        ("Authorization: Bearer VALUE", "names no file, and is no JSON object"),
    ],
)
def test_bad_custom_headers_are_refused_naming_the_header_not_the_value(raw: str, why: str) -> None:
    with pytest.raises(ConfigError, match="HOOK_CALLBACK_HEADERS") as caught:
        Settings.from_env({"HOOK_API_KEY": API_KEY, "HOOK_CALLBACK_HEADERS": raw})
    assert why in str(caught.value)
    assert "VALUE" not in str(caught.value)


def test_a_file_of_something_else_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "headers.json"
    path.write_text('["VALUE"]')
    with pytest.raises(ValueError, match=f"{path}: must be a JSON object") as caught:
        parse_custom_headers(str(path))
    assert "VALUE" not in str(caught.value)


def test_a_bad_signing_secret_is_refused_by_position_never_shown() -> None:
    good = "whsec_" + "A" * 32
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {"HOOK_API_KEY": API_KEY, "HOOK_SIGNING_SECRET": f"{good} whsec_N0t~Base64~VALUE"}
        )
    assert str(caught.value) == (
        "HOOK_SIGNING_SECRET=<hidden> is invalid: secret 2 of 2 is not base64 after whsec_ "
        "(a Standard Webhooks secret)"
    )


def test_the_settings_hold_them_and_never_show_them() -> None:
    env = {
        "HOOK_API_KEY": API_KEY,
        "HOOK_SIGNING_SECRET": f"{SECRET} whsec_{'B' * 32}",
        "HOOK_CALLBACK_HEADERS": json.dumps({"Authorization": TOKEN}),
    }
    settings = Settings.from_env(env)
    assert settings.signing_secrets == (SECRET, f"whsec_{'B' * 32}")
    assert settings.callback_headers == {"Authorization": TOKEN}
    unset = Settings.from_env({"HOOK_API_KEY": API_KEY})
    assert unset.signing_secrets is None and unset.callback_headers is None
    for shown in (repr(settings), effective_table(env)):
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in shown and "BBBB" not in shown
        assert TOKEN not in shown and "Authorization" not in shown
    rows = dict(line.split(None, 1) for line in effective_table(env).splitlines())
    assert rows["HOOK_SIGNING_SECRET"].startswith("<hidden>")
    assert rows["HOOK_CALLBACK_HEADERS"].startswith("<hidden>")
