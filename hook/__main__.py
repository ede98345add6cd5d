"""`python -m hook <command>`: the same command line as the `hook` console script (hook.cli)."""

import sys

from hook.cli import main

if __name__ == "__main__":
    sys.exit(main())
