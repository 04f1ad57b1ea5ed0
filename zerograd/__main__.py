"""``python -m zerograd``: the same command line as the ``zerograd`` console script."""

import sys

from zerograd.cli import main

if __name__ == "__main__":
    sys.exit(main())
