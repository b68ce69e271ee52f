"""The passes over a function's IR, each in its own module and each linear (or
n log n) in the size of the function: common subexpressions (``cse``), inlining of
single-use temporaries (``inline``), dead stores (``dead``), negations folded
(``negations``), renumbering of the temporaries (``renumber``) and the ``del`` of
matrices after their last use (``free``).
``run`` applies them in that order, each where the options have it on."""
from . import cse, dead, free, inline, negations, renumber


def run(fn, opts, target):
    """The passes over an ir.Function, as the options have them."""
    if opts.enabled("cse"):
        fn = cse.run(fn)
    if opts.enabled("dead_stores"):
        fn = dead.run(fn)
    if target == "numpy" and opts.enabled("inline"):
        fn = inline.run(fn)
    if opts.enabled("fold_negations"):
        fn = negations.run(fn)
    fn = renumber.run(fn)
    if opts.enabled("free"):
        fn = free.run(fn)
    return fn
