"""Text to expression tree: the Lark grammar in ``grammar/matcalc.lark`` plus the
callbacks that build core nodes.  Sugar is removed here (``a - b``, ``X^-T``,
``log|X|``, ``A ./ B``, ...); what depends on shapes (``|e|``, ``diag``, ``^``, ``/``)
is left as a Raw node for ``shapes`` to decide.
"""
import os
import re
import threading
from fractions import Fraction

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from . import expr as E
from .errors import ParseError
from .operators import ARRAY_FUNCTIONS, ELEMENTWISE, MATRIX_SPELLINGS, SPECTRAL

_put = object.__setattr__   # a node's span and depth: annotations, set past the frozen __setattr__

MAX_DEPTH = 200          # deeper nesting is refused with a ParseError, not a RecursionError
MAX_LENGTH = 30_000      # characters: longer input is refused (parsing alone would take seconds)
# A number literal: at most MAX_DIGITS characters before the exponent, and an exponent
# within ±MAX_EXPONENT.  Exact arithmetic on such Fractions costs microseconds (10**1000
# is 3,322 bits; a product of 4,000 of them, the most 30,000 characters can hold, is
# ~0.1 s), and every number the engine prints stays within these limits (budget.py
# refuses an answer that would not), so that what the engine prints, it reads.
MAX_DIGITS = 1000
MAX_EXPONENT = 1000


def number_out_of_range(text):
    """Why the number literal text is refused (past MAX_DIGITS or MAX_EXPONENT), or None."""
    mantissa, _, exponent = text.lower().partition("e")
    if len(mantissa) > MAX_DIGITS or (exponent and abs(int(exponent)) > MAX_EXPONENT):
        return (f"number {text if len(text) < 40 else text[:20] + '…' + text[-12:]!r} is out of "
                f"range (at most {MAX_DIGITS} digits, exponents within ±{MAX_EXPONENT})")
    return None


