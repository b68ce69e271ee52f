"""``python -m matcalc.fuzz N``: the fuzzer's entry point.  The fuzzer itself lives in
``matcalc.testing`` (generator, oracle, shrinker, runner); see its docstring."""
import sys

from matcalc.testing.runner import main

if __name__ == "__main__":
    sys.exit(main())
