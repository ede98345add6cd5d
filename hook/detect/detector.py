"""Detector: one object detector's model in an engine (hook.detect.engines), and `detect(image)`.

Everything about the model is read from the model itself (input name, shape, layout, dtype,
dynamic batch, output layout, a second `orig_target_sizes` input) or from settings (thresholds,
classes, engine, precision, device); the math lives in hook.detect.yolo as pure functions. Output
layouts: YOLOv5, YOLOv8/YOLO11, end-to-end [B, N, 6] (YOLOv10, Ultralytics end2end), split
boxes/scores/labels (RT-DETR, D-FINE) and TF's SSD-style four outputs; see yolo.plan_outputs
for how they are told apart and yolo.label_offset for how class ids map to the label file.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hook.detect import engines, yolo
from hook.detect.detection import Detection, Detects
from hook.detect.pixels import Picture, Pixels
from hook.detect.registry import DEFAULT_DEVICE, DEFAULT_ENGINE, DEFAULT_PRECISION
from hook.detect.thresholds import FLOOR, NMS_IOU
from hook.errors import ConfigError

log = logging.getLogger(__name__)

DYNAMIC_SIZE = 640  # canvas for models whose input height/width are symbolic (Ultralytics')
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
SIZE_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}


MAX_RUN = 8  # canvases in one engine run at most: memory bounded, CPU speed the same


class Detector(Detects):
    """Owns one engine (`engine.run`, onnxruntime's session.run contract); one lane's own."""

    def __init__(
        self,
        model: Path,
        *,
        min_score: float = FLOOR,  # candidates kept; what is reported is the thresholds'
        iou: float = NMS_IOU,
        classes: tuple[str, ...] = (),
        device: str = DEFAULT_DEVICE,
        threads: int = 0,
        engine: str = DEFAULT_ENGINE,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        model = Path(model)
        if not model.is_file():
            raise ConfigError(
                f"model {model} does not exist; build the default models with: "
                ".venv/bin/python models/build.py all (or set HOOK_MODEL)"
            )
        started = time.perf_counter()
        # the labels file and the log name are the model's; int8 loads its build beside it
        self.engine = engines.load(
            model, engine=engine, precision=precision, device=device, threads=threads
        )
        self.model = model
        self.min_score, self.iou = min_score, iou
        self._read_input()
        self.sizes_input = _sizes_input(self.engine.inputs)
        self.labels = _labels(model, self.engine.metadata)
        self.class_mask = _class_mask(self.labels, classes)
        self.layout, self.output_names = self._warm_up()
        self.id_offset = yolo.label_offset(self.layout, self.labels)
        self.load_seconds = time.perf_counter() - started
        log.info(
            "detector %s: %s layout (%s), input %s %dx%d%s%s, %d labels, %s, ready in %.2f s",
            model.name,
            self.layout.value,
            ", ".join(self.output_names),
            "NCHW" if self.channels_first else "NHWC",
            *self.canvas,
            ", dynamic batch" if self.batchable else "",
            f", canvas size fed to {self.sizes_input[0]}" if self.sizes_input else "",
            len(self.labels),
            self.engine.description,
            self.load_seconds,
        )

    def _read_input(self) -> None:
        first = self.engine.inputs[0]
        shape = list(first.shape)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ConfigError(f"model input {first.name} has shape {shape}, not an RGB image batch")
        self.input_name = first.name
        self.channels_first = shape[1] == 3
        h, w = (shape[2], shape[3]) if self.channels_first else (shape[1], shape[2])
        self.canvas = (
            w if isinstance(w, int) else DYNAMIC_SIZE,
            h if isinstance(h, int) else DYNAMIC_SIZE,
        )
        self.batchable = not isinstance(shape[0], int)
        if first.type not in ORT_TYPES:
            raise ConfigError(f"model input type {first.type} is not supported")
        self.dtype = np.dtype(ORT_TYPES[first.type])

    def _warm_up(self) -> tuple[yolo.Layout, tuple[str, ...]]:
        """One inference on a blank canvas: pays the first-run cost and reveals the layout.

        Returns the layout and the names of the outputs it reads, in its decoder's order.
        """
        blank = np.full((self.canvas[1], self.canvas[0], 3), yolo.PAD_GRAY, dtype=np.uint8)
        tensor = yolo.to_tensor([blank], channels_first=self.channels_first, dtype=self.dtype)
        outputs = self.engine.run(None, self.feeds(tensor))
        names = list(self.engine.outputs)
        try:
            plan = yolo.plan_outputs(
                names, outputs, len(self.labels), end2end=_marked_end2end(self.engine.metadata)
            )
        except ValueError as exc:
            raise ConfigError(f"model {self.model}: {exc}") from None
        return plan.layout, tuple(names[i] for i in plan.outputs)

    # -- inference --------------------------------------------------------------------------
    def to_canvas(
        self, image: Picture, source: tuple[int, int] | None = None
    ) -> tuple[Pixels, yolo.Letterbox]:
        """Letterbox onto the canvas; `source` is the original size when `image` is reduced."""
        return yolo.letterbox(image, self.canvas, source)

    def feeds(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """The engine's inputs for an image batch: the images, and the canvas size if asked.

        RT-DETR/D-FINE exports scale their boxes by `orig_target_sizes` (w, h); fed the canvas,
        they answer in canvas pixels like every other layout, and un-letterboxing follows.
        """
        feeds = {self.input_name: tensor}
        if self.sizes_input:
            name, dtype = self.sizes_input
            feeds[name] = np.tile(np.array(self.canvas, dtype=dtype), (len(tensor), 1))
        return feeds

    def infer(self, tensor: np.ndarray, *, release: bool = False) -> list[tuple[np.ndarray, ...]]:
        """One engine run on a batch tensor -> per image, the outputs its layout reads."""
        feeds = self.feeds(tensor)
        return yolo.per_image(self.engine.run(list(self.output_names), feeds, release=release))

    def run(self, canvases: list[Pixels]) -> list[tuple[np.ndarray, ...]]:
        """Model outputs per letterboxed canvas, in batches of at most MAX_RUN when the model
        allows it (one at a time when not): a run's memory grows with its images, and an
        event of 64 large frames in tiles is 448 canvases (one run of them all took a worker
        past 24 GB). After several batches the last one gives the engine's extra working memory
        back, so one large event does not leave the worker large."""
        size = MAX_RUN if self.batchable else 1
        starts = range(0, len(canvases), size)
        return [
            out
            for at in starts
            for out in self.infer(
                yolo.to_tensor(
                    canvases[at : at + size], channels_first=self.channels_first, dtype=self.dtype
                ),
                release=len(starts) > 1 and at == starts[-1],
            )
        ]

    def postprocess(self, output: Sequence[np.ndarray], box: yolo.Letterbox) -> list[Detection]:
        """One image's outputs (an item of `run`) -> detections in original-image pixels."""
        boxes, scores, class_ids = yolo.decode_outputs(
            output,
            self.layout,
            canvas=self.canvas,
            min_score=self.min_score,
            classes=len(self.labels),
            class_mask=self.class_mask,
            id_offset=self.id_offset,
            pixels=self.sizes_input is not None,
        )
        keep = yolo.nms(boxes, scores, class_ids, self.iou)
        mapped = yolo.unletterbox(boxes[keep], box)
        return [
            Detection(
                self.labels[int(c)], float(s), (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            )
            for b, s, c in zip(mapped, scores[keep], class_ids[keep], strict=True)
        ]


def _sizes_input(inputs: Sequence[engines.Port]) -> tuple[str, np.dtype] | None:
    """A second input [B, 2] (RT-DETR/D-FINE's orig_target_sizes), or None; others refused."""
    extra = inputs[1:]
    if not extra:
        return None
    first = extra[0]
    if (
        len(extra) > 1
        or len(first.shape) != 2
        or first.shape[1] != 2
        or (first.type not in SIZE_TYPES)
    ):
        listed = ", ".join(f"{i.name} {list(i.shape)} {i.type}" for i in extra)
        raise ConfigError(
            f"model inputs beyond the image are not understood: {listed}; the only one accepted "
            "is a target size [B, 2] (RT-DETR/D-FINE orig_target_sizes), fed the canvas (w, h)"
        )
    return first.name, np.dtype(SIZE_TYPES[first.type])


def _marked_end2end(meta: dict[str, str]) -> bool:
    """Ultralytics marks end-to-end exports ([B, N, 6] boxes, score, class) in metadata.

    `end2end: True` (YOLOv10, YOLO26) or `args` with `nms: True` (exported with NMS), the keys
    Ultralytics' own AutoBackend reads; the shape alone is ambiguous (yolo.plan_outputs).
    """
    if meta.get("end2end", "").strip().lower() == "true":
        return True
    try:
        args = ast.literal_eval(meta.get("args", "{}"))
    except (ValueError, SyntaxError):
        return False
    return isinstance(args, dict) and bool(args.get("nms"))


def _labels(model: Path, meta: dict[str, str]) -> list[str]:
    """Label names: a .names/.txt file beside the model, else the `names` metadata."""
    for candidate in (model.with_suffix(".names"), model.with_suffix(".txt")):
        if candidate.is_file():
            names = [line.strip() for line in candidate.read_text().splitlines()]
            return [name for name in names if name]
    raw = meta.get("names")
    if raw:
        parsed: object
        try:
            parsed = ast.literal_eval(raw)  # Ultralytics: "{0: 'person', 1: 'bicycle', ...}"
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, dict):
            return [str(parsed[k]) for k in sorted(parsed)]
        if isinstance(parsed, list):
            return [str(n) for n in parsed]
    raise ConfigError(
        f"model {model} has no label names: put one name per line in "
        f"{model.with_suffix('.names')}, or use a model with `names` metadata"
    )


def _class_mask(labels: list[str], classes: tuple[str, ...]) -> np.ndarray | None:
    """1 for each label to report, 0 for the rest and for placeholders (`???`, `background`)."""
    placeholders = [i for i, label in enumerate(labels) if yolo.is_placeholder(label)]
    if not classes and not placeholders:
        return None
    known = {label.lower(): i for i, label in enumerate(labels)}
    unknown = [c for c in classes if c.lower() not in known]
    if unknown:
        raise ConfigError(
            f"HOOK_CLASSES names labels the model does not know: {', '.join(unknown)}"
        )
    mask = np.zeros(len(labels), dtype=np.float32) if classes else np.ones(len(labels), np.float32)
    mask[[known[c.lower()] for c in classes]] = 1.0
    mask[placeholders] = 0.0
    return mask