def grammar_path():
    """The grammar file: inside the installed package, or grammar/ in a source checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.path.join(here, "grammar", "matcalc.lark"),
              os.path.join(os.path.dirname(here), "grammar", "matcalc.lark")):
        if os.path.isfile(p):
            return p
    raise FileNotFoundError("grammar/matcalc.lark not found beside the matcalc package")


# ---------------------------------------------------------------------------- bars

_ENDS_OPERAND = {"NUMBER", "NAME", "IDENT", "KMAT", "RPAR", "RBRACE", "POST_T", "POST_INV",
                 "POST_INVT", "SUPERSCRIPT", "RBAR", "RDBAR", "NORMSUB"}


def _retype(tok, type_, start=None, length=None):
    t = Token.new_borrow_pos(type_, tok.value if length is None else tok.value[:length], tok)
    if start is not None:
        t.start_pos = start
        t.column = (tok.column or 0) + (start - tok.start_pos)
        t.end_pos = start + len(t.value)
    return t


class BarPostLex(PostLex):
    """Renames each | and || to an opening or closing bar: a bar closes when an
    operand precedes it and a bar of its kind is open, else it opens."""

    always_accept = ("BAR", "DBAR")

    def process(self, stream):
        stack = []          # open bars, and "(" for each open parenthesis (a bar never
        prev_ends = False   # closes across a parenthesis)
        prev_end = None     # where the previous token ended: |A||B| is two determinants,
        prev = None         # |c ||x|| | an absolute value of c times a norm
        for tok in stream:
            if tok.type == "NAME" and tok.value in FUNCTION_NAMES:
                tok = _retype(tok, "FUNC")          # a function name (the grammar's FUNC list)
            if tok.type == "LPAR" and prev is not None and prev.type == "NAME" and \
                    prev.end_pos == tok.start_pos:
                # Trace(X), sigmod(x), expm(X): not a product (the printer writes a product
                # of a symbol and a group with a space, A (B + C), which stays readable)
                err = _function_like(prev)
                if err is not None:
                    raise err
            prev = tok
            here, prev_end = prev_end, tok.end_pos
            tok_prev_end = here
            if tok.type in ("LPAR", "LBRACE", "ISIZED"):
                stack.append("(")
            elif tok.type in ("RPAR", "RBRACE"):
                while stack and stack[-1] != "(":
                    stack.pop()
                if stack:
                    stack.pop()
            if tok.type == "BAR":
                if prev_ends and stack and stack[-1] == "|":
                    stack.pop()
                    yield _retype(tok, "RBAR")
                    prev_ends = True
                else:
                    stack.append("|")
                    yield _retype(tok, "LBAR")
                    prev_ends = False
                continue
            if tok.type == "DBAR":
                spaced = tok_prev_end is not None and tok.start_pos > tok_prev_end
                if prev_ends and stack and stack[-1] == "||":
                    stack.pop()
                    yield _retype(tok, "RDBAR")
                    prev_ends = True
                elif prev_ends and stack and stack[-1] == "|" and not spaced:
                    # |A||B|: a closing bar, then another bar
                    stack.pop()
                    yield _retype(tok, "RBAR", tok.start_pos, 1)
                    if stack and stack[-1] == "|":
                        stack.pop()
                        yield _retype(tok, "RBAR", tok.start_pos + 1, 1)
                        prev_ends = True
                    else:
                        stack.append("|")
                        yield _retype(tok, "LBAR", tok.start_pos + 1, 1)
                        prev_ends = False
                else:
                    stack.append("||")
                    yield _retype(tok, "LDBAR")
                    prev_ends = False
                continue
            prev_ends = tok.type in _ENDS_OPERAND
            yield tok


# ---------------------------------------------------------------------------- callbacks

FUNC_ALIASES = {"Tr": "tr", "trace": "tr", "ln": "log", "norm2": "norm"}
# matrixcalculus.org's spellings that are sugar, not functions of their own: parsed, but
# not listed among the language's functions in messages (CONTRACT §5.4)
SPELLINGS = frozenset({"norm1", "vector", "matrix"})


def _grammar_function_names():
    """The function names of the language: the grammar's FUNC list (the words that the
    postlexer retypes from NAME to FUNC), the one list that the lexer, the parser's
    callbacks and its messages read."""
    with open(grammar_path(), encoding="utf-8") as fh:
        m = re.search(r"^//\s*FUNC:\s*\(([^)]*)\)", fh.read(), re.M)
    if m is None:  # pragma: no cover - the grammar file always has FUNC
        raise RuntimeError("the grammar has no FUNC terminal")
    return tuple(m.group(1).split("|"))


FUNCTION_NAMES = frozenset(_grammar_function_names())            # every spelling, aliases too
FUNCTIONS = tuple(sorted({FUNC_ALIASES.get(n, n) for n in FUNCTION_NAMES} - SPELLINGS))  # one per function

# Functions of NumPy, SciPy and MATLAB (and matrixcalculus.org spellings) that the
# language lacks: name -> what to write instead, naming the nearest function of the
# language.  A name from here followed by "(" is a ParseError, never a silent product.
# (A name that the grammar gains, expm say, leaves this table by itself.)
FOREIGN_FUNCTIONS = {
    "fractional_matrix_power": "write X^p (X^(1/3), X^0.3) for the principal power of a matrix",
    "expm_frechet": "write dexpm(X, E) for the Fréchet derivative of expm at X in the direction E",
    "identity": "write I or I(n) for the identity",
    "vecnorm": "write norm(…) or ||…||",
    "dot": "write x^T y for the dot product",
    "inner": "write x^T y for the inner product",
    "vdot": "write x^T y for the dot product",
    "outer": "write x y^T for the outer product",
    "matmul": "write A B (or A @ B) for the matrix product",
    "mtimes": "write A B for the matrix product",
    "multiply": "write A .* B for the elementwise product",
    "times": "write A .* B for the elementwise product",
    "divide": "write A ./ B for elementwise division",
    "power": "write X .^ p for an elementwise power, X^k for a matrix power",
    "square": "write X .^ 2 for the elementwise square",
    "transpose": "write X^T for the transpose",
    "inverse": "write inv(…) for the inverse",
    "pinv": "inv(…) is the inverse; the pseudo-inverse is not in the language",
    "solve": "write inv(A) b for the solution of A x = b",
    "mldivide": "write inv(A) b for A \\ b",
    "chol": "det, logdet and inv are in the language; the Cholesky factor is not",
    "cholesky": "det, logdet and inv are in the language; the Cholesky factor is not",
    "svd": "norm(…) is in the language; factorizations are not",
    "eig": "tr, det and logdet are in the language; eigenvalues are not",
    "eigh": "tr, det and logdet are in the language; eigenvalues are not",
    "eigvals": "tr, det and logdet are in the language; eigenvalues are not",
    "determinant": "write det(…) for the determinant",
    "slogdet": "write logdet(…) for the log-determinant",
    "max": "the language has no max; sum, norm and abs are its reductions",
    "min": "the language has no min; sum, norm and abs are its reductions",
    "amax": "the language has no max; sum, norm and abs are its reductions",
    "amin": "the language has no min; sum, norm and abs are its reductions",
    "maximum": "the language has no max; abs is elementwise",
    "minimum": "the language has no min; abs is elementwise",
    "argmax": "the language has no argmax",
    "argmin": "the language has no argmin",
    "mean": "write sum(x) / n for a mean (--let n=scalar)",
    "average": "write sum(x) / n for a mean (--let n=scalar)",
    "prod": "the language has no product of entries; sum is its reduction",
    "reshape": "vec(…) stacks the columns and unvec(v, m) rebuilds an m-row matrix from them (column-major)",
    "flatten": "write vec(…) to stack the columns",
    "ravel": "write vec(…) to stack the columns (column-major)",
    "diagonal": "write diag(X) for the diagonal of X",
    "diagm": "write diag(x) for the diagonal matrix of x",
    "diagflat": "write diag(x) for the diagonal matrix of x",
    "kronecker": "write kron(A, B) or A ⊗ B",
    "log2": "log is the natural logarithm: write log(x) / log(2)",
    "log10": "log is the natural logarithm: write log(x) / log(10)",
    "exp2": "write exp(x log(2)) for 2 to the x",
    "log1p": "write log(1 + x)",
    "expm1": "write exp(x) - 1",
    "logistic": "write sigmoid(…)",
    "expit": "write sigmoid(…)",
    "sign": "the language has no sign; abs is in the language",
    "tan": "write sin(x) ./ cos(x)",
    "sinh": "tanh is in the language; write (exp(x) - exp(-x)) / 2 for sinh",
    "cosh": "tanh is in the language; write (exp(x) + exp(-x)) / 2 for cosh",
    "arctan": "the language has no arctan; sin, cos and tanh are in it",
    "atan": "the language has no atan; sin, cos and tanh are in it",
    "erf": "the language has no erf; sigmoid and tanh are in it",
    "numel": "sizes are given with --let (e.g. X=matrix(m,n)), not computed",
    "size": "sizes are given with --let (e.g. X=matrix(m,n)), not computed",
    "length": "sizes are given with --let (e.g. x=vector(n)), not computed",
}
FOREIGN_FUNCTIONS = {k: v for k, v in FOREIGN_FUNCTIONS.items() if k not in FUNCTION_NAMES}


_LOWER = {}                 # lower-cased spelling -> the function (tr before Tr)
for _n in sorted(FUNCTION_NAMES, key=lambda n: (n != n.lower(), n)):
    _LOWER.setdefault(_n.lower(), _n)
_NEAR_CANDIDATES = tuple(n for n in sorted(FUNCTION_NAMES - SPELLINGS) if len(n) >= 4) + \
    tuple(n for n in sorted(FOREIGN_FUNCTIONS) if len(n) >= 6)


def _near(a, b):
    """a and b one edit apart: one character inserted, deleted, replaced, or two
    neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1:]
    return a[i + 1:] == b[i + 1:] or (a[i + 1:i + 2] == b[i:i + 1] and a[i:i + 1] == b[i + 1:i + 2]
                                      and a[i + 2:] == b[i + 2:])


