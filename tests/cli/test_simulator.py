"""`python -m hook simulate` against the real web app and worker: a line per photo, a summary,
every picture format, a stop at the first 403, and never the key in what it prints."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hook.store.embedded import EmbeddedMongo
from tests import procs
from tests.factories import API_KEY, DATA
from tests.loopback import free_port

pytestmark = pytest.mark.slow
WRONG_KEY = "wrong-key-0123456789abcdef"


@pytest.fixture(scope="module")
def stack(mongo: EmbeddedMongo) -> Iterator[procs.Stack]:
    with procs.Stack(mongo=mongo, HOOK_MONGO_DB=f"sim_{uuid.uuid4().hex[:8]}") as running:
        running.start_worker()
        yield running


def simulate(url: str, photos: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hook", "simulate", url, "--images", str(photos), *args]
    return subprocess.run(
        argv,
        cwd=procs.ROOT,
        env=procs.hook_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def records(done: subprocess.CompletedProcess[str]) -> tuple[dict[str, dict], dict[str, Any]]:
    """--json output: each photo's record by name, and the summary."""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    photos = {line["photo"]: line for line in lines if "photo" in line}
    (summary,) = [line["summary"] for line in lines if "summary" in line]
    return photos, summary


def folder(tmp_path: Path, **pictures: str) -> Path:
    """A folder of test photos: name -> the photo in tests/data it is (converted by suffix)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, source in pictures.items():
        with Image.open(DATA / source) as image:
            mode = "P" if name.endswith(".gif") else "RGB"
            image.convert(mode).save(photos / name)
    return photos


def test_a_line_per_photo_in_every_format_and_a_summary(stack: procs.Stack, tmp_path) -> None:
    photos = folder(
        tmp_path,
        **{
            "dog.jpg": "dog.jpg",
            "person.jpg": "person.jpg",
            "kite.webp": "kite.jpg",
            "giraffe.bmp": "giraffe.jpg",
            "horses.gif": "horses.jpg",
        },
    )
    (photos / "notes.txt").write_text("not a picture")
    done_before = len(stack.listing("done"))
    done = simulate(stack.url, photos, "--port", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "skipped (not a picture simulate sends): notes.txt" in lines
    for name in ("dog.jpg", "person.jpg", "kite.webp", "giraffe.bmp", "horses.gif"):
        (line,) = [line for line in lines if line.startswith(f"{name}: ")]
        assert re.fullmatch(rf"{re.escape(name)}: ([a-z ]+( x\d+)? 0\.\d\d(, )?)+ \(\d+ ms\)", line)
    assert re.search(r"^dog\.jpg: .*\bbicycle 0\.\d\d", done.stdout, re.M)
    assert re.search(r"^person\.jpg: .*\bhorse 0\.\d\d", done.stdout, re.M)
    summary = re.fullmatch(
        r"summary: 5 photos, 5 labeled, 1 other files skipped; "
        r"latency p50 (\d+) ms, max (\d+) ms",
        lines[-1],
    )
    assert summary and 0 < int(summary[1]) <= int(summary[2])
    assert API_KEY not in done.stdout + done.stderr
    assert len(stack.wait_listed("done", done_before + 5)) == done_before + 5  # each once


def test_json_records_labels_latency_and_unreadable_photos(stack: procs.Stack, tmp_path) -> None:
    photos = folder(tmp_path, **{"dog.jpg": "dog.jpg", "person.png": "person.jpg"})
    (photos / "broken.gif").write_bytes(b"GIF89a but nothing after")
    done = simulate(stack.url, photos, "--port", "0", "--json")
    assert done.returncode == 1, done.stdout + done.stderr  # not every photo was labeled
    by_photo, summary = records(done)
    assert by_photo["broken.gif"]["outcome"] == "unreadable"
    assert "cannot read it as a picture" in by_photo["broken.gif"]["error"]
    dog, person = by_photo["dog.jpg"], by_photo["person.png"]
    assert dog["outcome"] == person["outcome"] == "labeled"
    assert dog["status"] == person["status"] == 200 and "error" not in dog
    assert "bicycle" in dog["labels"] and "horse" in person["labels"]
    assert 0 < dog["labels"]["bicycle"]["probability"] <= 1
    assert summary["photos"] == 3 and summary["labeled"] == 2 and summary["unreadable"] == 1
    assert (
        summary["p50_ms"]
        <= summary["max_ms"]
        == round(max(dog["latency_ms"], person["latency_ms"]))
    )


def test_a_403_stops_at_the_first_photo_and_the_key_is_never_printed(
    stack: procs.Stack, tmp_path
) -> None:
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg", "b.jpg": "dog.jpg", "c.jpg": "dog.jpg"})
    url = f"{stack.base}/tasks/{WRONG_KEY}"
    done = simulate(url, photos, "--port", "0", "--json")
    assert done.returncode == 1
    by_photo, summary = records(done)
    assert by_photo["a.jpg"]["outcome"] == "refused" and by_photo["a.jpg"]["status"] == 403
    assert {by_photo[n]["outcome"] for n in ("b.jpg", "c.jpg")} == {"not sent"}
    assert summary["refused"] == 1 and summary["not sent"] == 2
    human = simulate(url, photos, "--port", "0")
    assert "stopped: the hook refused the key in the URL (403)" in human.stdout
    assert WRONG_KEY not in done.stdout + done.stderr + human.stdout + human.stderr


def test_a_callback_url_the_hook_refuses_stops_at_the_first_photo_saying_how_to_allow_it(
    stack: procs.Stack, tmp_path
) -> None:
    """Every photo's event carries the same callback URL: it was refused once per photo."""
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg", "b.jpg": "person.jpg"})
    # 127.0.0.2 is loopback too, but not in the hook's HOOK_CALLBACK_HOSTS
    done = simulate(stack.url, photos, "--listen", "127.0.0.2", "--port", "0", "--json")
    assert done.returncode == 1
    by_photo, summary = records(done)
    assert by_photo["a.jpg"]["status"] == 400 and by_photo["b.jpg"]["outcome"] == "not sent"
    assert "host '127.0.0.2' is not allowed" in by_photo["a.jpg"]["error"]
    assert summary["refused"] == 1 and summary["not sent"] == 1
    human = simulate(stack.url, photos, "--listen", "127.0.0.2", "--port", "0").stdout
    assert "stopped: the hook does not allow simulate's callback URL, http://127.0.0.2:" in human
    assert "so it would refuse every photo; start the server with that host and port in " in human
    assert "HOOK_CALLBACK_HOSTS (`hook run` allows 127.0.0.1:8101 when it is unset)" in human


