"""Detection: images in, labeled boxes out; onnxruntime is loaded here and nowhere else.

Owns the model runtimes (`engines`: onnxruntime or OpenVINO, precisions, the engine registry),
a model's outputs decoded (`yolo`, `decoders`), one model as a detector (`detector`), several
fused (`fusion`, `ensemble`), large frames cut in tiles (`tiling`, `tiled`) and the labels'
score thresholds (`thresholds`). `detection` holds the light types (`Detection`, `Letterbox`,
the `Detects` protocol) that the rules, callbacks and worker use without loading a runtime.
Box and image math is pure numpy, Pillow and OpenCV (`pixels`: the letterbox's resize).

May import: nothing of hook but the shared bottom.
"""