def function_suggestion(name):
    """What to write instead of name(…) when name looks like a function: a function of
    the language in another letter case, one edit from one of four or more letters, or
    a function of NumPy/SciPy/MATLAB that the language lacks; None for other names."""
    if name in FUNCTION_NAMES:
        return None
    fn = _LOWER.get(name.lower())
    if fn is not None:
        return f"function names are lower case: write {fn}(…)"
    key = name if name in FOREIGN_FUNCTIONS else name.lower()
    if key in FOREIGN_FUNCTIONS:
        return FOREIGN_FUNCTIONS[key]
    # one edit from a function of four letters or more (of NumPy's: six, as softmax)
    for fn in _NEAR_CANDIDATES:
        if _near(name.lower(), fn.lower()):
            if fn in FOREIGN_FUNCTIONS:
                return f"did you mean {fn}? {FOREIGN_FUNCTIONS[fn]}"
            return f"did you mean {fn}(…)?"
    return None


def _function_like(tok):
    """A ParseError for a NAME token directly followed by "(" that looks like a function."""
    hint = function_suggestion(str(tok))
    if hint is None:
        return None
    return ParseError(f"{tok} is not a function of the language; {hint} (a symbol before "
                      f"parentheses multiplies: write {tok} (…) with a space or {tok} * (…) for "
                      f"a product)",
                      (tok.start_pos, tok.end_pos))


class _Chain:
    """An unparenthesized chain a + b + c (or a b c) while it is being parsed: items
    are appended in place, and the n-ary node is built once, when something else takes
    the chain as an operand (a parenthesized group is a node of its own)."""

    __slots__ = ("cls", "items", "span")

    def __init__(self, cls, items):
        self.cls = cls
        self.items = items
        self.span = (items[0].span[0], items[-1].span[1])

    def push(self, x):
        self.items.append(x)
        self.span = (self.span[0], x.span[1])
        return self


def _fin(x):
    """The node of a finished chain (anything else unchanged)."""
    if isinstance(x, _Chain):
        node = x.cls(tuple(x.items))
        _put(node, "span", x.span)
        _check_depth(node)
        return node
    return x


def _span_of(x):
    if isinstance(x, Token):
        return (x.start_pos, x.end_pos)
    return x.span


def _number_text(n):
    v = n.value
    return str(v.numerator) if v.denominator == 1 else str(float(v))


def _mk(node, *parts):
    """Give node the span covering parts (tokens or nodes), check the depth, return it."""
    spans = [_span_of(p) for p in parts if p is not None]
    _put(node, "span", (min(s[0] for s in spans), max(s[1] for s in spans)))
    _check_depth(node)
    return node


