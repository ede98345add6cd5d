"""hook-install.sh rendered into a temporary root: config, units, upgrade in place, uninstall."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hook.config import lanes
from tests.procs import ROOT

SCRIPT = ROOT / "hook-install.sh"
UNITS = ("hook-web.service", "hook-worker@.service", "hook-mongo.service")


def install(root: Path, *args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), "--root", str(root), "--no-start", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def config(root: Path) -> dict[str, str]:
    lines = (root / "etc/default/hook").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_help_and_bad_options() -> None:
    shown = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0 and "--mongo-uri URI" in shown.stdout and "--purge" in shown.stdout
    bad = subprocess.run(
        ["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "unknown option: --frobnicate" in bad.stderr


def test_script_is_shellcheck_clean() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed")
    done = subprocess.run(
        ["shellcheck", str(SCRIPT), str(ROOT / "scripts/setup.sh"), str(ROOT / ".ci/run")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_renders_config_units_and_code(tmp_path: Path) -> None:
    done = install(tmp_path)
    assert done.returncode == 0, done.stderr
    conf = tmp_path / "etc/default/hook"
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    settings = config(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{48}", settings["HOOK_API_KEY"])
    assert settings["HOOK_MONGO_URI"] == "mongodb://127.0.0.1:27027/"
    # loopback until TLS is set up: the key is in the URL
    assert settings["HOOK_BIND"] == "127.0.0.1:8000" and int(settings["HOOK_WEB_WORKERS"]) >= 2
    assert "HOOK_TLS_CERT" not in settings
    cores = max(2, lanes.usable_cores())  # as the installer counts them (nproc, at least 2)
    assert int(settings["HOOK_WORKERS"]) == lanes.worker_processes(0, cores)
    assert "HOOK_THREADS" not in settings  # one-thread lanes by default
    assert settings["HOOK_API_KEY"] not in done.stdout  # the key is never printed
    # on loopback: Camio reaches it through a proxy; the health check is the loopback address
    assert "hook URL:  https://YOUR-PROXY-HOST/tasks/" in done.stdout
    assert "health:    curl http://127.0.0.1:8000/tasks/" in done.stdout
    assert '--callback-url "https://YOUR-PROXY-HOST/tasks/{key}"' in done.stdout
    assert settings["HOOK_PRECISION"] == "f32"
    assert "--callback-url" in done.stdout and "hook register" in done.stdout
    assert "It listens on 127.0.0.1:8000 only." in done.stdout
    assert "Caddy: 'hook.example.com { reverse_proxy 127.0.0.1:8000 }'" in done.stdout
    assert "The models run f32; the int8 builds are installed: HOOK_PRECISION=int8" in done.stdout
    assert (tmp_path / "opt/hook/docs/deploy.md").is_file()  # the README's links, on the server
    assert sorted(p.name for p in (tmp_path / "opt/hook/models").glob("*.int8.onnx")) == sorted(
        p.name for p in (ROOT / "models").glob("*.int8.onnx")
    )
    for unit in UNITS:
        text = (tmp_path / "etc/systemd/system" / unit).read_text()
        assert "User=hook" in text and "EnvironmentFile=/etc/default/hook" in text
        for key in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "Restart=on-failure",
        ):
            assert key in text, (unit, key)
        (exec_start,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
        assert exec_start.startswith("ExecStart=/opt/hook/.venv/bin/python ")  # no shell wrapper
    web = (tmp_path / "etc/systemd/system/hook-web.service").read_text()
    assert "ExecStart=/opt/hook/.venv/bin/python -m hook web" in web
    assert "Wants=hook-mongo.service" in web and "After=hook-mongo.service" in web
    worker = (tmp_path / "etc/systemd/system/hook-worker@.service").read_text()
    assert "ExecStart=/opt/hook/.venv/bin/python /opt/hook/worker.py" in worker
    assert "TimeoutStopSec=120" in worker
    assert "ExecReload=/bin/kill -HUP $MAINPID" in worker  # systemctl reload: the rules again
    for path in ("hook/web/app.py", "worker.py", "models/build.py", "requirements.txt"):
        assert (tmp_path / "opt/hook" / path).is_file()
    assert (tmp_path / "var/lib/hook").is_dir()


def test_external_mongo_has_no_mongo_unit(tmp_path: Path) -> None:
    uri = "mongodb://db1,db2,db3/?replicaSet=rs0"
    assert install(tmp_path, "--mongo-uri", uri).returncode == 0
    assert config(tmp_path)["HOOK_MONGO_URI"] == uri
    assert not (tmp_path / "etc/systemd/system/hook-mongo.service").exists()
    assert "hook-mongo" not in (tmp_path / "etc/systemd/system/hook-web.service").read_text()
    assert install(tmp_path, "--mongo-uri", "redis://x").returncode == 1


def test_second_run_upgrades_in_place_and_keeps_config_and_data(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    key = config(tmp_path)["HOOK_API_KEY"]
    (tmp_path / "var/lib/hook/mongo").mkdir()
    (tmp_path / "var/lib/hook/mongo/hook.db").write_text("data")
    (tmp_path / "opt/hook/hook/web/app.py").write_text("stale")
    (tmp_path / "opt/hook/hook/removed_module.py").write_text("old")
    again = install(tmp_path)
    assert again.returncode == 0 and "keeping the settings" in again.stdout
    assert config(tmp_path)["HOOK_API_KEY"] == key
    assert (tmp_path / "var/lib/hook/mongo/hook.db").read_text() == "data"
    installed = tmp_path / "opt/hook/hook/web/app.py"
    assert installed.read_text() == (ROOT / "hook/web/app.py").read_text()
    assert not (tmp_path / "opt/hook/hook/removed_module.py").exists()


def test_uninstall_keeps_data_unless_purged(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir()
    (wants / "hook-worker@3.service").symlink_to("/etc/systemd/system/hook-worker@.service")
    removed = install(tmp_path, "--uninstall")
    assert removed.returncode == 0 and "kept" in removed.stdout
    assert not (tmp_path / "opt/hook").exists()
    assert not any((tmp_path / "etc/systemd/system" / u).exists() for u in UNITS)
    assert list(wants.iterdir()) == []  # no enablement left pointing at a removed unit
    assert (tmp_path / "etc/default/hook").exists() and (tmp_path / "var/lib/hook").exists()
    assert install(tmp_path, "--uninstall", "--purge").returncode == 0
    assert not (tmp_path / "etc/default/hook").exists() and not (tmp_path / "var/lib/hook").exists()


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    assert install(tmp_path).returncode == 0
    # what verify resolves inside the root: the system's own units, and the venv's python
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    os.symlink("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system")
    venv_bin = tmp_path / "opt/hook/.venv/bin"
    venv_bin.mkdir(parents=True)
    shutil.copy("/bin/true", venv_bin / "python")  # verify only checks that it is executable
    (tmp_path / "bin").mkdir(exist_ok=True)
    shutil.copy("/bin/true", tmp_path / "bin/kill")  # the worker's ExecReload
    units = ["hook-web.service", "hook-worker@1.service", "hook-mongo.service"]
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", *units],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "hook" in line]
    assert done.returncode == 0, ours
    assert ours == [], ours


def test_next_steps_follow_the_configured_port(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    conf = tmp_path / "etc/default/hook"
    conf.write_text(conf.read_text().replace("HOOK_BIND=127.0.0.1:8000", "HOOK_BIND=0.0.0.0:9443"))
    again = install(tmp_path)
    assert ":9443/tasks/" in again.stdout and ":8000/" not in again.stdout
    assert "plain HTTP carries the key in clear: set HOOK_TLS_CERT" in again.stdout


def test_every_interface_only_with_tls_or_when_asked(tmp_path: Path) -> None:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_text("cert")
    key.write_text("key")
    tls = install(tmp_path / "tls", "--tls-cert", str(cert), "--tls-key", str(key))
    assert tls.returncode == 0, tls.stderr
    settings = config(tmp_path / "tls")
    assert settings["HOOK_BIND"] == "0.0.0.0:8000"
    assert (settings["HOOK_TLS_CERT"], settings["HOOK_TLS_KEY"]) == (str(cert), str(key))
    assert "hook URL:  https://" in tls.stdout and "reverse proxy" not in tls.stdout
    public = install(tmp_path / "public", "--public")
    assert public.returncode == 0 and config(tmp_path / "public")["HOOK_BIND"] == "0.0.0.0:8000"
    half = install(tmp_path / "half", "--tls-cert", str(cert))
    assert half.returncode == 1 and "--tls-cert and --tls-key go together" in half.stderr
    missing = install(tmp_path / "missing", "--tls-key", str(tmp_path / "nowhere.pem"))
    assert missing.returncode == 1 and "nowhere.pem: no such file" in missing.stderr


def test_a_checkout_without_int8_builds_stops_unless_f32_is_asked(tmp_path: Path) -> None:
    """A server installed from a fresh clone ran f32, about half the speed, without a word."""
    source = tmp_path / "checkout"
    (source / "models").mkdir(parents=True)
    for name in ("hook-install.sh", "worker.py", "pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("hook", "docs"):
        shutil.copytree(ROOT / folder, source / folder)
    for path in [*(ROOT / "models").glob("*.py"), ROOT / "models/NOTICE-nanodet"]:
        shutil.copy(path, source / "models" / path.name)
    stopped = install(tmp_path / "root", script=source / "hook-install.sh")
    assert stopped.returncode == 1 and "no int8 builds of the models" in stopped.stderr
    assert "bash scripts/setup.sh" in stopped.stderr and "--f32" in stopped.stderr
    assert not (tmp_path / "root/opt/hook").exists()  # said before anything changed
    f32 = install(tmp_path / "root", "--f32", script=source / "hook-install.sh")
    assert f32.returncode == 0, f32.stderr
    assert "No int8 builds installed (--f32): the models run f32." in f32.stdout
