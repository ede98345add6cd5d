"""Settings: every knob of the server, read once from the environment at the edge.

The table `SPECS` is the one place where names, defaults and meanings live; the README's settings
table is printed from it (`python -m hook settings`, hook.cli.settings_report) and a test keeps
the two in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hook.callbacks.hosts import operator_url
from hook.callbacks.outbound import parse_custom_headers
from hook.callbacks.signing import parse_secrets
from hook.config import values as value
from hook.config.values import MAKE_KEY
from hook.detect.registry import DEFAULT_ENGINE, ENGINES, PRECISIONS
from hook.detect.thresholds import Thresholds, parse_label_scores
from hook.detect.tiling import Tiling, parse_tiling
from hook.errors import ConfigError
from hook.retry import RetryPolicy

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout, or /opt/hook (models/ there)
DEFAULT_MODEL = PROJECT_DIR / "models" / "yolov3-tiny.onnx"
# The default detector: both models built by models/build.py, fused, nanodet-g weighing more;
# chosen by bench/accuracy.py on the repository's photo set (README, "Accuracy").
DEFAULT_MODELS = (DEFAULT_MODEL, PROJECT_DIR / "models" / "nanodet-g.onnx")
DEFAULT_WEIGHTS = (1.0, 1.5)
DEFAULT_SURE = (0.6, 0.55)  # a lone box this sure keeps its score (README, "Accuracy")


def default_weights(models: tuple[Path, ...]) -> tuple[float, ...]:
    """The chosen weights when HOOK_MODEL names the default pair (any spelling, any order)."""
    return _for_default_pair(models, DEFAULT_WEIGHTS)


def default_sure(models: tuple[Path, ...]) -> tuple[float, ...]:
    """The chosen sure scores when HOOK_MODEL names the default pair; else none."""
    return _for_default_pair(models, DEFAULT_SURE)


def _for_default_pair(models: tuple[Path, ...], values: tuple[float, ...]) -> tuple[float, ...]:
    """`values` in the order HOOK_MODEL names the default pair (any spelling), else ()."""
    chosen = {m.resolve(): v for m, v in zip(DEFAULT_MODELS, values, strict=True)}
    resolved = [m.resolve() for m in models]
    if sorted(resolved) != sorted(chosen):
        return ()
    return tuple(chosen[m] for m in resolved)


# People and vehicles far off score lower than close-ups; chosen on the camera-like frames.
DEFAULT_LABEL_SCORES = "person=0.3,bicycle=0.3,car=0.3,motorcycle=0.3,bus=0.3,truck=0.3"

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|_HEADERS$")


@dataclass(frozen=True)
class Spec:
    """One environment variable: its field, default (as text, None = unset) and meaning.

    A secret is never shown, not even by `settings --effective`.
    """

    env: str
    field: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    secret: bool = False

    @property
    def hidden(self) -> bool:
        """Never shown: marked secret, or named like one (so a new token is hidden too)."""
        return self.secret or bool(SECRET_NAME.search(self.env))


# fmt: off
SPECS: tuple[Spec, ...] = (
    Spec("HOOK_API_KEY", "api_key", value.api_key, None,
         "Required. The secret in the hook URL `/tasks/<api_key>`; 16+ URL-safe characters.",
         secret=True),
    Spec("HOOK_MONGO_URI", "mongo_uri", value.mongo_uri, None,
         "MongoDB to use. Unset: the embedded nx-27017 server is started on loopback."),
    Spec("HOOK_MONGO_DB", "mongo_db", value.db_name, "hook", "Database name."),
    Spec("HOOK_MONGO_TIMEOUT_MS", "mongo_timeout_ms", value.positive_int, "3000",
         "How long to wait for MongoDB to be reachable; when it is down, the web answers 503 "
         "after about this long (a hung server can take a few times longer)."),
    Spec("HOOK_DATA_DIR", "data_dir", value.a_path, "~/.local/share/hook",
         "Data of the embedded MongoDB (in `<dir>/mongo`)."),
    Spec("HOOK_EMBEDDED_PORT", "embedded_port", value.positive_int, "27027",
         "Loopback port of the embedded MongoDB."),
    Spec("HOOK_BIND", "bind", value.bind, "127.0.0.1:8000",
         "Address gunicorn listens on: `host:port`, `[v6]:port` or `unix:/path`."),
    Spec("HOOK_TLS_CERT", "tls_cert", value.optional_path, None,
         "PEM certificate (chain) for HTTPS; with HOOK_TLS_KEY, gunicorn serves https."),
    Spec("HOOK_TLS_KEY", "tls_key", value.optional_path, None, "PEM private key for HTTPS."),
    Spec("HOOK_WEB_WORKERS", "web_workers", value.positive_int, "2",
         "gunicorn worker processes started by `python -m hook run`."),
    Spec("HOOK_WORKERS", "workers", value.positive_int, "1",
         "worker.py processes started by `python -m hook run`."),
    Spec("HOOK_LEASE_SECONDS", "lease_seconds", value.positive_float, "60",
         "How long a claimed task stays reserved without a sign of life from its worker "
         "(workers renew it while they work); then another worker may take it."),
    Spec("HOOK_MAX_ATTEMPTS", "max_attempts", value.positive_int, "8",
         "Attempts at a task (first try included) before it fails for good."),
    Spec("HOOK_RETRY_BASE_SECONDS", "retry_base_seconds", value.positive_float, "2",
         "Retry delays: attempt n waits between half and all of this x 2^(n-1), at most 10 min."),
    Spec("HOOK_CALLBACK_TIMEOUT", "callback_timeout", value.positive_float, "10",
         "Seconds one delivery attempt may take in all, the callback's answer included."),
    Spec("HOOK_FAILURE_URL", "failure_url", operator_url, None,
         "Where tasks that fail for good are reported (see Failure reports); need not be in "
         "HOOK_CALLBACK_HOSTS. Unset: none. Hidden: it may hold a token.", secret=True),
    Spec("HOOK_FAILURE_TO_CALLBACK", "failure_to_callback", value.flag, "0",
         "1: also report a failure to the event's own callback_url (Camio does not document it)."),
    Spec("HOOK_REPORT_ATTEMPTS", "report_attempts", value.positive_int, "5",
         "Attempts at delivering one failure report (backoff as for callbacks), then it is kept "
         "as undeliverable with the task."),
    Spec("HOOK_RETENTION_HOURS", "retention_hours", value.positive_float, "168",
         "How long done and failed task records are kept."),
    Spec("HOOK_KEEP_PICTURES_HOURS", "keep_pictures_hours", value.non_negative_float, "24",
         "How long the annotated picture of each image (boxes and labels drawn, at most 1280 "
         "px) is kept; 0 makes none. They go sooner if their task does."),
    Spec("HOOK_CALLBACK_HOSTS", "callback_hosts", value.callback_hosts, "camio.com",
         "Hosts labels may be sent to, comma-separated; a name also allows its subdomains, "
         "an IP address only itself, an IP network (`10.1.0.0/16`) its addresses; "
         "`host:port` or `[v6]:port` allows that port only."),
    Spec("HOOK_SIGNING_SECRET", "signing_secrets", parse_secrets, None,
         "Signs every callback, Standard Webhooks style: `whsec_` + base64 of 24 to 64 random "
         "bytes; several, space-separated, each sign (for rotation). See Callback headers.",
         secret=True),
    Spec("HOOK_CALLBACK_HEADERS", "callback_headers", parse_custom_headers, None,
         "Headers added to every callback: a JSON object of name -> value, or a file holding "
         "one (e.g. an Authorization the receiver demands). Never shown or logged.", secret=True),
    Spec("HOOK_MAX_BODY", "max_body", value.positive_int, str(32 * 1024 * 1024),
         "Largest request body in bytes; larger ones get 413 unread."),
    Spec("HOOK_BODY_TIMEOUT", "body_timeout", value.positive_float, "15",
         "Seconds a client has to send the whole body, in all, before it gets 408 (request "
         "headers get 5 s)."),
    Spec("HOOK_MAX_IMAGES", "max_images", value.positive_int, "64", "Most images in one event."),
    Spec("HOOK_MAX_IMAGE_BYTES", "max_image_bytes", value.positive_int, str(8 * 1024 * 1024),
         "Largest image in bytes (camera frames are far smaller; MongoDB's limit is 16 MB)."),
    Spec("HOOK_MAX_IMAGE_PIXELS", "max_image_pixels", value.positive_int, "16777216",
         "Largest image (width x height; 4096 x 4096: 4K camera frames and 12 MP stills fit); "
         "larger ones are refused before decoding. Decoding the largest takes about 130 MB."),
    Spec("HOOK_MODEL", "models", value.paths, ",".join(str(m) for m in DEFAULT_MODELS),
         "The ONNX detector (YOLOv5, YOLOv8/YOLO11, YOLOv10/Ultralytics end-to-end, "
         "RT-DETR/D-FINE or TensorFlow SSD outputs, told apart by the outputs); labels from a "
         "`.names` file beside it or the model's `names` metadata. Several, comma-separated, "
         "run side by side and their boxes are fused. Default: the two models "
         "`models/build.py` builds, fused."),
    Spec("HOOK_MODEL_WEIGHTS", "model_weights", value.weights, None,
         "With several models: each one's weight in the fused score, comma-separated. A box "
         "only one model finds scores its score x its share of the weights. Unset: 1 for "
         "yolov3-tiny and 1.5 for nanodet-g when HOOK_MODEL names those two, equal otherwise."),
    Spec("HOOK_MODEL_SURE", "model_sure", value.fractions, None,
         "With several models: each one's score at which a box it alone finds keeps that score "
         "in the fusion, comma-separated; `none`: never. Unset: 0.6 for yolov3-tiny and 0.55 "
         "for nanodet-g when HOOK_MODEL names those two, none otherwise."),
    Spec("HOOK_MIN_SCORE", "min_score", value.fraction, "0.35",
         "Lowest detection score reported (of the fused score, with several models), for "
         "labels HOOK_LABEL_SCORES does not name."),
    Spec("HOOK_LABEL_SCORES", "label_scores", parse_label_scores, DEFAULT_LABEL_SCORES,
         "Lowest score reported per label, `label=score` comma-separated, in place of "
         "HOOK_MIN_SCORE for those labels (people and vehicles far off score lower than close "
         "ups); `none`: HOOK_MIN_SCORE for all. Labels a custom model lacks are left out of the "
         "default."),
    Spec("HOOK_TILES", "tiles", parse_tiling, "auto",
         "Large frames also looked at in overlapping tiles by the first model of HOOK_MODEL, so "
         "small distant objects are found: auto (frames of 1000 px or more, tiles of at most "
         "about 700 px, 6 at most), off, or a grid COLSxROWS for every frame."),
    Spec("HOOK_TILE_SCORE", "tile_score", value.fraction, "0.3",
         "Lowest score at which a tile's detection joins the frame's; the thresholds of "
         "HOOK_MIN_SCORE and HOOK_LABEL_SCORES then apply to it as to any other."),
    Spec("HOOK_IOU", "iou", value.fraction, "0.45",
         "Overlap (IoU) above which two boxes of one label count as the same object."),
    Spec("HOOK_CLASSES", "classes", value.csv_list, "",
         "Only report these labels, comma-separated (empty: all the model knows)."),
    Spec("HOOK_RULES", "rules", value.optional_path, None,
         "A TOML file of rules per camera (`[[camera]]` entries: labels, min_score, min_area, "
         "rename, ignore_zones, only_zones; see Rules per camera), read again when it changes. "
         "Unset: every camera reports every detection."),
    Spec("HOOK_DEVICE", "device", value.choice("cpu", "cuda", "auto"), "cpu",
         "Where inference runs: cpu; cuda (onnxruntime's CUDA provider, an error if absent or "
         "with HOOK_ENGINE=openvino); or auto (onnxruntime's CUDA, or OpenVINO's GPU, when "
         "present, else the CPU)."),
    Spec("HOOK_THREADS", "threads", value.non_negative_int, "0",
         "Inference threads per lane (0: one per lane when lanes are automatic, else the "
         "engine's default, one per core)."),
    Spec("HOOK_LANES", "lanes", value.non_negative_int, "0",
         "Detector lanes per worker process: threads of their own, each with its own model "
         "sessions, labeling different tasks side by side (0: one per core, each of one thread "
         "unless HOOK_THREADS says otherwise)."),
    Spec("HOOK_ENGINE", "engine", value.choice(*ENGINES), DEFAULT_ENGINE,
         "Inference engine for the same ONNX files: "
         + ", or ".join(info.about for info in ENGINES.values()) + "."),
    Spec("HOOK_PRECISION", "precision", value.choice("auto", *PRECISIONS), "f32",
         "Arithmetic of the models: f32, bf16 (HOOK_ENGINE=openvino on a CPU with AVX-512 BF16 "
         "or AMX) or int8 (each model's static int8 build beside it, <stem>.int8.onnx, which "
         "models/build.py int8 makes, calibrated on the repository's photo sets: about 0.7 of "
         "f32's time, two of 53 things fewer on camera frames). auto: int8 on a CPU when the "
         "builds are there (the set-up makes them), else f32."),
    Spec("HOOK_BATCH_IMAGES", "batch_images", value.non_negative_int, "0",
         "Most images of several tasks labeled in one model run (0: 32 with HOOK_DEVICE=cuda, "
         "else one task at a time, which is fastest on a CPU)."),
    Spec("HOOK_LOG_LEVEL", "log_level", value.log_level, "INFO", "Python logging level."),
)
# fmt: on
SECRET_FIELDS = frozenset(spec.field for spec in SPECS if spec.hidden)


@dataclass(frozen=True)
class Settings:
    """All settings as typed values. Build with `from_env()`: defaults live in SPECS only."""

    api_key: str
    mongo_uri: str | None
    mongo_db: str
    mongo_timeout_ms: int
    data_dir: Path
    embedded_port: int
    bind: str
    tls_cert: Path | None
    tls_key: Path | None
    web_workers: int
    workers: int
    lease_seconds: float
    max_attempts: int
    retry_base_seconds: float
    callback_timeout: float
    failure_url: str | None
    failure_to_callback: bool
    report_attempts: int
    retention_hours: float
    keep_pictures_hours: float
    callback_hosts: tuple[str, ...]
    signing_secrets: tuple[str, ...] | None
    callback_headers: dict[str, str] | None
    max_body: int
    body_timeout: float
    max_images: int
    max_image_pixels: int
    max_image_bytes: int
    models: tuple[Path, ...]
    model_weights: tuple[float, ...]
    model_sure: tuple[float, ...]
    min_score: float
    label_scores: dict[str, float]
    tiles: Tiling
    tile_score: float
    iou: float
    classes: tuple[str, ...]
    rules: Path | None
    device: str
    threads: int
    lanes: int
    engine: str
    precision: str
    batch_images: int
    log_level: str

    @property
    def thresholds(self) -> Thresholds:
        """HOOK_MIN_SCORE for every label, but those HOOK_LABEL_SCORES names."""
        return Thresholds(self.min_score, self.label_scores)

    @property
    def retry_policy(self) -> RetryPolicy:
        """How deliveries are retried: HOOK_RETRY_BASE_SECONDS, HOOK_MAX_ATTEMPTS."""
        return RetryPolicy(self.retry_base_seconds, self.max_attempts)

    @property
    def report_policy(self) -> RetryPolicy:
        """How failure reports are retried: the same backoff, HOOK_REPORT_ATTEMPTS."""
        return RetryPolicy(self.retry_base_seconds, self.report_attempts)

    def __repr__(self) -> str:  # the key must never reach a log line
        shown = ", ".join(
            f"{f.name}={'<hidden>' if f.name in SECRET_FIELDS else repr(getattr(self, f.name))}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_api_key: bool = True
    ) -> Settings:
        """Parse every HOOK_* variable; a missing or malformed one is a ConfigError naming it.

        Tools that never serve the hook (`status`) pass require_api_key=False.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SPECS:
            raw = env.get(spec.env)
            if raw is None or not raw.strip():  # set but blank counts as unset
                raw = spec.default
            if raw is None and spec.field == "api_key" and not require_api_key:
                values["api_key"] = ""
                continue
            if raw is None:
                if spec.field == "api_key":
                    raise ConfigError(
                        f"{spec.env} is not set: it is the secret in the hook URL. "
                        f"Make one with: {MAKE_KEY}"
                    )
                values[spec.field] = None
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if spec.hidden else repr(raw)
                raise ConfigError(f"{spec.env}={shown} is invalid: {exc}") from None
        if values["model_sure"] is None:
            values["model_sure"] = default_sure(values["models"])
        elif values["model_sure"] and (
            len(values["model_sure"]) != len(values["models"]) or len(values["models"]) == 1
        ):
            raise ConfigError(
                f"HOOK_MODEL_SURE has {len(values['model_sure'])} scores for "
                f"{len(values['models'])} models: give one per model of several, or none"
            )
        if values["model_weights"] is None:
            values["model_weights"] = default_weights(values["models"])
        elif len(values["models"]) == 1:
            raise ConfigError("HOOK_MODEL_WEIGHTS is for several models; HOOK_MODEL names one")
        if values["model_weights"] and len(values["model_weights"]) != len(values["models"]):
            raise ConfigError(
                f"HOOK_MODEL_WEIGHTS has {len(values['model_weights'])} weights for "
                f"{len(values['models'])} models: give one per model, or none"
            )
        if (values["tls_cert"] is None) != (values["tls_key"] is None):
            raise ConfigError("HOOK_TLS_CERT and HOOK_TLS_KEY go together: set both or neither")
        return cls(**values)