def _check_depth(node):
    """Record node's nesting depth on the node itself (its children, built first, carry
    theirs), so that concurrent parses share no state; refuse it past MAX_DEPTH."""
    d = 1 + max((depth_of(a) for a in node.args), default=0)
    if d > MAX_DEPTH:
        raise ParseError(f"expression nested more than {MAX_DEPTH} levels deep", node.span)
    _put(node, "depth", d)


def depth_of(node):
    """node's nesting depth: the one the parser recorded, else computed (and recorded) from
    its children's (a node the parser did not build: a constant, a where clause's output)."""
    d = node.depth
    if d is None:
        d = 1 + max((depth_of(a) for a in node.args), default=0)
        _put(node, "depth", d)
    return d


def _size_of(a):
    """The size an argument of ones(…)/zeros(…) spells: n, 3, or a product m*n; else None."""
    if isinstance(a, E.Sym):
        return a.name
    if isinstance(a, E.Num) and a.value.denominator == 1 and a.value > 0:
        return int(a.value)
    if isinstance(a, E.Mul) and len(a.items) > 1:
        out = 1
        for f in a.items:
            s = _size_of(f)
            if s is None:
                return None
            out = E.size_mul(out, s)
        return out
    return None


def number_value(a):
    """The number a raw (parsed) expression spells: 0.3, 1/3, -1/2, (2/3); else None."""
    if isinstance(a, E.Num):
        return a.value
    if isinstance(a, E.RawDiv):
        n, d = number_value(a.num), number_value(a.den)
        return None if n is None or not d else n / d
    if isinstance(a, E.Mul):
        out = Fraction(1)
        for f in a.items:
            v = number_value(f)
            if v is None:
                return None
            out *= v
        return out
    if isinstance(a, E.Pow) and isinstance(a.exp, E.Num) and a.exp.value.denominator == 1:
        b = number_value(a.base)
        if b is None or (b == 0 and a.exp.value < 0):
            return None
        return b ** int(a.exp.value)
    return None


def _size(tok):
    s = str(tok).strip()
    return int(s) if s.isdigit() else s


