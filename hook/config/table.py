"""The settings table: every HOOK_* variable, its field, parser, default and meaning.

`SPECS` is the one place where names, defaults and meanings live; `Settings.from_env`
(hook.config.settings) reads the environment by it, the settings table of docs/configuration.md
is printed from it (`python -m hook settings`, hook.cli.settings_report) and a test keeps the two
in step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hook.callbacks.hosts import operator_url
from hook.callbacks.outbound import parse_custom_headers
from hook.callbacks.signing import parse_secrets
from hook.config import values as value
from hook.detect.registry import (
    DEFAULT_DEVICE,
    DEFAULT_ENGINE,
    DEFAULT_PRECISION,
    DEVICES,
    ENGINES,
    PRECISIONS,
)
from hook.detect.thresholds import NMS_IOU, parse_label_scores
from hook.detect.tiling import parse_tiling
from hook.retry import CAP_SECONDS

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout, or /opt/hook (models/ there)
DEFAULT_MODEL = PROJECT_DIR / "models" / "yolov3-tiny.onnx"
SHARED_DATA_DIR = Path("~/.local/share/hook")
# The default detector: both models built by models/build.py, fused, nanodet-g weighing more;
# chosen by bench/accuracy.py on the repository's photo set (docs/accuracy.md).
DEFAULT_MODELS = (DEFAULT_MODEL, PROJECT_DIR / "models" / "nanodet-g.onnx")
# People and vehicles far off score lower than close-ups; chosen on the camera-like frames.
DEFAULT_LABEL_SCORES = "person=0.3,bicycle=0.3,car=0.3,motorcycle=0.3,bus=0.3,truck=0.3"

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|_HEADERS$")


def data_dir(raw: str, project: Path = PROJECT_DIR) -> Path:
    """HOOK_DATA_DIR as a path: `auto` is the checkout's own `data/` when hook runs from a git
    checkout (each its own embedded MongoDB and wake-up ring), else ~/.local/share/hook."""
    if raw.strip() != "auto":
        return value.a_path(raw)
    return project / "data" if (project / ".git").exists() else SHARED_DATA_DIR.expanduser()


@dataclass(frozen=True)
class Spec:
    """One environment variable: its field, default (as text, None = unset) and meaning.

    A secret is never shown, not even by `settings --effective`.
    """

    env: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    secret: bool = False
    named: str = ""  # the Settings field, when not the variable's own name (HOOK_X_Y: x_y)

    @property
    def field(self) -> str:
        return self.named or self.env.removeprefix("HOOK_").lower()

    @property
    def hidden(self) -> bool:
        """Never shown: marked secret, or named like one (so a new token is hidden too)."""
        return self.secret or bool(SECRET_NAME.search(self.env))


SPECS: tuple[Spec, ...] = (
    Spec(
        "HOOK_API_KEY",
        value.api_key,
        None,
        "Required. The secret in the hook URL `/tasks/<api_key>`; 16+ URL-safe characters.",
        secret=True,
    ),
    Spec(
        "HOOK_VIEW_KEY",
        value.view_keys,
        "",
        "Keys that only look: the page, the listing, results, pictures and each camera's latest "
        "picture open with `/tasks/<view_key>/...`, and a POST of events with one is refused "
        "(403). Share these, never HOOK_API_KEY. Several, comma-separated, to rotate one: add "
        "the new, hand it out, drop the old. Each as HOOK_API_KEY's form.",
        secret=True,
        named="view_keys",
    ),
    Spec(
        "HOOK_MONGO_URI",
        value.mongo_uri,
        None,
        "MongoDB to use. Unset: the embedded nx-27017 server is started on loopback.",
    ),
    Spec("HOOK_MONGO_DB", value.db_name, "hook", "Database name."),
    Spec(
        "HOOK_MONGO_TIMEOUT_MS",
        value.positive_int,
        "3000",
        "How long to wait for MongoDB to be reachable; when it is down, the web answers 503 "
        "after about this long (a hung server can take a few times longer).",
    ),
    Spec(
        "HOOK_DATA_DIR",
        data_dir,
        "auto",
        "Data of the embedded MongoDB (in `<dir>/mongo`) and the workers' wake-up sockets. "
        "auto: `data/` in a git checkout (two checkouts never share a queue), else "
        "~/.local/share/hook.",
    ),
    Spec(
        "HOOK_EMBEDDED_PORT",
        value.positive_int,
        "27027",
        "Loopback port of the embedded MongoDB.",
    ),
    Spec(
        "HOOK_BIND",
        value.bind,
        "127.0.0.1:8000",
        "Address gunicorn listens on: `host:port`, `[v6]:port` or `unix:/path`.",
    ),
    Spec(
        "HOOK_TLS_CERT",
        value.optional_path,
        None,
        "PEM certificate (chain) for HTTPS; with HOOK_TLS_KEY, gunicorn serves https.",
    ),
    Spec("HOOK_TLS_KEY", value.optional_path, None, "PEM private key for HTTPS."),
    Spec(
        "HOOK_WEB_WORKERS",
        value.positive_int,
        "2",
        "gunicorn worker processes started by `hook run`.",
    ),
    Spec(
        "HOOK_WORKERS",
        value.non_negative_int,
        "0",
        "worker.py processes on this machine, started by `hook run` (and the "
        "installer's hook-worker@N units); each labels on its share of the cores (0: one per "
        "4 cores, at least one; one with a GPU).",
    ),
    Spec(
        "HOOK_LEASE_SECONDS",
        value.positive_float,
        "60",
        "How long a claimed task stays reserved without a sign of life from its worker "
        "(workers renew it while they work); then another worker may take it.",
    ),
    Spec(
        "HOOK_MAX_ATTEMPTS",
        value.positive_int,
        "8",
        "Attempts at a task (first try included) before it fails for good.",
    ),
    Spec(
        "HOOK_RETRY_BASE_SECONDS",
        value.positive_float,
        "2",
        "Retry delays: attempt n waits between half and all of this x 2^(n-1), "
        f"at most {CAP_SECONDS / 60:g} min.",
    ),
    Spec(
        "HOOK_CALLBACK_TIMEOUT",
        value.positive_float,
        "10",
        "Seconds one delivery attempt may take in all, from connect to the last byte of the "
        "callback's answer (a status line or headers sent a byte at a time included).",
    ),
    Spec(
        "HOOK_FAILURE_URL",
        operator_url,
        None,
        "Where tasks that fail for good are reported (see Failure reports); need not be in "
        "HOOK_CALLBACK_HOSTS. Unset: none. Hidden: it may hold a token.",
        secret=True,
    ),
    Spec(
        "HOOK_FAILURE_TO_CALLBACK",
        value.flag,
        "0",
        "1: also report a failure to the event's own callback_url (Camio does not document it).",
    ),
    Spec(
        "HOOK_REPORT_ATTEMPTS",
        value.positive_int,
        "5",
        "Attempts at delivering one failure report (backoff as for callbacks), then it is kept "
        "as undeliverable with the task.",
    ),
    Spec(
        "HOOK_RETENTION_HOURS",
        value.positive_float,
        "168",
        "How long done and failed task records are kept.",
    ),
    Spec(
        "HOOK_KEEP_PICTURES_HOURS",
        value.non_negative_float,
        "24",
        "How long after labeling an event's images are kept, so its annotated pictures (boxes "
        "and labels drawn, at most 1280 px) can be drawn when someone looks; 0 keeps none and "
        "shows no pictures. They go sooner if their task does.",
    ),
    Spec(
        "HOOK_CALLBACK_HOSTS",
        value.callback_hosts,
        "camio.com",
        "Hosts labels may be sent to, comma-separated; a name also allows its subdomains, "
        "an IP address only itself, an IP network (`10.1.0.0/16`) its addresses; "
        "`host:port` or `[v6]:port` allows that port only.",
    ),
    Spec(
        "HOOK_SIGNING_SECRET",
        parse_secrets,
        None,
        "Signs every callback, Standard Webhooks style: `whsec_` + base64 of 24 to 64 random "
        "bytes; several, space-separated, each sign (for rotation). See Callback headers.",
        secret=True,
        named="signing_secrets",
    ),
    Spec(
        "HOOK_CALLBACK_HEADERS",
        parse_custom_headers,
        None,
        "Headers added to every callback: a JSON object of name -> value, or a file holding "
        "one (e.g. an Authorization the receiver demands). Never shown or logged.",
        secret=True,
    ),
    Spec(
        "HOOK_MAX_BODY",
        value.positive_int,
        str(32 * 1024 * 1024),
        "Largest request body in bytes; larger ones get 413 unread.",
    ),
    Spec(
        "HOOK_BODY_TIMEOUT",
        value.positive_float,
        "15",
        "Seconds a client has to send the whole body, in all, before it gets 408 (request "
        "headers get 5 s).",
    ),
    Spec("HOOK_MAX_IMAGES", value.positive_int, "64", "Most images in one event."),
    Spec(
        "HOOK_MAX_IMAGE_BYTES",
        value.positive_int,
        str(8 * 1024 * 1024),
        "Largest image in bytes (camera frames are far smaller; MongoDB's limit is 16 MB).",
    ),
    Spec(
        "HOOK_MAX_IMAGE_PIXELS",
        value.positive_int,
        "16777216",
        "Largest image (width x height; 4096 x 4096: 4K camera frames and 12 MP stills fit); "
        "larger ones are refused before decoding. Decoding the largest takes about 90 MB.",
    ),
    Spec(
        "HOOK_MODEL",
        value.paths,
        ",".join(str(m) for m in DEFAULT_MODELS),
        "The ONNX detector (YOLOv5, YOLOv8/YOLO11, YOLOv10/Ultralytics end-to-end, "
        "RT-DETR/D-FINE or TensorFlow SSD outputs, told apart by the outputs); labels from a "
        "`.names` file beside it or the model's `names` metadata. Several, comma-separated, "
        "run side by side and their boxes are fused. Default: the two models "
        "`models/build.py` builds, fused.",
        named="models",
    ),
    Spec(
        "HOOK_MODEL_WEIGHTS",
        value.weights,
        None,
        "With several models: each one's weight in the fused score, comma-separated. A box "
        "only one model finds scores its score x its share of the weights. Unset: 1 for "
        "yolov3-tiny and 1.5 for nanodet-g when HOOK_MODEL names those two, equal otherwise.",
    ),
    Spec(
        "HOOK_MODEL_SURE",
        value.fractions,
        None,
        "With several models: each one's score at which a box it alone finds keeps that score "
        "in the fusion, comma-separated; `none`: never. Unset: 0.6 for yolov3-tiny and 0.55 "
        "for nanodet-g when HOOK_MODEL names those two, none otherwise.",
    ),
    Spec(
        "HOOK_MIN_SCORE",
        value.fraction,
        "0.35",
        "Lowest detection score reported (of the fused score, with several models), for "
        "labels HOOK_LABEL_SCORES does not name.",
    ),
    Spec(
        "HOOK_LABEL_SCORES",
        parse_label_scores,
        DEFAULT_LABEL_SCORES,
        "Lowest score reported per label, `label=score` comma-separated, in place of "
        "HOOK_MIN_SCORE for those labels (people and vehicles far off score lower than close "
        "ups); `none`: HOOK_MIN_SCORE for all. Labels a custom model lacks are left out of the "
        "default.",
    ),
    Spec(
        "HOOK_TILES",
        parse_tiling,
        "auto",
        "Large frames also looked at in overlapping tiles by the first model of HOOK_MODEL, so "
        "small distant objects are found: auto (frames of 1000 px or more, tiles of at most "
        "about 700 px, 6 at most), off, or a grid COLSxROWS for every frame.",
    ),
    Spec(
        "HOOK_TILE_SCORE",
        value.fraction,
        "0.3",
        "Lowest score at which a tile's detection joins the frame's; the thresholds of "
        "HOOK_MIN_SCORE and HOOK_LABEL_SCORES then apply to it as to any other.",
    ),
    Spec(
        "HOOK_IOU",
        value.fraction,
        str(NMS_IOU),
        "Overlap (IoU) above which two boxes of one label count as the same object.",
    ),
    Spec(
        "HOOK_CLASSES",
        value.csv_list,
        "",
        "Only report these labels, comma-separated (empty: all the model knows).",
    ),
    Spec(
        "HOOK_RULES",
        value.optional_path,
        None,
        "A TOML file of rules per camera (`[[camera]]` entries: labels, min_score, min_area, "
        "rename, ignore_zones, only_zones; see Rules per camera), read again when it changes. "
        "Unset: every camera reports every detection.",
    ),
    Spec(
        "HOOK_DEVICE",
        value.choice(*DEVICES),
        DEFAULT_DEVICE,
        "Where inference runs: cpu; cuda (onnxruntime's CUDA provider, an error if absent or "
        "with HOOK_ENGINE=openvino); or auto (onnxruntime's CUDA, or OpenVINO's GPU, when "
        "present, else the CPU).",
    ),
    Spec(
        "HOOK_THREADS",
        value.non_negative_int,
        "0",
        "Inference threads per lane (0: one per lane when lanes are automatic, else the "
        "engine's default, one per core).",
    ),
    Spec(
        "HOOK_LANES",
        value.non_negative_int,
        "0",
        "Detector lanes per worker process: threads of their own, each with its own model "
        "sessions, labeling different tasks side by side (0: one per core, each of one thread "
        "unless HOOK_THREADS says otherwise).",
    ),
    Spec(
        "HOOK_ENGINE",
        value.choice(*ENGINES),
        DEFAULT_ENGINE,
        "Inference engine for the same ONNX files: "
        + ", or ".join(
            f"{name} ({'the default; ' if name == DEFAULT_ENGINE else ''}{info.about})"
            for name, info in ENGINES.items()
        )
        + ".",
    ),
    Spec(
        "HOOK_PRECISION",
        value.choice("auto", *PRECISIONS),
        DEFAULT_PRECISION,
        "Arithmetic of the models: f32, bf16 (HOOK_ENGINE=openvino on a CPU with AVX-512 BF16 "
        "or AMX) or int8 (each model's static int8 build beside it, <stem>.int8.onnx, which "
        "models/build.py int8 makes, calibrated on the repository's photo sets: about 0.7 of "
        "f32's time, as many things found on camera frames, one fewer on each photo set). "
        "auto: int8 on a CPU when the builds are there (the set-up makes them), else f32.",
    ),
    Spec(
        "HOOK_BATCH_IMAGES",
        value.non_negative_int,
        "0",
        "Most images of several tasks labeled in one model run (0: 32 with HOOK_DEVICE=cuda, "
        "else one task at a time, which is fastest on a CPU).",
    ),
    Spec("HOOK_LOG_LEVEL", value.log_level, "INFO", "Python logging level."),
)
SECRET_FIELDS = frozenset(spec.field for spec in SPECS if spec.hidden)
