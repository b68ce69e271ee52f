"""``python -m matcalc.testing N``: the same as ``python -m matcalc.fuzz N``."""
import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
