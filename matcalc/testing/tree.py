"""The fuzzer's expression trees: shapes as tuples of base sizes, nodes, the value
requirements of their symbols, and their text in the input language."""
import re


# ============================================================================ shapes
#
# A dimension is a sorted tuple of base sizes (ints): () is 1, (3,) is 3, (2, 3) is the
# product 6 (from vec or ⊗).  A shape is (rows, cols); a scalar is ((), ()), a column
# vector (d, ()), a row vector ((), d).

SCALAR = ((), ())
BASE_SIZES = (2, 3, 4, 5)


def dsize(d):
    p = 1
    for x in d:
        p *= x
    return p


def shape_size(shape):
    return dsize(shape[0]), dsize(shape[1])


def is_scalar(shape):
    return shape[0] == () and shape[1] == ()


def dim_mul(a, b):
    return tuple(sorted(a + b))


# ============================================================================ trees

from matcalc.printing import ATOM, NEG, POST, PROD, SUM  # noqa: E402 (the printers' precedence levels)


class Node:
    """A node of a generated expression: op, children, shape, op attributes, and the
    requirement its parent puts on its value (None, 'pos', 'inv', 'posdet')."""

    __slots__ = ("op", "kids", "shape", "a", "req")

    def __init__(self, op, kids=(), shape=SCALAR, req=None, **a):
        self.op = op
        self.kids = list(kids)
        self.shape = shape
        self.a = a
        self.req = req

    def copy(self, kids=None):
        n = Node(self.op, self.kids if kids is None else kids, self.shape, self.req, **self.a)
        return n

    def copy_without_paren(self):
        n = self.copy()
        n.a = {k: v for k, v in self.a.items() if k != "paren"}
        return n

    def walk(self, seen=None):
        seen = set() if seen is None else seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield self
        for k in self.kids:
            yield from k.walk(seen)

    def __repr__(self):
        return f"<{self.op} {render(self)}>"


def sym_names(tree):
    return {n.a["name"] for n in tree.walk() if n.op == "sym"}


# ---------------------------------------------------------------------------- printing


def _bar_content(t):
    return f"({t})" if t.startswith("|") or t.endswith("|") else t


def render(n):
    _CTX.clear()
    return _render(n)[0]


# What encloses the text being rendered: "|" or "||" (inside bars of that kind) or "("
# (inside parentheses or a call).  The parser decides that a bar closes when an operand
# precedes it and a bar of its kind is open, so a bar form right inside bars of its own
# kind is put in parentheses; inside parentheses it is not (the parentheses scope it).
_CTX = []


def _prec(n):
    """The precedence _render will give n, without rendering it."""
    op, a = n.op, n.a
    if a.get("paren"):
        return ATOM
    if op == "add":
        return SUM
    if op == "neg":
        return NEG
    if op in ("mul", "div"):
        return PROD
    if op in ("had", "ediv", "kron"):
        return ATOM if a.get("sp") == "kron(" else PROD
    if op in ("T", "inv", "invT"):
        return ATOM if a.get("sp") == "inv(" else POST
    if op in ("mpow", "spow", "epow"):
        return POST
    if op == "mfunc" and a.get("ptext"):
        return POST
    if op in ("norm", "specnorm"):
        return POST if a.get("sq") else ATOM
    return ATOM


def _sub(n, ctx="("):
    _CTX.append(ctx)
    try:
        return _render(n)[0]
    finally:
        _CTX.pop()


def _wrap(n, minprec):
    if _prec(n) < minprec:
        return f"({_sub(n)})"
    return _render(n)[0]


def _wrap_post(n, spelling=""):
    """The base of a postfix operator: an atom, or a postfix chain when allowed."""
    p = _prec(n)
    if p == ATOM or (p == POST and n.a.get("chain")):
        t = _render(n)[0]
        if spelling.startswith(".") and _ends_with_number(t):
            return f"({t})"
        return t
    return f"({_sub(n)})"


def _bars(kind, content_node, fmt):
    """A bar form: fmt has {} for the content; parenthesized when right inside bars of
    its own kind."""
    t = _bar_content(_sub(content_node, kind))
    out = fmt.format(t)
    if _CTX and _CTX[-1] == kind:
        return f"({out})"
    return out


_TAIL = re.compile(r"[A-Za-z0-9_.\u0370-\u03FF]+$")


def _ends_with_number(t):
    m = _TAIL.search(t)
    return bool(m) and (m.group(0)[0].isdigit() or m.group(0)[0] == ".")


def _exponent(n, p_text):
    """Exponent text after ^ or .^: a number spelled p_text, or a scalar node."""
    if p_text is not None:
        return p_text
    if n.op == "sym":
        return _render(n)[0]
    t = _sub(n)
    return "(" + t + ")" if not n.a.get("brace") else "{" + t + "}"


def _render(n):
    if n.a.get("paren") and _prec_raw(n) < ATOM:
        return f"({_sub(n.copy_without_paren())})", ATOM
    return _render_raw(n)