class Build:
    """The grammar's callbacks, one per alias; used inline by the LALR parser."""

    # atoms
    def number(self, c):
        (t,) = c
        text = str(t)
        why = number_out_of_range(text)
        if why:
            raise ParseError(why, _span_of(t))
        try:
            v = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ParseError(f"bad number {text!r}", _span_of(t))
        return _mk(E.Num(v), t)

    def symbol(self, c):
        (t,) = c
        return _mk(E.Sym(str(t)), t)

    def identity(self, c):
        return _mk(E.Identity(None), c[0])

    def sized_identity(self, c):
        opener, s, close = c
        if s == 0:
            raise ParseError("I(n) needs a positive size", (opener.start_pos, close.end_pos))
        return _mk(E.Identity(s), opener, close)

    def size(self, c):
        """A size: n, 3, or a product m*n (also m n) as one size."""
        out = 1
        for t in c:
            if t.type == "PRODOP":
                if str(t) not in ("*", "·", "×"):
                    raise ParseError(f"{str(t)!r} in a size: write a product of sizes as m*n", _span_of(t))
                continue
            out = E.size_mul(out, _size(t))
        return out

    def commutation(self, c):
        (t,) = c
        inner = str(t)[str(t).index("(") + 1:-1]
        m, n = (_size(x) for x in inner.split(","))
        if m == 0 or n == 0:
            raise ParseError("K(m,n) needs positive sizes", _span_of(t))
        return _mk(E.Commutation(m, n), t)

    def group(self, c):
        # the span takes the parentheses in, so that messages quote "eye(3)", not "eye(3"
        node = c[1]
        node.span = (min(node.span[0], c[0].start_pos), max(node.span[1], c[-1].end_pos))
        return node

    def bars(self, c):
        return _mk(E.RawBars(c[1]), c[0], c[2])

    def norm(self, c):
        sub = None
        if len(c) == 4:
            sub = str(c[3]).strip("_{} ")
        return _mk(E.RawNorm(c[1], sub), *c)

    def call(self, c):
        name_tok = c[0]
        args = [x for x in c[2:-1] if not isinstance(x, Token)]
        return self._call(name_tok, args, c[-1])

    def call_barred(self, c):
        name_tok, arg = c
        name = FUNC_ALIASES.get(str(name_tok), str(name_tok))
        if name == "log" and isinstance(arg, E.RawBars):
            # log|X|: the log-determinant of a matrix, log of the absolute value of a scalar
            return _mk(E.Func("log", arg), name_tok, arg)
        return self._call(name_tok, [arg], arg)

    def _call(self, name_tok, args, end):
        name = FUNC_ALIASES.get(str(name_tok), str(name_tok))
        if name in ("ones", "zeros"):
            return _mk(self._filled(name, name_tok, args, end), name_tok, end)
        if name in ("vector", "matrix"):
            return _mk(self._constant_array(name, name_tok, args, end), name_tok, end)
        if name == "unvec":
            return _mk(self._unvec(name_tok, args, end), name_tok, end)
        if name in MATRIX_SPELLINGS:
            return _mk(self._matrix_function(name, name_tok, args, end), name_tok, end)
        want = 2 if name == "kron" else 1
        if len(args) != want:
            raise ParseError(f"{name}() takes {want} argument{'s' if want > 1 else ''}, "
                             f"got {len(args)}", (name_tok.start_pos, _span_of(end)[1]))
        a = args[0]
        if name == "tr":
            node = E.Trace(a)
        elif name == "det":
            node = E.Det(a)
        elif name == "logdet":
            node = E.LogDet(a)
        elif name == "log" and isinstance(a, E.Det):
            node = E.LogDet(a.arg)
        elif name in ELEMENTWISE:
            node = E.Func(name, a)
        elif name in ARRAY_FUNCTIONS:
            node = ARRAY_FUNCTIONS[name].node(a)
        elif name in SPECTRAL:              # lambda_max, ..., polar; norm1(e) is ||e||_1
            node = getattr(E, SPECTRAL[name].node)(name, a)
        elif name == "sum":
            node = E.Sum(a)
        elif name == "norm":
            node = E.RawNorm(a, None)
        elif name == "vec":
            node = E.Vec(a)
        elif name == "diag":
            node = E.RawDiag(a)
        elif name == "inv":
            node = E.Inverse(a)
        elif name == "kron":
            node = E.Kron(tuple(args))
        else:  # pragma: no cover - the grammar's FUNC lists exactly the names above
            raise ParseError(f"unknown function {name}", _span_of(name_tok))
        return _mk(node, name_tok, end)

    @staticmethod
    def _matrix_function(name, name_tok, args, end):
        """expm(X), logm(X), sqrtm(X); the Fréchet derivative dexpm(X, E) (dpowm(X, E, p))
        and its Jacobian matrix jexpm(X) (jpowm(X, p)): p a number, not an integer."""
        rec, kind = MATRIX_SPELLINGS[name]
        want = (2 if kind == "Frechet" else 1) + (1 if rec.takes_p else 0)
        if len(args) != want:
            shown = {"MatFunc": "X", "Frechet": "X, E", "FrechetJac": "X"}[kind] + \
                (", p" if rec.takes_p else "")
            raise ParseError(f"{name}() takes {want} argument{'s' if want > 1 else ''} "
                             f"({name}({shown})), got {len(args)}",
                             (name_tok.start_pos, _span_of(end)[1]))
        p = None
        if rec.takes_p:
            p = number_value(args[-1])
            if p is None or p.denominator == 1 or p == Fraction(1, 2):
                raise ParseError(f"the last argument of {name}(…) is the exponent p, a number "
                                 f"that is not an integer nor 1/2 (write the integer power's and "
                                 f"the square root's own forms)", args[-1].span or _span_of(name_tok))
            args = args[:-1]
        if kind == "MatFunc":
            return E.MatFunc(rec.name, args[0], p)
        if kind == "Frechet":
            return E.Frechet(rec.name, args[0], args[1], p)
        return E.FrechetJac(rec.name, args[0], p)

    @staticmethod
    def _unvec(name_tok, args, end):
        """unvec(v, m): the vector v as a matrix of m rows (m a number or a size name)."""
        if len(args) != 2:
            raise ParseError(f"unvec() takes 2 arguments (unvec(v, m): the vector v as a matrix "
                             f"of m rows), got {len(args)}", (name_tok.start_pos, _span_of(end)[1]))
        v, m = args
        size = 1
        for f in (m.items if isinstance(m, E.Mul) else (m,)):    # m, 3, or a product m*n
            if isinstance(f, E.Sym):
                size = E.size_mul(size, f.name)
            elif isinstance(f, E.Num) and f.value.denominator == 1 and f.value > 0:
                size = E.size_mul(size, int(f.value))
            else:
                size = None
                break
        if size is None:
            raise ParseError("the second argument of unvec(v, m) is the number of rows: a positive "
                             "whole number or a size name", m.span or _span_of(name_tok))
        return E.Unvec(v, size)

    @staticmethod
    def _filled(name, name_tok, args, end):
        """ones(n), ones(m,n), zeros(n), zeros(m,n): sizes are numbers or size names."""
        if len(args) not in (1, 2):
            raise ParseError(f"{name}() takes 1 or 2 sizes ({name}(n) or {name}(m,n)), got "
                             f"{len(args)}", (name_tok.start_pos, _span_of(end)[1]))
        sizes = []
        for a in args:
            s = _size_of(a)
            if s is None:
                raise ParseError(f"a size of {name}(…) is a positive integer, a size name or a "
                                 f"product of them (m*n)", a.span)
            sizes.append(s)
        rows, cols = (sizes[0], 1) if len(sizes) == 1 else sizes
        return E.Zero(rows, cols) if name == "zeros" else E.Fill(E.Num(1), rows, cols)

    @staticmethod
    def _constant_array(name, name_tok, args, end):
        """vector(c) / matrix(c) inside an expression (matrixcalculus.org): the vector /
        matrix with every entry the number c (vector(1) the all-ones vector), its size
        taken from what it meets.  A declaration's vector(n) is not parsed here."""
        if len(args) != 1 or not isinstance(args[0], E.Num):
            raise ParseError(f"{name}(…) inside an expression takes one number: {name}(1) is "
                             f"the all-ones {name}, sized by what it meets (for a sized one "
                             f"write {'ones(n)' if name == 'vector' else 'ones(m,n)'}; "
                             f"declare a symbol with --let x={name}"
                             f"({'n' if name == 'vector' else 'm,n'}))",
                             (name_tok.start_pos, _span_of(end)[1]))
        c = args[0].value
        cols = 1 if name == "vector" else None
        return E.Zero(None, cols) if c == 0 else E.Fill(E.Num(c), None, cols)

    # postfix
    def transpose(self, c):
        if isinstance(c[0], E.Num):
            # 1^T x: a number has no transpose; read as a scalar it would be a silent
            # misreading of the all-ones vector that the writer meant
            raise ParseError(f"{_number_text(c[0])}^T: a number has no transpose; for the all-ones "
                             f"vector write ones(n)^T (or vector(1)^T, sized by what it meets)",
                             (_span_of(c[0])[0], _span_of(c[-1])[1]))
        return _mk(E.Transpose(c[0]), *c)

    def inverse(self, c):
        return _mk(E.Inverse(c[0]), *c)

    def inverse_transpose(self, c):
        t = _mk(E.Transpose(c[0]), *c)
        return _mk(E.Inverse(t), *c)

    def superscript(self, c):
        k = {"²": 2, "³": 3}[str(c[1])]
        return _mk(E.RawPower(c[0], _mk(E.Num(k), c[1])), *c)

    def power(self, c):
        return _mk(E.RawPower(c[0], c[2]), *c)

    def elempow(self, c):
        return _mk(E.ElemPow(c[0], c[2]), *c)

    # products and sums
    def neg(self, c):
        x = c[1]
        if isinstance(x, E.Num):
            return _mk(E.Num(-x.value), *c)
        return _mk(E.Mul((_mk(E.Num(-1), c[0]), x)), *c)

    def juxt(self, c):
        return self._product("*", c[0], c[1])

    def binop(self, c):
        return self._product(str(c[1]), c[0], c[2])

    def _product(self, op, a, b):
        b = _fin(b)
        if op in ("*", "@", "·", "×"):
            if isinstance(a, _Chain) and a.cls is E.Mul:
                return a.push(b)
            return _Chain(E.Mul, [_fin(a), b])
        a = _fin(a)
        if op in (".*", "∘"):
            return _mk(E.Hadamard((a, b)), a, b)
        if op == "./":
            return _mk(E.Hadamard((a, _mk(E.ElemPow(b, _mk(E.Num(-1), b)), b))), a, b)
        if op == "⊗":
            return _mk(E.Kron((a, b)), a, b)
        if op == "/":
            return _mk(E.RawDiv(a, b), a, b)
        raise AssertionError(op)  # pragma: no cover

    def add(self, c):
        return self._sum(c[0], _fin(c[2]))

    def sub(self, c):
        b = _fin(c[2])
        nb = _mk(E.Num(-b.value), c[1], b) if isinstance(b, E.Num) else _mk(E.Mul((_mk(E.Num(-1), c[1]), b)), c[1], b)
        return self._sum(c[0], nb)

    def _sum(self, a, b):
        if isinstance(a, _Chain) and a.cls is E.Add:
            return a.push(b)
        return _Chain(E.Add, [_fin(a), b])

    # the where clause
    def binding(self, c):
        name, _, value = c
        return name, _fin(value)

    def where_clause(self, c):
        return _Where(_fin(c[0]), c[1], [x for x in c[2:] if isinstance(x, tuple)])


