"""The operator's command line (`python -m hook`, the `hook` console script), as rq keeps rq/cli/.

Nothing here serves requests or labels images: the `run` launcher, Camio's hooks API, the
`status` and `settings` reports and the `simulate` stand-in for Camio.
"""

from hook.cli.commands import main

__all__ = ["main"]
