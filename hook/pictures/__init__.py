"""Pictures: what the detector saw, drawn on the event's own image when someone looks.

    drawing   pure functions: an image with its detections drawn, as a JPEG a person can read
    gallery   a task's pictures: the one drawn before, or drawn now from the kept original
              and the stored labels (then kept for the next look)

Labeling draws and encodes nothing: the worker keeps the event's images for
HOOK_KEEP_PICTURES_HOURS after labeling, and the labels hold every box.

May import: store, intake (decoding), callbacks (the label format), detect (its light types)
(and the shared bottom).
"""
