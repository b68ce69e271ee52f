"""The fuzzer (not part of the engine: nothing in matcalc imports this package):
random well-typed expressions, each derivative checked against finite
differences.

    python -m matcalc.fuzz N [--seed S] [--depth D] [--jobs J] [-v] [--save FILE]
                             [--no-shrink] [--show I]

For each of N random examples the generator draws a shape-typed expression over the
whole input language (CONTRACT.md §1), random kinds for its symbols, a variable (a
scalar, a vector or a matrix; plain, symmetric, spd or diagonal) and an operation
(``diff`` or, for a scalar f, ``hessian``).  The example is *correct* when

* the engine's derivative has the right shape, is finite, and agrees with central
  finite differences of f (evaluated by ``matcalc.evaluate``) along a random direction
  in the variable's own space (symmetric for symmetric/spd, diagonal for diagonal);
* its printed form, read back by ``matcalc.evaluate(str(d), values, symbols=d.symbols)``,
  gives the same numbers, and ``d.latex()`` does not fail;
* f itself evaluates to what the generator meant (this module has its own NumPy
  semantics for the trees it builds) and ``parse(str(parse(text)))`` evaluates equal.

Then a *new user* checks it again: sizes are drawn afresh for every symbol, subject only
to what the expression itself requires (read from this module's own tree, never from
``matcalc.shapes``: ``vec(A)ᵀ vec(B)`` needs as many entries in A as in B, not one
shape; declared sizes stay), with values suited to them, and ``matcalc.evaluate`` and
``d.evaluate`` must accept them and give right answers that read back.

Besides the whole language, the generator draws the classes of issue 10: vec pairings
through ``K(m,n)`` and ``P ⊗ Q`` with declared non-square sizes and either shape of the
variable; elementwise functions of diagonal, symmetric and plain square symbols read on
the diagonal (``tr(log(D))``) or whole (``sum(abs(D))``), with zero entries where the
function allows them; the engine's own size names (n, m, p, ...) written by the user in
``I(n)``, ``K(m,n)`` and some declarations (mode D); huge and tiny constants (``1e300``,
``1e-300``, ``exp(700)``) that cancel inside f or scale it.

It is *unsupported* when the engine raises ``UnsupportedError``; otherwise a failure is
*wrong* (a wrong value, shape or printed form of f), *crashed* (an exception outside the
``MatcalcError`` family, a ``ParseError``/``ShapeError`` on a well-typed input, a hang),
*rejected* (valid values refused with a ``MatcalcError``) or a *read-back failure*
(``str(d)`` does not evaluate to ``d.evaluate``'s numbers).  Every failure is shrunk to
a small expression that still fails the same way.

The last line printed is ``fuzz N: correct C, unsupported U, wrong W, crashed K,
rejected R, read-back failures B``.

Its modules, one job each: ``tree`` (the fuzzer's own expression trees and their text),
``generator`` (random examples; the engine's functions read in one place,
``generator.engine_functions``), ``sizes`` (what an expression requires of its sizes, and a
new user's sizes), ``values`` (the generator's NumPy meaning of its trees, values for its
symbols), ``oracle`` (one example checked: an Outcome), ``shrinker`` and ``runner``.
"""
from .tree import Node, SCALAR, is_scalar, render
from .values import draw_value, draw_values, my_eval, to_internal, to_user
from .sizes import new_user_shapes
from .generator import Example, Gen, INV_SP, INVT_SP, T_SP, example_from_tree, generate
from .oracle import (ABS_FLOOR, FAILURES, READBACK_TOL, Outcome, _err, check_example,
                     check_roundtrip, run_seed, tree_symbols)
from .shrinker import shrink
from .runner import figure, main, run

__all__ = ["Node", "SCALAR", "is_scalar", "render", "draw_value", "draw_values", "my_eval",
           "to_internal", "to_user", "new_user_shapes", "Example", "Gen", "INV_SP", "INVT_SP",
           "T_SP", "example_from_tree", "generate", "ABS_FLOOR", "FAILURES", "READBACK_TOL",
           "Outcome", "_err", "check_example", "check_roundtrip", "run_seed", "tree_symbols",
           "shrink", "figure", "main", "run"]
