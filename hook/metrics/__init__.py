"""Metrics: the figures /metrics and `status` show, kept in the store so every process adds to them.

Owns the buffered recorder the web and the worker count with, and the Prometheus exposition
(`recorder`), and the per-callback-host figures (`hosts`).

May import: store, callbacks (the allowed hosts) (and the shared bottom).
"""
