"""The operator's command line (`python -m hook`, the `hook` console script), as rq keeps rq/cli/.

Nothing here serves requests or labels images: the `run` launcher, Camio's hooks API, the
`status` and `settings` reports and the `simulate` stand-in for Camio. The web and the worker
run as processes of their own (hook.cli.argv says how they are started), never imported here.

May import: config, detect, rules, callbacks, store, metrics, pictures (and the shared
bottom).
"""

from hook.cli.commands import main

__all__ = ["main"]
