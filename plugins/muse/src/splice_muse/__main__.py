"""``python -m splice_muse curves``: MUSE's scalability and sustainability curves (see curves.py)."""

import sys

from .curves import main

if __name__ == "__main__":
    sys.exit(main())
