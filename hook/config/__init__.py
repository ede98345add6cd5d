"""Configuration: the environment read once, at the edge, into one validated `Settings`.

Owns the settings table (every HOOK_* variable, its default, its parser and its help), the
parsers of setting values (`values`), `mongo` (the MongoDB client a process builds from
settings), `detectors` (the detector they name) and `lanes` (worker processes, lanes and
threads for the cores a machine has). The edges (hook.wsgi, hook.worker.main, hook.cli) read
settings and hand plain values down; nothing below reads the environment.

May import: detect, callbacks, store (and the shared bottom).
"""