def _prec_raw(n):
    if not n.a.get("paren"):
        return _prec(n)
    return _prec(n.copy_without_paren())


def _render_raw(n):
    op, k, a = n.op, n.kids, n.a
    if op in ("sym", "num", "I", "In", "K"):
        return a["text"] if "text" in a else a["name"], ATOM
    if op == "add":
        return f"{_wrap(k[0], SUM)} {a['sp']} {_wrap(k[1], NEG)}", SUM
    if op == "neg":
        t = _wrap(k[0], NEG)
        return ("- " + t if t.startswith("-") else "-" + t), NEG
    if op == "mul":
        L, R = _wrap(k[0], PROD), _wrap(k[1], POST)
        sp = a["sp"]
        if sp == " " and (R[:1].isdigit() or R[:1] in ".-"):
            sp = " * "
        return f"{L}{sp}{R}", PROD
    if op == "div":
        return f"{_wrap(k[0], PROD)} / {_wrap(k[1], POST)}", PROD
    if op in ("had", "ediv", "kron"):
        sp = a["sp"]
        if sp == "kron(":
            return f"kron({_sub(k[0])}, {_sub(k[1])})", ATOM
        L, R = _wrap(k[0], PROD), _wrap(k[1], POST)
        if sp.strip() == sp and (_ends_with_number(L) or R[:1].isdigit() or R[:1] in ".-"):
            sp = " " + sp + " "
        return f"{L}{sp}{R}", PROD
    if op in ("T", "inv", "invT"):
        sp = a["sp"]
        if sp == "inv(":
            return f"inv({_sub(k[0])})", ATOM
        return _wrap_post(k[0], sp) + sp, POST
    if op == "det":
        if a["sp"] == "|":
            return _bars("|", k[0], "|{}|"), ATOM
        return f"det({_sub(k[0])})", ATOM
    if op == "logdet":
        sp = a["sp"]
        if sp == "log|":
            return _bars("|", k[0], "log|{}|"), ATOM
        if sp == "log(|":
            return "log(" + _sub(Node("det", [k[0]], SCALAR, sp="|")) + ")", ATOM
        t = _sub(k[0])
        return {"logdet": f"logdet({t})", "log(det": f"log(det({t}))",
                "ln(det": f"ln(det({t}))"}[sp], ATOM
    if op == "tr":
        return f"{a['sp']}({_sub(k[0])})", ATOM
    if op in ("func", "afunc", "sum", "vec", "diagm", "diagv"):
        name = a.get("name", {"sum": "sum", "vec": "vec", "diagm": "diag", "diagv": "diag"}.get(op))
        return f"{name}{a.get('space', '')}({_sub(k[0])})", ATOM
    if op == "absbar":
        return _bars("|", k[0], "|{}|"), ATOM
    if op in ("nuclear", "norm1"):
        return _bars("||", k[0], "||{}||" + ("_*" if op == "nuclear" else "_1")), ATOM
    if op == "lambda":
        return f"{a['name']}({_sub(k[0])})", ATOM
    if op == "mfunc":                       # expm(X), sqrtm(X); X^(1/3), X^0.5
        if a.get("ptext"):
            return _wrap_post(k[0]) + "^" + a["ptext"], POST
        return f"{a['name']}({_sub(k[0])})", ATOM
    if op == "frechet":                     # dexpm(X, E), dpowm(X, E, 1/3)
        p = f", {a['ptext']}" if a.get("ptext") else ""
        return f"d{a['name']}({_sub(k[0])}, {_sub(k[1])}{p})", ATOM
    if op == "mpow":
        sp = a["sp"]
        if sp in ("²", "³"):
            return _wrap_post(k[0]) + sp, POST
        return _wrap_post(k[0]) + sp.replace("k", str(a["k"])), POST
    if op in ("spow", "epow"):
        base = _wrap_post(k[0], ".^" if op == "epow" else "")
        if a.get("ptext") in ("²", "³"):
            return base + a["ptext"], POST
        e = _exponent(k[1] if len(k) > 1 else None, a.get("ptext"))
        caret = "^" if op == "spow" else a.get("sp", " .^ ")
        if op == "epow" and caret.strip() == caret and _ends_with_number(base):
            caret = " .^ "
        return f"{base}{caret}{e}", POST
    if op in ("norm", "specnorm"):
        form = a["form"]
        if form == "call":
            s = f"norm({_sub(k[0])})"
        else:
            s = _bars("||", k[0], "||{}||" + {"bars": "", "bars2": "_2", "barsF": "_F"}[form])
        if a.get("sq"):
            return s + a["sq"], POST
        return s, ATOM
    raise AssertionError(op)


def _replace(tree, target, new):
    memo = {}

    def go(n):
        if n is target:
            return new
        if id(n) in memo:
            return memo[id(n)]
        if not n.kids:
            return n
        kids = [go(k) for k in n.kids]
        out = n.copy(kids) if any(a is not b for a, b in zip(kids, n.kids)) else n
        memo[id(n)] = out
        return out
    return go(tree)
