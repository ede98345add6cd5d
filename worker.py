"""`python worker.py`: the worker's entry point, kept where the systemd units and docs start it.

Everything it does is hook.worker.main's (settings read once, the worker composed and run,
signals acted on).
"""

import sys

from hook.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
