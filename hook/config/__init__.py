"""Configuration: the environment read once, at the edge, into one validated `Settings`.

Owns the settings table (every HOOK_* variable, its default, its parser and its help), the
parsers of setting values (`values`), and `mongo` (the MongoDB client a process builds from
settings). The edges (hook.wsgi, hook.worker.main, hook.cli) read settings and hand plain
values down; nothing below reads the environment.

May import: detect, callbacks, store (and the shared bottom).
"""