# ---------------------------------------------------------------------------- where

MAX_EXPANDED = 50_000    # nodes: a where clause that writes out to more is refused


class _Where:
    """BODY where NAME = VALUE, …: as parsed, before the names are written out."""
    __slots__ = ("body", "token", "bindings")

    def __init__(self, body, token, bindings):
        self.body, self.token, self.bindings = body, token, bindings


def _resolve_where(tree, reserved=()):
    """tree with the definitions of its where clause substituted for their names (tree
    itself when it has none).  A ParseError with the span of the name for a name defined
    twice, a definition that uses itself (directly or through others), a definition that
    nothing uses, or a name in reserved (the variable of a derivative)."""
    if not isinstance(tree, _Where):
        return tree
    defs = {}
    for tok, value in tree.bindings:
        name = str(tok)
        if name in defs:
            raise ParseError(f"{name} is defined twice in the where clause", _span_of(tok))
        if name in reserved:
            raise ParseError(f"{name} is the variable, so the where clause cannot define it: "
                             f"name the subexpression otherwise", _span_of(tok))
        defs[name] = (tok, value)

    def names_in(e):
        return [n.name for n in E.walk(e) if isinstance(n, E.Sym) and n.name in defs]

    uses = {name: set(names_in(v)) for name, (_, v) in defs.items()}
    order, state = [], {}                   # state: 1 while visiting, 2 when done

    def visit(name, path):
        state[name] = 1
        for m in sorted(uses[name]):
            if state.get(m) == 1:
                cycle = path[path.index(m):] + [m]
                raise ParseError(f"the where clause defines {m} through itself "
                                 f"({' → '.join(cycle)})", _span_of(defs[m][0]))
            if m not in state:
                visit(m, path + [m])
        state[name] = 2
        order.append(name)

    for name in defs:
        if name not in state:
            visit(name, [name])
    used = set(names_in(tree.body)).union(*uses.values())
    for name, (tok, _) in defs.items():
        if name not in used:
            body_names = {n.name for n in E.walk(tree.body) if isinstance(n, E.Sym)}
            near = [n for n in sorted(body_names) if n.lower() == name.lower()]
            hint = f"; did you mean {near[0]}? (names are case-sensitive)" if near else ""
            raise ParseError(f"{name} is defined in the where clause but not used{hint}",
                             _span_of(tok))
    size, written = {}, {}

    def count(e):
        return sum(size[n.name] if isinstance(n, E.Sym) and n.name in defs else 1
                   for n in _tree_nodes(e))

    for name in order:
        size[name] = count(defs[name][1])
        written[name] = E.rewrite(defs[name][1], _writer(written))
    if count(tree.body) > MAX_EXPANDED:
        raise ParseError(f"the where clause writes out to more than {MAX_EXPANDED} nodes",
                         _span_of(tree.token))
    out = E.rewrite(tree.body, _writer(written))
    if depth_of(out) > MAX_DEPTH:
        raise ParseError(f"the where clause nests the expression more than {MAX_DEPTH} levels "
                         f"deep", _span_of(tree.token))
    return out