def test_a_photos_own_refusal_goes_on_with_the_next(mongo: EmbeddedMongo, tmp_path) -> None:
    photos = folder(tmp_path, **{"a.jpg": "kite.jpg", "b.jpg": "person.jpg"})
    db = f"sim_{uuid.uuid4().hex[:8]}"
    small = procs.Stack(mongo=mongo, HOOK_MAX_IMAGE_PIXELS="300000", HOOK_MONGO_DB=db)
    with small as web_only:  # kite is 1352x900, person 640x424
        done = simulate(web_only.url, photos, "--port", "0", "--timeout", "0.5", "--json")
    by_photo, summary = records(done)
    assert (
        by_photo["a.jpg"]["outcome"] == "refused" and "over the limit" in by_photo["a.jpg"]["error"]
    )
    assert by_photo["b.jpg"]["status"] == 200 and summary["refused"] == 1


@pytest.mark.parametrize(
    ("path", "status"), [(f"/api/tasks/{API_KEY}", 404), (f"/tasks/{API_KEY}/view", 405)]
)
def test_a_url_the_hook_does_not_take_events_at_stops_at_once(
    stack: procs.Stack, tmp_path, path: str, status: int
) -> None:
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg", "b.jpg": "dog.jpg"})
    done = simulate(stack.base + path, photos, "--port", "0")
    assert done.returncode == 1 and "not sent after the stop: b.jpg" in done.stdout
    assert (
        f"stopped: the hook does not take events at this URL ({status}), so it would refuse "
        "every photo; give it as http://HOST:8000/tasks/<api_key>" in done.stdout
    )
    assert API_KEY not in done.stdout + done.stderr


def test_https_to_the_plain_http_server_says_so(stack: procs.Stack, tmp_path) -> None:
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg"})
    done = simulate(f"https://127.0.0.1:{stack.port}/tasks/{API_KEY}", photos, "--port", "0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        f"a.jpg: not sent: https://127.0.0.1:{stack.port}/tasks/<key> answers plain HTTP, not "
        f"HTTPS: use http://127.0.0.1:{stack.port}/tasks/<key>, or give the server "
        "HOOK_TLS_CERT and HOOK_TLS_KEY" in done.stdout
    )
    assert API_KEY not in done.stdout + done.stderr


def test_no_labels_in_time_is_a_timeout(mongo: EmbeddedMongo, tmp_path) -> None:
    photos = folder(tmp_path, **{"dog.jpg": "dog.jpg"})
    with procs.Stack(mongo=mongo, HOOK_MONGO_DB=f"sim_{uuid.uuid4().hex[:8]}") as web_only:
        done = simulate(web_only.url, photos, "--port", "0", "--timeout", "1")
        assert len(web_only.listing("queued")) == 1  # stored, but no worker labels it
    assert done.returncode == 1
    assert "dog.jpg: timeout: no labels within 1 s" in done.stdout
    assert "summary: 1 photo, 0 labeled, 1 timeout" in done.stdout


def test_the_hook_down_is_one_clear_line_without_the_key(tmp_path) -> None:
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg", "b.jpg": "dog.jpg"})
    done = simulate(f"http://127.0.0.1:{free_port()}/tasks/{API_KEY}", photos, "--port", "0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "a.jpg: not sent: cannot reach http://127.0.0.1:" in done.stdout
    assert (
        "/tasks/<key> (ConnectionError); is it running? (`hook run` starts it); if it serves "
        in done.stdout
    )
    assert "not sent after the stop: b.jpg" in done.stdout
    assert "summary: 2 photos, 0 labeled, 2 not sent" in done.stdout
    assert API_KEY not in done.stdout + done.stderr


def test_a_busy_callback_port_and_a_bad_url_are_clear_errors(tmp_path) -> None:
    photos = folder(tmp_path, **{"a.jpg": "dog.jpg"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = simulate(f"http://127.0.0.1:1/tasks/{API_KEY}", photos, "--port", str(port))
    assert busy.returncode == 1 and "Traceback" not in busy.stderr
    assert f"cannot take callbacks on 127.0.0.1:{port}: Address already in use" in busy.stderr
    bad = simulate(f"ftp://h/tasks/{API_KEY}", photos)
    assert bad.returncode == 2 and "must look like http://HOST:8000/tasks/<api_key>" in bad.stderr
    assert API_KEY not in bad.stderr
    keyless = simulate("http://127.0.0.1:8000/tasks/", photos)  # "$HOOK_API_KEY" unset
    assert keyless.returncode == 2
    assert "has no key after /tasks/ (is HOOK_API_KEY set in this shell?)" in keyless.stderr
