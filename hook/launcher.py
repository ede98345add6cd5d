"""Moved to hook.cli: kept only while tests/procs.py and bench/stack.py import it from here."""

from hook.cli.argv import gunicorn_argv, worker_argv

__all__ = ["gunicorn_argv", "worker_argv"]
