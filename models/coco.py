"""COCO 2017's label names, which both default models' class ids follow, and darknet's spelling
of six of them: labels go out as COCO names, what a person says and what the other models use,
so fused models agree on every label."""

from __future__ import annotations

from hook.errors import BuildError

_NAMES = """
    person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light,
    fire hydrant, stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant,
    bear, zebra, giraffe, backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard,
    sports ball, kite, baseball bat, baseball glove, skateboard, surfboard, tennis racket,
    bottle, wine glass, cup, fork, knife, spoon, bowl, banana, apple, sandwich, orange,
    broccoli, carrot, hot dog, pizza, donut, cake, chair, couch, potted plant, bed,
    dining table, toilet, tv, laptop, mouse, remote, keyboard, cell phone, microwave, oven,
    toaster, sink, refrigerator, book, clock, vase, scissors, teddy bear, hair drier,
    toothbrush
"""
COCO_NAMES = tuple(name.strip() for name in _NAMES.split(",") if name.strip())
# darknet's coco.names spells six labels the VOC way; labels go out as COCO names, which is
# what a person says and what the other models use, so fused models agree on every label.
DARKNET_SPELLING = {
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "couch",
    "pottedplant": "potted plant",
    "diningtable": "dining table",
    "tvmonitor": "tv",
}
COCO_NAMES_SHA256 = "bd17f1ee35d5f3c862a4894605855abbb9dda4b0621fdb0ac4c2c8c7bb7e730a"


def coco_names(darknet: bytes | None = None) -> bytes:
    """The labels file both models get; darknet's coco.names must say the same, respelled."""
    names = "\n".join(COCO_NAMES).encode() + b"\n"
    if darknet is not None:
        respelled = [
            DARKNET_SPELLING.get(n.strip(), n.strip()) for n in darknet.decode().split("\n")
        ]
        if [n for n in respelled if n] != list(COCO_NAMES):
            raise BuildError("darknet's coco.names do not match COCO_NAMES in models/coco.py")
    return names