def _writer(written):
    def replace(x):
        if isinstance(x, E.Sym) and x.name in written:
            return written[x.name]
        return None
    return replace


def _tree_nodes(e):
    """Every node of a parsed tree (a tree: no node is shared)."""
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.args)


def _finishing(method):
    """Wrap a callback so that its operands are finished chains."""
    def run(self, c):
        return method(self, [_fin(x) for x in c])
    run.__name__ = method.__name__
    return run


for _name in ("number", "symbol", "identity", "sized_identity", "size", "commutation", "group",
              "bars", "norm", "call", "call_barred", "transpose", "inverse", "inverse_transpose",
              "superscript", "power", "elempow", "neg"):
    setattr(Build, _name, _finishing(getattr(Build, _name)))


_PARSER = None
_PARSER_LOCK = threading.Lock()      # threads that parse first build one parser, not several


def _parser():
    if _PARSER is not None:
        return _PARSER
    with _PARSER_LOCK:
        return _build_parser()


def _build_parser():
    global _PARSER
    if _PARSER is None:
        from . import parsercache
        with open(grammar_path(), encoding="utf-8") as fh:
            grammar = fh.read()
        # the basic lexer: the grammar's terminal priorities settle every overlap, and it
        # compiles one regex instead of one per parser state (the first parse is faster)
        options = dict(postlex=BarPostLex(), transformer=Build())
        name, key = _cache_file(grammar)
        parser = parsercache.load(name, key, **options)
        if parser is None:
            parser = Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=False, **options)
            parsercache.save(name, key, parser)
        _PARSER = parser
    return _PARSER


def _cache_file(grammar):
    """The name of the cache of the built parser tables, and the key that ties it to this
    grammar and this lark (the folder and its checks are ``parsercache``'s)."""
    import hashlib
    import lark
    key = hashlib.sha256((grammar + "\0" + lark.__version__).encode()).hexdigest()
    return f"grammar-{key[:16]}.lark.cache", key


# ---------------------------------------------------------------------------- errors

_DESCRIBE = {
    "RPAR": "')'", "LPAR": "'('", "RBAR": "a closing '|'", "RDBAR": "a closing '||'",
    "EQUALS": "'='", "WHERE": "'where'",
    "COMMA": "','", "RBRACE": "'}'", "$END": "the end of the input",
}


def _expected(exp):
    names = sorted({_DESCRIBE.get(e, None) for e in exp} - {None})
    operand = {"NAME", "NUMBER", "LPAR", "FUNC"} & set(exp)
    parts = (["an operand"] if operand else []) + [n for n in names if n != "'('" or not operand]
    return " or ".join(parts) if parts else "something else"


