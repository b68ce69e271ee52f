"""Text to expression tree: the Lark grammar in ``grammar/matcalc.lark`` plus the
callbacks that build core nodes.  Sugar is removed here (``a - b``, ``X^-T``,
``log|X|``, ``A ./ B``, ...); what depends on shapes (``|e|``, ``diag``, ``^``, ``/``)
is left as a Raw node for ``shapes`` to decide.
"""
import os
import re
from fractions import Fraction

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex

from . import expr as E
from .errors import ParseError

MAX_DEPTH = 200          # deeper nesting is refused with a ParseError, not a RecursionError
MAX_LENGTH = 30_000      # characters: longer input is refused (parsing alone would take seconds)


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
        for tok in stream:  # |c ||x|| | an absolute value of c times a norm
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

FUNC_ALIASES = {"Tr": "tr", "trace": "tr", "ln": "log"}
FUNCTION_NAMES = frozenset(("tr", "Tr", "trace", "det", "logdet", "exp", "log", "ln", "sin", "cos",
                            "tanh", "sqrt", "sigmoid", "softplus", "abs", "sum", "norm", "vec",
                            "diag", "kron", "inv"))


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
        node.span = x.span
        d = 1 + max(_DEPTH.get(id(a), 0) for a in x.items)
        if d > MAX_DEPTH:
            raise ParseError(f"expression nested more than {MAX_DEPTH} levels deep", node.span)
        _DEPTH[id(node)] = d
        return node
    return x


def _span_of(x):
    if isinstance(x, Token):
        return (x.start_pos, x.end_pos)
    return x.span


def _mk(node, *parts):
    """Give node the span covering parts (tokens or nodes), check the depth, return it."""
    spans = [_span_of(p) for p in parts if p is not None]
    node.span = (min(s[0] for s in spans), max(s[1] for s in spans))
    d = 1 + max((_DEPTH.get(id(a), 0) for a in node.args), default=0)
    if d > MAX_DEPTH:
        raise ParseError(f"expression nested more than {MAX_DEPTH} levels deep", node.span)
    _DEPTH[id(node)] = d
    return node


# The depth of each node, keyed by node id and cleared after each parse.
_DEPTH = {}


def _size(tok):
    s = str(tok).strip()
    return int(s) if s.isdigit() else s


class Build:
    """The grammar's callbacks, one per alias; used inline by the LALR parser."""

    # atoms
    def number(self, c):
        (t,) = c
        text = str(t)
        mantissa, _, exponent = text.lower().partition("e")
        if len(mantissa) > 1000 or (exponent and abs(int(exponent)) > 400):
            raise ParseError(f"number {text!r} is out of range (at most 1000 digits, "
                             f"exponents within ±400)", _span_of(t))
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
        opener, tok, close = c
        s = _size(tok)
        if s == 0:
            raise ParseError("I(n) needs a positive size", _span_of(tok))
        return _mk(E.Identity(s), opener, close)

    def size(self, c):
        return c[0]

    def commutation(self, c):
        (t,) = c
        inner = str(t)[str(t).index("(") + 1:-1]
        m, n = (_size(x) for x in inner.split(","))
        if m == 0 or n == 0:
            raise ParseError("K(m,n) needs positive sizes", _span_of(t))
        return _mk(E.Commutation(m, n), t)

    def group(self, c):
        return c[1]

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
        elif name in E.ELEMENTWISE:
            node = E.Func(name, a)
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

    # postfix
    def transpose(self, c):
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


def _parser():
    global _PARSER
    if _PARSER is None:
        with open(grammar_path(), encoding="utf-8") as fh:
            grammar = fh.read()
        # the basic lexer: the grammar's terminal priorities settle every overlap, and it
        # compiles one regex instead of one per parser state (the first parse is faster)
        _PARSER = Lark(grammar, parser="lalr", lexer="basic", postlex=BarPostLex(),
                       transformer=Build(), maybe_placeholders=False, cache=_cache_file(grammar))
    return _PARSER


def _cache_file(grammar):
    """A cache of the built parser tables, so a CLI call does not rebuild them."""
    import hashlib
    import tempfile
    import lark
    key = hashlib.sha256((grammar + lark.__version__).encode()).hexdigest()[:16]
    d = os.environ.get("MATCALC_CACHE") or os.path.join(tempfile.gettempdir(), "matcalc-cache")
    try:
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"grammar-{key}.lark.cache")
    except OSError:
        return False


# ---------------------------------------------------------------------------- errors

_DESCRIBE = {
    "RPAR": "')'", "LPAR": "'('", "RBAR": "a closing '|'", "RDBAR": "a closing '||'",
    "COMMA": "','", "RBRACE": "'}'", "$END": "the end of the input",
}


def _expected(exp):
    names = sorted({_DESCRIBE.get(e, None) for e in exp} - {None})
    operand = {"NAME", "NUMBER", "LPAR", "FUNC"} & set(exp)
    parts = (["an operand"] if operand else []) + [n for n in names if n != "'('" or not operand]
    return " or ".join(parts) if parts else "something else"


def _translate(e, text):
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        pos = e.pos_in_stream
        if ch == "|" or text.startswith("||", pos):
            return ParseError("unbalanced bars", (pos, pos + 1))
        if not ch.isprintable():
            return ParseError(f"unexpected control character {ch!r}", (pos, pos + 1))
        return ParseError(f"unexpected character {ch!r}", (pos, pos + 1))
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            return ParseError(f"unexpected end of input; expected {_expected(e.expected)}",
                              (len(text), len(text) + 1))
        pos = tok.start_pos if tok.start_pos is not None else 0
        if tok.type == "FUNC" or (tok.type in ("RPAR", "RBAR", "RDBAR", "COMMA") and
                                  "LPAR" in e.expected and "$END" not in e.expected):
            pass
        msg = f"unexpected {str(tok)!r}; expected {_expected(e.expected)}"
        before = text[:pos].rstrip()
        called = re.search(r"([A-Za-z_]\w*)\s*\($", before)
        if tok.type == "RPAR" and called:
            msg = f"{called.group(1)}() needs an argument"
        elif tok.type == "RPAR" and before.endswith("("):
            msg = "empty parentheses: () holds no expression"
        elif tok.type in ("RPAR",) and "RPAR" not in e.expected:
            msg = "unbalanced parentheses: ')' without a matching '('"
        return ParseError(msg, (pos, max(pos + 1, tok.end_pos or pos + 1)))
    if isinstance(e, UnexpectedEOF):
        return ParseError("unexpected end of input", (len(text), len(text) + 1))
    return ParseError(str(e), None)


def parse_raw(text):
    """The raw tree of text (Raw nodes not yet resolved by shape inference)."""
    if not isinstance(text, str):
        raise ParseError(f"expected an expression as a string, got {type(text).__name__}")
    if "\\" in text:                  # LaTeX (CONTRACT §5.4): spans point into the LaTeX
        from .latex_input import parse_latex
        return parse_latex(text, _parse)
    try:
        return _parse(text)
    except ParseError as err:
        raise err.with_text(text)


def _parse(text):
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
    finally:
        _DEPTH.clear()
    return tree
