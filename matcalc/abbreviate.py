"""Abbreviations: a long subexpression that recurs is named once and written by its name.

    2 W Bᵀ X A − 2 W Bᵀ X A … where W = (R + Bᵀ X B)⁻¹

One picker for the two places that abbreviate: the answer (``abbreviate``, printed with
``where W = …`` by the command line, ``Derivative.latex(abbreviate=True)``, the notebook,
the playground and ``--json``) and the steps (``let r = …``, ``steps._abbreviated``).
The picker names the subexpression whose repeats save the most characters, rewrites it
to the name everywhere (in the definitions already made too, so that abbreviations nest:
``where W = …, V = … W …``) and picks again.  Names are fresh: never a symbol of the
input, a size name or a name already given.

The ``where`` form reads back: ``matcalc.parse("2 W B^T X A where W = (R + B^T X B)^-1")``
substitutes the definitions (``parse.substitute_where``), so the abbreviated answer
evaluates to the value of the flat one.
"""
from . import expr as E

# Names for matrices and for vectors and scalars, tried in order.  No I, K, T or e: the
# language reads I and K(m,n) as the identity and the commutation matrix, and ^T after a
# name is a transpose.
MATRIX_NAMES = ("W", "V", "U", "Q", "P", "S", "Z", "Y", "H", "G", "F", "M", "N", "L", "J")
VECTOR_NAMES = ("w", "v", "u", "z", "q", "p", "s", "r", "h", "g", "y", "c", "b", "a")

# The answer: a subexpression of at least MIN_LENGTH characters is named where naming it
# saves at least MIN_SAVING characters net (its repeats written as one letter, less the
# definition ", W = …"), at most MAX_NAMES of them.
MIN_LENGTH = 6
MIN_SAVING = 4
MAX_NAMES = 6
# The printed rule: the abbreviated form replaces the flat one where it is at least
# SHORTER (a fraction of the flat text) and at least SAVED characters shorter.
SHORTER = 0.15
SAVED = 16

_MAX_VISITS = 200_000      # nodes visited per count (a DAG with much sharing is not walked out)


def shape_sym(name, like):
    """A symbol named name with the shape of like (an abbreviation or a placeholder)."""
    r, c = like.shape
    if like.is_scalar:
        return E.Sym(name, "scalar", 1, 1)
    return E.Sym(name, "vector" if c == 1 else "matrix", r, c)


def taken_names(symbols):
    """The names an abbreviation may not take: the symbols (name -> typed Sym) and the
    size names of their shapes."""
    out = set(symbols)
    for sym in symbols.values():
        for s in sym.shape:
            if isinstance(s, str):
                out.add(s)
            elif isinstance(s, E.SizeProd):
                out.update(x for x in E.size_factors(s)[1] if isinstance(x, str))
    return out


def fresh_name(like, taken, pool=None):
    """The first name of pool (by default the matrix or the vector names, by like's
    shape) that is not taken, or None."""
    if pool is None:
        r, c = like.shape
        pool = MATRIX_NAMES if (r != 1 and c != 1) else VECTOR_NAMES
    for n in pool:
        if n not in taken:
            return n
    return None


def net_saving(count, length):
    """Characters saved by writing count occurrences of length characters as a one-letter
    name, less the definition ", W = …"."""
    return count * (length - 1) - (length + 5)


def repeat_saving(count, length):
    """Characters the repeats after the first take (the steps' measure: the definition
    is a line of its own)."""
    return (count - 1) * length


def best_repeat(trees, candidates, length, min_length, min_saving, per_tree=False,
                saving=repeat_saving):
    """The subexpression that recurs among trees and whose naming saves the most
    characters: candidates(tree) yields the subexpressions of a tree that may be named
    (with repeats, or once each if per_tree: then a tree counts once); length(n) is the
    printed length of n.  saving(count, length) ≥ min_saving and length ≥ min_length;
    None if no subexpression qualifies."""
    count, size = {}, {}
    for t in trees:
        nodes = candidates(t)
        if per_tree:
            nodes = set(nodes)
        for n in nodes:
            if n not in size:
                size[n] = length(n)
            count[n] = count.get(n, 0) + 1
    return max((n for n, c in count.items()
                if c >= 2 and size[n] >= min_length and saving(c, size[n]) >= min_saving),
               key=lambda n: (saving(count[n], size[n]), size[n]), default=None)


def replace(tree, target, sym):
    """tree with every occurrence of target (structurally equal) written sym; a product
    target also where its factors stand in a longer product (A W C W B for W C W: A V B)."""
    after = None
    if type(target) in _RUN_TYPES:
        want = target.items
        k = len(want)

        def after(m):
            if type(m) is not type(target) or len(m.items) <= k:
                return None
            items, out, i = m.items, [], 0
            while i < len(items):
                if items[i:i + k] == want:
                    out.append(sym)
                    i += k
                else:
                    out.append(items[i])
                    i += 1
            return type(m)(tuple(out)) if len(out) < len(items) else None
    return E.rewrite(tree, lambda m: sym if m == target else None, after)


