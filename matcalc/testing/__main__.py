"""``python -m matcalc.testing N``: the same as ``python -m matcalc.fuzz N``."""
import sys

from .runner import main

sys.exit(main())
