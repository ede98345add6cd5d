"""Settings from the environment: the key is required, bad values are named, docs in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hook.cli.settings_report import effective_table, settings_table
from hook.config.resolved import resolve
from hook.config.settings import Settings
from hook.config.table import DEFAULT_MODELS, PROJECT_DIR, SPECS, Spec, data_dir
from hook.errors import ConfigError
from tests.factories import API_KEY, make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_missing_api_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="HOOK_API_KEY is not set"):
        Settings.from_env({})
    with pytest.raises(ConfigError, match="HOOK_API_KEY is not set"):
        Settings.from_env({"HOOK_API_KEY": "  "})


@pytest.mark.parametrize("key", ["short", "has/slash-0123456789", "spaces in it 0123456789"])
def test_unusable_api_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigError, match="HOOK_API_KEY=<hidden> is invalid") as info:
        Settings.from_env({"HOOK_API_KEY": key})
    assert key not in str(info.value)


def test_defaults() -> None:
    s = Settings.from_env({"HOOK_API_KEY": API_KEY})
    assert s.mongo_uri is None and s.mongo_db == "hook"
    assert s.callback_hosts == ("camio.com",)
    assert s.bind == "127.0.0.1:8000" and s.max_body == 32 * 1024 * 1024
    assert s.data_dir == PROJECT_DIR / "data"  # the tests run in a git checkout


def test_each_checkout_has_its_own_data_dir_and_an_installation_the_shared_one(
    tmp_path: Path,
) -> None:
    """Two checkouts shared ~/.local/share/hook: one embedded MongoDB, one wake-up ring."""
    (tmp_path / "one" / ".git").mkdir(parents=True)
    (tmp_path / "two" / ".git").mkdir(parents=True)
    assert data_dir("auto", tmp_path / "one") == tmp_path / "one" / "data"
    assert data_dir(" auto ", tmp_path / "two") == tmp_path / "two" / "data"
    assert data_dir("auto", tmp_path) == Path("~/.local/share/hook").expanduser()
    assert data_dir("~/elsewhere", tmp_path / "one") == Path("~/elsewhere").expanduser()


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "HOOK_API_KEY": API_KEY,
            "HOOK_MONGO_URI": "mongodb://db:27017/?replicaSet=rs0",
            "HOOK_CALLBACK_HOSTS": " Camio.com , 127.0.0.1 ,",
            "HOOK_MAX_BODY": "1_000_000",
            "HOOK_MONGO_TIMEOUT_MS": "2500",
            "HOOK_LOG_LEVEL": "debug",
        }
    )
    assert s.mongo_uri == "mongodb://db:27017/?replicaSet=rs0"
    assert s.callback_hosts == ("camio.com", "127.0.0.1")
    assert s.max_body == 1_000_000 and s.mongo_timeout_ms == 2500 and s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOOK_MAX_BODY", "lots"),
        ("HOOK_MAX_BODY", "-1"),
        ("HOOK_MAX_IMAGES", "0"),
        ("HOOK_MONGO_TIMEOUT_MS", "1.5"),
        ("HOOK_LOG_LEVEL", "chatty"),
        ("HOOK_EMBEDDED_PORT", "x"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}='{re.escape(value)}' is invalid"):
        Settings.from_env({"HOOK_API_KEY": API_KEY, name: value})


def test_repr_hides_the_key() -> None:
    s = Settings.from_env({"HOOK_API_KEY": API_KEY})
    assert API_KEY not in repr(s) and "<hidden>" in repr(s)


def test_every_setting_has_a_field_and_the_docs_list_it() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert {spec.field for spec in SPECS} == fields
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert settings_table() in page, "docs/configuration.md is stale: hook settings --update-docs"


def test_callback_hosts_are_checked_at_start_up() -> None:
    settings = make_settings(HOOK_CALLBACK_HOSTS="camio.com, 127.0.0.1:8101,10.0.0.0/8")
    assert settings.callback_hosts == ("camio.com", "127.0.0.1:8101", "10.0.0.0/8")
    with pytest.raises(ConfigError, match=r"HOOK_CALLBACK_HOSTS=.* is invalid: 'http://x\.com'"):
        make_settings(HOOK_CALLBACK_HOSTS="camio.com,http://x.com")


@pytest.mark.parametrize(
    "bind",
    [
        "127.0.0.1:8000",
        "0.0.0.0:8443",
        "localhost:80",
        "hook.example.com:8000",
        "[::]:8000",
        "[::1]:65535",
        "unix:/run/hook/web.sock",
    ],
)
def test_bind_forms_that_run_can_reach_are_accepted(bind: str) -> None:
    assert make_settings(HOOK_BIND=f" {bind} ").bind == bind


@pytest.mark.parametrize(
    ("bind", "why"),
    [
        ("localhost", "must be host:port"),
        (":8000", "must be host:port"),
        ("127.0.0.1:", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:65536", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:http", "the port must be a number from 1 to 65535"),
        ("::1:8000", "an IPv6 address goes in brackets"),
        ("[::g]:8000", r"\[::g\] is not an IPv6 address"),
        ("http://0.0.0.0:8000", "no http:// here"),
        ("10.0.0.1/24:8000", "is not a host name or IP address"),
        ("unix:run/web.sock", "a unix socket needs an absolute path"),
        ("fd://3", "no fd:// here"),
    ],
)
def test_a_bind_gunicorn_or_run_could_not_use_is_refused_at_start_up(bind: str, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"HOOK_BIND='{re.escape(bind)}' is invalid: .*{why}"):
        make_settings(HOOK_BIND=bind)


def test_secrets_are_the_key_and_anything_named_like_one() -> None:
    hidden = {spec.env for spec in SPECS if spec.hidden}
    # today's table; a new *_SECRET or *_TOKEN joins it
    assert hidden == {
        "HOOK_API_KEY",
        "HOOK_VIEW_KEY",
        "HOOK_SIGNING_SECRET",
        "HOOK_CALLBACK_HEADERS",
        "HOOK_FAILURE_URL",
    }
    named = Spec("HOOK_SIGNING_SECRET", str, None, "a signing secret")
    assert named.hidden and not Spec("HOOK_TLS_KEY", str, None, "a path").hidden


def test_effective_values_come_from_the_environment_with_secrets_hidden() -> None:
    table = effective_table(
        {
            "HOOK_API_KEY": API_KEY,
            "HOOK_CALLBACK_HOSTS": "Camio.com, 127.0.0.1:8101",
            "HOOK_MONGO_URI": "mongodb://u:pw@db:27017/hook",
            "HOOK_LEASE_SECONDS": "30",
        }
    )
    rows = {line.split()[0]: line.split(None, 1)[1] for line in table.splitlines()}
    assert API_KEY not in table and "pw@" not in table
    assert rows["HOOK_API_KEY"] == "<hidden>  (environment)"
    assert rows["HOOK_MONGO_URI"] == "mongodb://u:<hidden>@db:27017/hook  (environment)"
    assert rows["HOOK_CALLBACK_HOSTS"] == "camio.com,127.0.0.1:8101  (environment)"
    assert rows["HOOK_LEASE_SECONDS"] == "30.0  (environment)"
    assert rows["HOOK_MONGO_DB"] == "hook  (default)"
    assert rows["HOOK_MODEL_WEIGHTS"] == "1.0,1.5  (default)"  # in force for the default pair
    assert rows["HOOK_CLASSES"] == "(empty)  (default)"
    bare = dict(line.split(None, 1) for line in effective_table({}).splitlines())
    assert bare["HOOK_API_KEY"].startswith("(unset: `run` and `web` need it)")
    assert bare["HOOK_DATA_DIR"] == f"{PROJECT_DIR / 'data'}  (default)"
    # what 0 ("choose") comes to on this machine, as the worker lays itself out
    here = resolve(Settings.from_env({}, require_api_key=False))
    cores = here.cores
    assert bare["HOOK_WORKERS"] == f"0 (here: {here.workers} on {cores} core(s))  (default)"
    assert bare["HOOK_LANES"] == f"0 (here: {here.layout.lanes} per worker)  (default)"
    assert bare["HOOK_THREADS"] == "0 (here: 1 per lane)  (default)"
    auto = dict(
        line.split(None, 1)
        for line in effective_table({"HOOK_PRECISION": "auto", "HOOK_WORKERS": "2"}).splitlines()
    )
    assert auto["HOOK_PRECISION"] == f"auto (here: {here_precision()})  (environment)"
    assert auto["HOOK_WORKERS"] == "2  (environment)"  # given: nothing to resolve
    assert "`hook run` adds 127.0.0.1:8101" in bare["HOOK_CALLBACK_HOSTS"]


def here_precision() -> str:
    """int8 where both default models have their int8 builds (the set-up makes them)."""
    built = all(m.with_suffix(".int8.onnx").is_file() for m in DEFAULT_MODELS)
    return "int8" if built else "f32"


def test_failure_reports_are_off_by_default_and_their_url_is_checked_at_start_up() -> None:
    off = make_settings()
    assert (off.failure_url, off.failure_to_callback, off.report_attempts) == (None, False, 5)
    # the operator's own URL: allowed by being set, on a host HOOK_CALLBACK_HOSTS does not list
    on = make_settings(
        HOOK_FAILURE_URL=" http://10.1.2.3:9000/hooks/t0ken ",
        HOOK_FAILURE_TO_CALLBACK="1",
        HOOK_CALLBACK_HOSTS="camio.com",
    )
    assert on.failure_url == "http://10.1.2.3:9000/hooks/t0ken" and on.failure_to_callback
    for url, why in [
        ("ftp://ops/t0ken", "must use http or https"),
        ("https://u:t0ken@ops/", "must not carry credentials"),
        ("https:///t0ken", "has no valid host"),
        ("https://ops/t0ken here", "backslash, space or control"),
    ]:
        with pytest.raises(
            ConfigError, match=f"HOOK_FAILURE_URL=<hidden> is invalid: .*{why}"
        ) as info:
            make_settings(HOOK_FAILURE_URL=url)
        assert "t0ken" not in str(info.value)  # it may be a token: never shown
    with pytest.raises(ConfigError, match="HOOK_FAILURE_TO_CALLBACK='yes' is invalid"):
        make_settings(HOOK_FAILURE_TO_CALLBACK="yes")