# letters of other scripts that look like Latin ones (a Cyrillic Х typed for X); Greek
# letters are names of the language, so only their look-alike use is told, never refused
LOOKALIKES = str.maketrans("АВЕКМНОРСТУХЅІЈаеорсухѕіјΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοκνρτυχ",
                           "ABEKMHOPCTYXSIJaeopcyxsijABEZHIKMNOPTYXaoknptux")

_OPERATOR_AT_END = re.compile(r"(\.\*|\./|\.\^|[-+*/@∘⊗·×^−,])$")


def _translate(e, text):
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        pos = e.pos_in_stream
        if ch == "|" or text.startswith("||", pos):
            return ParseError("unbalanced bars", (pos, pos + 1))
        if not ch.isprintable():
            return ParseError(f"unexpected control character {ch!r}", (pos, pos + 1))
        if ch and ch.translate(LOOKALIKES) != ch:
            import unicodedata
            return ParseError(f"unexpected character {ch!r} ({unicodedata.name(ch, 'U+%04X' % ord(ch))}"
                              f", which looks like the Latin {ch.translate(LOOKALIKES)}: retype it)",
                              (pos, pos + 1))
        if ch == "_" and text[:pos].rstrip().endswith("||"):
            return ParseError("a norm's subscript is one of 1, 2, * or F: ||x||_1, ||X||_2, "
                              "||X||_*, ||X||_F (write a product after it with a space)",
                              (pos, pos + 1))
        return ParseError(f"unexpected character {ch!r}", (pos, pos + 1))
    if isinstance(e, UnexpectedToken):
        tok = e.token
        pos = len(text) if tok.type == "$END" or tok.start_pos is None else tok.start_pos
        dangling = _OPERATOR_AT_END.search(text[:pos].rstrip())
        if dangling and {"NAME", "NUMBER", "LPAR"} & set(e.expected) and \
                tok.type in ("$END", "RPAR", "RBRACE", "RBAR", "RDBAR", "COMMA"):
            # tr(X +), X *, A .^: an operator with nothing after it
            op = dangling.group(1)
            where = "the end of the input" if tok.type == "$END" else repr(str(tok))
            return ParseError(f"an operand is missing after '{op}' (found {where})",
                              (dangling.start(1), dangling.end(1)))
        if tok.type == "$END":
            return ParseError(f"unexpected end of input; expected {_expected(e.expected)}",
                              (len(text), len(text) + 1))
        if tok.type == "FUNC" or (tok.type in ("RPAR", "RBAR", "RDBAR", "COMMA") and
                                  "LPAR" in e.expected and "$END" not in e.expected):
            pass
        msg = f"unexpected {str(tok)!r}; expected {_expected(e.expected)}"
        if tok.type == "EQUALS":
            msg = ("an equation is not an expression: give only the expression (names are "
                   "defined after it: BODY where W = …, V = …)")
        elif tok.type == "WHERE":
            msg = ("'where' begins the where clause, which comes once, at the end: BODY where "
                   "W = …, V = … (where is not a symbol name)")
        before = text[:pos].rstrip()
        called = re.search(r"([A-Za-z_]\w*)\s*\($", before)
        if tok.type == "RPAR" and called:
            msg = f"{called.group(1)}() needs an argument"
        elif tok.type == "RPAR" and before.endswith("("):
            msg = "empty parentheses: () holds no expression"
        elif tok.type in ("RPAR",) and "RPAR" not in e.expected and \
                text[:pos].count("(") <= text[:pos].count(")"):
            msg = "unbalanced parentheses: ')' without a matching '('"
        return ParseError(msg, (pos, max(pos + 1, tok.end_pos or pos + 1)))
    if isinstance(e, UnexpectedEOF):
        return ParseError("unexpected end of input", (len(text), len(text) + 1))
    return ParseError(str(e), None)


def parse_raw(text, reserved=()):
    """The raw tree of text (Raw nodes not yet resolved by shape inference), the names of
    a where clause written out; reserved: names a where clause may not define (the
    variable)."""
    if not isinstance(text, str):
        raise ParseError(f"expected an expression as a string, got {type(text).__name__}")
    # LaTeX (CONTRACT §5.4): a command, or a braced subscript (S_{2}^{-1}, I_{n}, which the
    # engine prints and the plain language has no reading of); spans point into the LaTeX
    if "\\" in text or "_{" in text:
        from .latex_input import parse_latex
        return parse_latex(text, lambda t: _resolve_where(_parse(t), reserved), MAX_LENGTH)
    try:
        return _resolve_where(_parse(text), reserved)
    except ParseError as err:
        raise err.with_text(text)


def _parse(text):
    """The parser's output for text: a raw tree, or a _Where for a text with a where clause."""
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the expression has {len(text)} characters; the limit is {MAX_LENGTH}",
                         (MAX_LENGTH, len(text)))
    if not text.strip():
        raise ParseError("empty expression", (0, max(1, len(text))))
    try:
        tree = _fin(_parser().parse(text))
    except ParseError as err:
        raise err.with_text(text)
    except UnexpectedInput as err:
        raise _translate(err, text).with_text(text) from None
    return tree
