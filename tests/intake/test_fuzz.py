"""Property-based fuzzing of POST /tasks/<key>, in-process: any body gets 200 or a JSON 4xx,
never a 5xx or an exception, and a 4xx stores nothing."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.database import Database

from hook.callbacks.hosts import HostAllowList
from hook.errors import BadImage, Invalid
from hook.intake.images import decode_image
from hook.store import TaskStore
from hook.web.app import create_app, status_for
from tests.factories import API_KEY, b64, event, image_bytes, make_settings

JPEG = b64(image_bytes(32, 24, seed=1))
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
timestamps = st.one_of(
    st.text(max_size=40),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: {"meta_class": "datetime.datetime", "date": d.isoformat()}),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    scalars,
)


@pytest.fixture
def app(db: Database) -> Iterator[tuple[Any, Database]]:
    yield create_app(make_settings(HOOK_MAX_BODY="200000"), TaskStore(db)), db


def call(app: Any, body: bytes, path: str = f"/tasks/{API_KEY}") -> tuple[int, dict]:
    """One WSGI request, the way a server would make it; returns status and parsed JSON."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }
    started: list[str] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.append(status))
    data = b"".join(chunks)
    return int(started[0].split()[0]), json.loads(data)


def counts(db: Database) -> tuple[int, int]:
    return db.tasks.count_documents({}), db.images.count_documents({})


def check(app: Any, db: Database, body: bytes) -> None:
    before = counts(db)
    status, answer = call(app, body)
    assert status == 200 or 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and "ok" in answer
    if status != 200:
        assert answer["ok"] is False and answer["error"]
        assert counts(db) == before, "a refused event left something behind"
    else:
        assert answer["ok"] is True and answer["task_id"]


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(json_values)
def test_random_json_shapes(app: tuple[Any, Database], value: Any) -> None:
    check(*app, dumps(value))


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(app: tuple[Any, Database], body: bytes) -> None:
    check(*app, body)


@FUZZ
@given(
    st.sampled_from(["callback_url", "camera", "user_id", "images", "extra"]),
    json_values,
    st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=3),
)
def test_valid_event_with_one_field_replaced_and_unicode_keys(
    app: tuple[Any, Database], field: str, value: Any, extra: dict
) -> None:
    payload = event(1, seed=1) | extra
    payload[field] = value
    check(*app, dumps(payload))


@FUZZ
@given(st.lists(timestamps, min_size=1, max_size=3), st.sampled_from([JPEG, "", "@@@", 7]))
def test_odd_timestamps_and_images(app: tuple[Any, Database], stamps: list, image: Any) -> None:
    payload = {
        "callback_url": "https://www.camio.com/cb",
        "images": [{"timestamp": s, "image_b64": image} for s in stamps],
    }
    check(*app, dumps(payload))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"callback_url": 1e999999}',
        b'{"images": [' + b"9" * 5000 + b"]}",
        dumps({"callback_url": "https://www.camio.com/x", "images": [{"timestamp": math.pi}]}),
        b'{"\\ud800": "\\udfff", "callback_url": "https://www.camio.com/\\u0000"}',
    ],
    ids=["deep-list", "deep-object", "huge-float", "huge-int", "float-stamp", "surrogates"],
)
def test_extremes(app: tuple[Any, Database], body: bytes) -> None:
    check(*app, body)


def test_a_valid_event_still_passes(app: tuple[Any, Database]) -> None:
    status, answer = call(app[0], dumps(event(2, seed=5)))
    assert status == 200 and answer["ok"]


HOST_TEXT = st.text(alphabet="abc.:[]/0123456789*-_ fx", max_size=30)


@FUZZ
@given(entry=HOST_TEXT, url_host=HOST_TEXT)
def test_allow_list_entries_and_urls_never_crash(entry: str, url_host: str) -> None:
    """An entry parses or is a ValueError naming it; a URL passes or is an Invalid."""
    try:
        hosts = HostAllowList(("camio.com", entry))
    except ValueError as exc:
        assert repr(entry.strip().lower())[:10] in str(exc) or entry.strip() == ""
        hosts = HostAllowList(("camio.com",))
    try:
        hosts.check_url(f"http://{url_host}/cb")
    except Invalid as exc:
        assert status_for(exc) == 400 and exc.field == "callback_url"


PNG = image_bytes(40, 30, fmt="PNG", noise=True)


@FUZZ
@given(
    cut=st.integers(8, len(PNG)),
    flips=st.lists(st.tuples(st.integers(8, len(PNG) - 1), st.integers(0, 255)), max_size=6),
)
def test_a_damaged_image_decodes_or_is_a_bad_image(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(PNG[:cut])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    try:
        image, size = decode_image(bytes(data), max_pixels=1_000_000, fit=(416, 416))
    except BadImage:
        return
    assert image.mode == "RGB" and size[0] > 0 and size[1] > 0