_RUN_TYPES = (E.Mul, E.Add, E.Hadamard)    # associative: a run of items is a subexpression
_MAX_FACTORS = 16          # a longer product or sum offers no runs of its items as names
_MAX_RUN = 8               # items in a run


def _runs(m):
    """The runs of two or more (not all) consecutive items of the product or sum m, as
    products or sums: A B C D offers A B, B C, C D, A B C, B C D.  Not a run that begins
    with a number (2 W is no name)."""
    items = m.items
    if len(items) < 3 or len(items) > _MAX_FACTORS:
        return
    for i in range(len(items)):
        if isinstance(items[i], E.Num):
            continue
        for j in range(i + 2, min(len(items), i + _MAX_RUN) + 1):
            if j - i < len(items):
                yield type(m)(items[i:j])


def _compound(tree):
    """Every compound subexpression of tree below its root and every run of items of a
    product, sum or Hadamard product, with repeats (a shared node counts at each place it appears), except
    constants; stops after _MAX_VISITS."""
    stack = list(tree.args)
    visits = 0
    while stack:
        n = stack.pop()
        visits += 1
        if visits > _MAX_VISITS:
            return
        if not n.args or isinstance(n, E.Diff):
            continue
        if not E.contains(n, lambda m: isinstance(m, E.Sym)):
            continue                # a constant (2/3, ones(m), I(n) ⊗ I(m)) is no name
        yield n
        if type(n) in _RUN_TYPES:
            yield from _runs(n)
        stack.extend(n.args)


class Abbreviated:
    """An expression written with names: body, and definitions [(Sym, expr)] in an order
    where each uses only the names before it."""

    __slots__ = ("body", "definitions")

    def __init__(self, body, definitions):
        self.body = body
        self.definitions = definitions

    def __bool__(self):
        return bool(self.definitions)

    def text(self, ascii=False):
        from .printing import to_text
        out = to_text(self.body, ascii=ascii)
        if self.definitions:
            out += " where " + ", ".join(f"{s.name} = {to_text(e, ascii=ascii)}"
                                         for s, e in self.definitions)
        return out

    def latex(self):
        from .printing import LatexPrinter, to_latex
        out = to_latex(self.body)
        if self.definitions:
            out += " \\quad \\text{where } " + ",\\; ".join(
                f"{LatexPrinter().name(s.name)} = {to_latex(e)}" for s, e in self.definitions)
        return out


def abbreviate(e, taken, max_names=MAX_NAMES, min_length=MIN_LENGTH, min_saving=MIN_SAVING):
    """e with its long repeated subexpressions named (an Abbreviated, with no
    definitions if none is worth a name); taken: names not to use."""
    from .printing import Printer
    printer = Printer()
    taken = set(taken)
    body, defs = e, []                   # defs: [Sym, expr], in the order they were picked
    for _ in range(max_names):
        trees = [body] + [d for _, d in defs]
        best = best_repeat(trees, _compound, lambda n: len(printer.p(n)[0]), min_length, min_saving,
                           saving=net_saving)
        if best is None:
            break
        name = fresh_name(best, taken)
        if name is None:
            break
        taken.add(name)
        sym = shape_sym(name, best)
        body = replace(body, best, sym)
        defs = [[s, replace(d, best, sym)] for s, d in defs]
        defs.append([sym, best])
    return Abbreviated(body, _ordered(defs))


def _ordered(defs):
    """The definitions in an order where each uses only names defined before it (those
    picked later may be parts of those picked earlier)."""
    out, done, left = [], set(), list(defs)
    while left:
        for i, (s, d) in enumerate(left):
            uses = {n for n in E.symbols_of(d)} & {x.name for x, _ in left}
            if not uses - done - {s.name}:
                out.append((s, d))
                done.add(s.name)
                del left[i]
                break
        else:  # pragma: no cover - picked names form no cycle
            out.extend((s, d) for s, d in left)
            break
    return out


def worth_it(flat, short):
    """Whether the abbreviated text short replaces the flat text: SHORTER of it saved and
    at least SAVED characters."""
    saved = len(flat) - len(short)
    return saved >= SAVED and saved >= SHORTER * len(flat)


def of_derivative(d):
    """The abbreviated answer of the Derivative d, or None where the flat answer is not
    markedly longer (``worth_it``)."""
    from .printing import to_text
    ab = abbreviate(d.expr, taken_names(d._symbols))
    if not ab or not worth_it(to_text(d.expr), ab.text()):
        return None
    return ab
