"""LaTeX input (CONTRACT §5.4): a formula pasted from a paper, read as the plain language.

``translate(src)`` returns the plain-language text and, for each of its characters, the
``(start, end)`` span of the LaTeX it came from; ``parse_latex`` parses that text and moves
every span (of the tree's nodes and of a ParseError) back into the LaTeX, so that a caret
points under what the user typed.

Reading rules, as typeset mathematics reads:

* ``\\operatorname{tr}``, ``\\mathrm{tr}``, ``\\det``, ``\\log``, ``\\exp`` ... are the functions;
  without parentheses a function takes the product that follows it, up to ``+``, ``-``, a
  closing bracket or the next function (``\\log\\det\\Sigma`` is log(det(Sigma)),
  ``\\operatorname{tr} A B`` is tr(A B), ``\\det A \\det B`` is det(A) det(B)).
* A run of letters is a product of one-letter symbols (``Ax`` is A x), unless it is a
  function or a Greek letter's name; ``\\mathrm{name}`` is a symbol of several letters.
  Digits stay with the letter before them (``W1``), subscripts too (``w_{2}`` is w_2).
* ``\\mathbf{x}``, ``\\boldsymbol{\\Sigma}``, ``\\bm{x}`` are the symbols x, Sigma; ``\\Sigma`` is
  Sigma and ``\\mu`` is mu; ``\\pi`` is the number.
* ``^\\top``, ``^{T}``, ``^{-1}``, ``^{-\\top}``, ``\\frac{a}{b}``, ``\\sqrt{x}``, ``\\left( \\right)``,
  ``\\|x\\|_2^2``, ``\\lVert x \\rVert``, ``|X|``, ``\\circ``/``\\odot``, ``\\otimes``, ``\\cdot`` and
  ``\\times`` (products), ``{...}`` grouping; spacing commands are ignored.

A command this module does not know is a ParseError at that command, naming the
nearest command it knows.
"""
import re

from .errors import ParseError
from .operators import ELEMENTWISE_NAMES, ELEMENTWISE_RECORDS, MATRIX_SPELLINGS, SPECTRAL

_TOKEN = re.compile(r"""
   (?P<ws>\s+|\$|~)
  |(?P<cmd>\\(?:[A-Za-z]+\*?|.|$))
  |(?P<num>(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  |(?P<word>[A-Za-z\u0370-\u03FF][A-Za-z0-9\u0370-\u03FF]*)
  |(?P<ch>\|\||\.\*|\./|\.\^|⁻¹|⁻ᵀ|.)
""", re.X | re.S)

GREEK = frozenset("""alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa
lambda mu nu xi rho varrho sigma varsigma varpi tau upsilon phi varphi chi psi omega ell Gamma Delta
Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega""".split())

# functions of the language (a word or \operatorname{...} with one of these names applies it)
FUNCS = frozenset("""tr Tr trace det logdet exp log ln sin cos tan tanh sqrt sigmoid softplus
softmax logsumexp relu log1p expm1 atan erf abs sum norm norm1 norm2 vec diag kron inv expm logm
sqrtm""".split())
# words kept whole although they are no function applied without parentheses
KEEP = frozenset("eye ones zeros vector matrix".split()) | GREEK
# commands that are functions (\vec is an arrow accent, \sum a sum over an index: not here)
FUNC_CMDS = {n: n for n in ("det log exp sin cos tan tanh ln tr Tr trace logdet diag sigmoid "
                            "softplus softmax relu logsumexp sqrtm expm logm inv erf").split()}
FUNC_CMDS["arctan"] = "atan"
# every elementwise function of the records, and the LaTeX command its printer writes
FUNCS = (FUNCS | frozenset(ELEMENTWISE_NAMES) | frozenset(n for n, r in SPECTRAL.items() if r.called)
         | frozenset(MATRIX_SPELLINGS))
FUNC_CMDS.update({r.latex[1:]: r.name for r in ELEMENTWISE_RECORDS
                  if r.latex and r.latex[1:] not in GREEK})
DECORATIONS = frozenset("""mathbf boldsymbol bm mathbfit mathit pmb vec mathnormal mathcal bold
mathbold""".split())
TEXTLIKE = frozenset("""operatorname operatorname* mathrm text textrm textup textnormal mathop
textit mathsf textsf textbf""".split())
ACCENTS = {"hat": "hat", "widehat": "hat", "bar": "bar", "overline": "bar", "tilde": "tilde",
           "widetilde": "tilde", "dot": "dot", "check": "check"}
SPACING = frozenset(r", ; : ! > quad qquad displaystyle textstyle nonumber limits nolimits".split())
PRODUCTS = {"cdot": "*", "times": "*", "ast": "*", "circ": "∘", "odot": "∘", "otimes": "⊗",
            "oslash": "./", "div": "/"}
PRODUCT_CHARS = frozenset(("*", "/", "@", "∘", "⊗", "·", "×", ".*", "./"))
SIZING = frozenset("left right big Big bigg Bigg bigl Bigl biggl Biggl bigr Bigr biggr Biggr "
                   "bigm Bigm".split())
# delimiters: (text, role) with role "open", "close" or "either"
_DELIMS_CH = {"(": ("(", "open"), "[": ("(", "open"), ")": (")", "close"), "]": (")", "close"),
              "{": ("(", "open"), "}": (")", "close"), "|": ("|", "either"),
              "||": ("||", "either")}
_DELIMS_CMD = {"{": ("(", "open"), "}": (")", "close"), "lbrace": ("(", "open"),
               "rbrace": (")", "close"), "lbrack": ("(", "open"), "rbrack": (")", "close"),
               "lparen": ("(", "open"), "rparen": (")", "close"),
               "|": ("||", "either"), "Vert": ("||", "either"), "lVert": ("||", "open"),
               "rVert": ("||", "close"), "vert": ("|", "either"), "lvert": ("|", "open"),
               "rvert": ("|", "close"), "mid": ("|", "either"), "langle": ("<", "open"),
               "rangle": (">", "close")}
NOT_IN_LANGUAGE = {
    "sum": "a sum over an index is not in the language; sum(e) is the sum of all entries of e",
    "prod": "a product over an index is not in the language",
    "max": "max is not a function of the language", "min": "min is not a function of the language",
    "langle": "the inner product <a, b> is not in the language; write a^T b or tr(A^T B)",
    "rangle": "the inner product <a, b> is not in the language; write a^T b or tr(A^T B)",
    "dagger": "the pseudo-inverse is not in the language",
    "mathbb": "blackboard bold (an expectation E, a set R) is not in the language",
    "partial": "write the expression only; the variable is given apart (wrt)",
    "nabla": "write the expression only; the variable is given apart (wrt)",
    "mathrm{d}": "write the expression only; the variable is given apart (wrt)",
}
_RELATIONS = frozenset(("=", "<", ">", "leq", "geq", "neq", "approx", "in", "le", "ge", "coloneqq",
                        "triangleq", "equiv", "sim", "propto", "to", "mapsto", "&"))

KNOWN = (GREEK | set(FUNC_CMDS) | DECORATIONS | TEXTLIKE | set(ACCENTS) | SPACING | set(PRODUCTS)
         | SIZING | set(_DELIMS_CMD) | {"frac", "dfrac", "tfrac", "sqrt", "pi", "top", "intercal",
                                        "prime", "T", "norm", "abs", "sinh", "cosh"} | set(NOT_IN_LANGUAGE))

MAX_DEPTH = 200


class _Tok:
    __slots__ = ("kind", "val", "s", "e")

    def __init__(self, kind, val, s, e):
        self.kind, self.val, self.s, self.e = kind, val, s, e

    def is_ch(self, *chars):
        return self.kind == "ch" and self.val in chars

    def is_cmd(self, *names):
        return self.kind == "cmd" and self.val in names


def _tokens(src):
    toks = []
    for m in _TOKEN.finditer(src):
        kind = m.lastgroup
        if kind == "ws":
            continue
        val = m.group()
        s, e = m.span()
        if kind == "cmd":
            val = val[1:]
            if val in SPACING:
                continue
            if val == "" or val.isspace():
                raise ParseError("a lone backslash: a LaTeX command is a backslash and letters "
                                 "(A \\ b is not a solve: write A^-1 b)", (s, e))
        toks.append(_Tok(kind, val, s, e))
    # a formula pasted with its delimiters: \( ... \), \[ ... \], a trailing period or comma
    if toks and toks[0].is_cmd("(", "["):
        toks.pop(0)
    if toks and toks[-1].is_cmd(")", "]"):
        toks.pop()
    while toks and toks[-1].is_ch(".", ",", ";"):
        toks.pop()
    return _merge_delims(toks)


def _merge_delims(toks):
    """\\left( and friends become one delimiter token (kind 'delim', val (text, role))."""
    out = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "cmd" and t.val in SIZING:
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            d = _delim_of(nxt) if nxt is not None else None
            if d is None:
                what = "the end" if nxt is None else repr(nxt.val)
                raise ParseError(f"\\{t.val} must be followed by a delimiter such as ( [ | \\|, "
                                 f"not {what}", (t.s, (nxt or t).e))
            role = d[1]
            if t.val == "left" or t.val.endswith("l"):
                role = "open"
            elif t.val == "right" or t.val.endswith("r"):
                role = "close"
            out.append(_Tok("delim", (d[0], role), t.s, nxt.e))
            i += 2
            continue
        d = _delim_of(t)
        if d is not None:
            out.append(_Tok("delim", d, t.s, t.e))
            i += 1
            continue
        out.append(t)
        i += 1
    return out


def _delim_of(t):
    if t.kind == "ch":
        if t.val == ".":
            return None
        return _DELIMS_CH.get(t.val)
    if t.kind == "cmd":
        return _DELIMS_CMD.get(t.val)
    return None


def _nearest(name):
    import difflib
    m = difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.6)
    return m[0] if m else None


class _Translator:
    def __init__(self, src, toks):
        self.src = src
        self.toks = toks
        self.i = 0
        self.out = []          # pieces [text, start, end]
        self.closers = []      # the delimiters that close the groups being read
        self.depth = 0
        self.where = False     # past a top-level \text{where}: "W = …" defines a name

    # -- helpers
    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def emit(self, text, s, e):
        self.out.append([text, s, e])
        return len(self.out) - 1

    def error(self, msg, tok_or_span):
        span = (tok_or_span.s, tok_or_span.e) if isinstance(tok_or_span, _Tok) else tok_or_span
        return ParseError(msg, span)

    def end_span(self):
        n = len(self.src)
        return (n, n + 1)

    def enter(self, tok):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep", tok)

    # -- what a token is
    def is_brace(self, t, which="{"):
        return t is not None and t.kind == "delim" and self.src[t.s] == which

    def textlike_name(self, j):
        """The text of \\operatorname{...} (and friends) starting at token j, or None."""
        toks = self.toks
        if j + 1 < len(toks) and self.is_brace(toks[j + 1]):
            k = j + 2
            parts = []
            while k < len(toks) and not self.is_brace(toks[k], "}"):
                parts.append(toks[k])
                k += 1
            if k < len(toks) and parts and all(p.kind in ("word", "num") or p.is_ch("_")
                                               for p in parts):
                return "".join(p.val for p in parts), k
            return None
        if j + 1 < len(toks) and toks[j + 1].kind == "word":
            return toks[j + 1].val, j + 1
        return None

    def starts_function(self, t, j):
        if t.kind == "word":
            return t.val in FUNCS
        if t.kind == "cmd":
            if t.val in FUNC_CMDS:
                return True
            if t.val in TEXTLIKE:
                tn = self.textlike_name(j)
                return tn is not None and tn[0] in FUNCS
        return False

    def closes(self, t, expect_operand):
        if t.is_ch(",") and self.closers and self.closers[-1] == ",":
            return True
        if t.kind != "delim" or not self.closers:
            return t.kind == "delim" and t.val[1] == "close"
        text, role = t.val
        want = self.closers[-1]
        if text in ("(", ")"):
            return role == "close"
        if role == "close":
            return True
        return role == "either" and text == want and not expect_operand

    def starts_atom(self, t, j):
        if t.kind in ("word", "num"):
            return True
        if t.kind == "delim":
            return t.val[1] == "open" or (t.val[1] == "either" and not self.closes(t, False))
        if t.kind == "cmd":
            v = t.val
            return (v in GREEK or v in DECORATIONS or v in TEXTLIKE or v in ACCENTS or
                    v in FUNC_CMDS or v in ("frac", "dfrac", "tfrac", "sqrt", "pi", "norm", "abs"))
        return False

    # -- grammar
    def expr(self):
        expect_operand = True
        while True:
            t = self.peek()
            if t is None or self.closes(t, expect_operand):
                return
            if t.is_ch("+", "-", "−") or t.is_cmd("pm", "mp"):
                if t.kind == "cmd":
                    raise self.error(f"\\{t.val} is not in the language", t)
                self.take()
                self.emit(t.val, t.s, t.e)
                expect_operand = True
                continue
            if self.product_op(t) is not None:
                self.take()
                self.emit(self.product_op(t), t.s, t.e)
                expect_operand = True
                continue
            if t.is_ch(","):
                self.take()
                self.emit(",", t.s, t.e)
                expect_operand = True
                continue
            if self.where_clause(t):
                expect_operand = True
                continue
            if t.kind == "ch" and t.val in _RELATIONS or t.kind == "cmd" and t.val in _RELATIONS:
                raise self.error("an equation or relation is not an expression: give only the "
                                 "expression to differentiate", t)
            self.factor()
            expect_operand = False

    def where_clause(self, t):
        """A top-level \\text{where} (or \\quad\\text{where}) and, after it, the "=" of
        each definition: emitted as the language's "where W = …"; True if t was one."""
        if self.closers:
            return False
        if t.kind == "cmd" and t.val in TEXTLIKE:
            tn = self.textlike_name(self.i)
            if tn is not None and tn[0] == "where":
                end = tn[1] + (1 if self.is_brace(self.toks[tn[1]], "}") else 0)
                self.i = end
                self.emit("where", t.s, self.toks[end - 1].e)
                self.where = True
                return True
        if self.where and t.is_ch("="):
            self.take()
            self.emit("=", t.s, t.e)
            return True
        return False

    def product_op(self, t):
        if t.kind == "cmd":
            return PRODUCTS.get(t.val)
        if t.kind == "ch" and t.val in PRODUCT_CHARS:
            return t.val
        return None

    def factor(self):
        t = self.peek()
        self.enter(t)
        name_idx = self.atom()
        self.postfix(name_idx)
        self.depth -= 1

    def group(self, open_tok, closer):
        """The tokens up to the delimiter that closes open_tok, read as an expression."""
        self.closers.append(closer)
        self.expr()
        self.closers.pop()
        t = self.peek()
        if t is None:
            opened = self.src[open_tok.s:open_tok.e]
            raise self.error(f"'{opened}' is never closed", open_tok)
        self.take()
        return t

    def atom(self):
        t = self.peek()
        if t is None:
            raise self.error("unexpected end of input; expected an operand", self.end_span())
        if t.kind == "word":
            self.take()
            if t.val in FUNCS:
                self.function(t.val, t)
                return None
            if t.val in KEEP or t.val.startswith("lambda_"):
                return self.emit(t.val, t.s, t.e)
            idx = None
            pos = t.s
            for part in re.findall(r"[^0-9][0-9]*", t.val):
                idx = self.emit(part, pos, pos + len(part))
                pos += len(part)
            return idx
        if t.kind == "num":
            self.take()
            self.emit(t.val, t.s, t.e)
            return None
        if t.kind == "delim":
            text, role = t.val
            if role == "close":
                raise self.error(f"'{self.src[t.s:t.e]}' closes nothing", t)
            self.take()
            if text == "<":
                return self.inner_product(t)
            if text == "(":
                self.emit("(", t.s, t.e)
                end = self.group(t, ")")
                if end.kind != "delim" or end.val[0] != ")" or \
                        (self.src[t.s] == "{") != (self.src[end.s] == "}"):
                    raise self.error(f"'{self.src[t.s:t.e]}' is closed by "
                                     f"'{self.src[end.s:end.e]}'", (t.s, end.e))
                self.emit(")", end.s, end.e)
                return None
            return self.bars(t, text)
        if t.kind == "ch":
            if t.val in "'ᵀ²³^_" or t.val in ("⁻¹", "⁻ᵀ"):
                raise self.error(f"{t.val}' must follow an operand", t)
            self.take()
            self.emit(t.val, t.s, t.e)    # the plain parser judges other characters
            return None
        # a command
        v = t.val
        self.take()
        if v == "sigma" and self.sigmoid_call(t):
            self.function("sigmoid", t)     # σ(Wx) of papers: \sigma\left( is the sigmoid
            return None
        if v == "lambda" and self.spectral_subscript(t):
            return None                     # \lambda_{\max}(S): the function lambda_max
        if v in GREEK:
            return self.emit(v, t.s, t.e)
        if v == "pi":
            self.emit("3.141592653589793", t.s, t.e)
            return None
        if v in FUNC_CMDS:
            self.function(FUNC_CMDS[v], t)
            return None
        if v in TEXTLIKE:
            name, end = self.text_arg(t)
            if name in FUNCS:
                self.function(name, _Tok("cmd", v, t.s, end))
                return None
            return self.emit(name, t.s, end)
        if v in DECORATIONS:
            return self.decorated(t)
        if v in ACCENTS:
            idx = self.decorated(t)
            if idx is None:
                raise self.error(f"\\{v}{{...}} must hold a symbol", t)
            self.out[idx][0] += "_" + ACCENTS[v]
            return idx
        if v in ("frac", "dfrac", "tfrac"):
            self.emit("(", t.s, t.e)
            self.argument(t)
            self.emit("/", t.s, t.e)
            self.argument(t)
            self.emit(")", self.out[-1][2], self.out[-1][2])
            return None
        if v == "sqrt":
            n = self.peek()
            if n is not None and n.kind == "delim" and self.src[n.s] == "[":
                raise self.error("\\sqrt[k]{x}: a root other than the square root is not in the "
                                 "language; write x^(1/k)", (t.s, n.e))
            self.emit("sqrt(", t.s, t.e)
            self.argument(t)
            self.emit(")", self.out[-1][2], self.out[-1][2])
            return None
        if v in ("norm", "abs"):
            bar = "||" if v == "norm" else "|"
            self.emit("(" + bar, t.s, t.e)
            self.argument(t)
            self.emit(bar, self.out[-1][2], self.out[-1][2])
            if v == "norm":
                self.norm_sub()
            self.emit(")", self.out[-1][2], self.out[-1][2])
            return None
        if v in NOT_IN_LANGUAGE:
            raise self.error(f"\\{v}: {NOT_IN_LANGUAGE[v]}", t)
        if v in ("sinh", "cosh"):
            raise self.error(f"\\{v}: {v} is not a function of the language", t)
        if v in ("top", "intercal", "prime", "T"):
            raise self.error(f"\\{v} must follow an operand (X^\\top is the transpose)", t)
        raise self._unknown(t)

    def spectral_subscript(self, t):
        r"""\lambda_{\max} and \lambda_{\min} (as the printer writes λ_max(S)) are the
        functions lambda_max, lambda_min, with or without parentheses; True if read."""
        n = self.peek()
        if n is None or not n.is_ch("_"):
            return False
        start = self.i
        self.take()
        try:
            content, end = self.sub_content(n)
        except Exception:           # (any subscript that is not one: read as before)
            self.i = start
            return False
        if f"lambda_{content}" not in FUNCS:
            self.i = start
            return False
        self.function(f"lambda_{content}", _Tok("cmd", "lambda", t.s, end))
        return True

    def sigmoid_call(self, t):
        r"""\sigma written against \left( (the engine's σ(x), the σ(Wx) of papers) is the
        sigmoid; \sigma with a space or a bare parenthesis before the group, as in
        \sigma \left(x - \mu\right) or \sigma(x - \mu), stays the symbol sigma times it."""
        n = self.peek()
        return (n is not None and n.kind == "delim" and n.val == ("(", "open")
                and n.s == t.e and self.src.startswith("\\left", n.s))

    def _unknown(self, t):
        if t.kind != "cmd":
            return self.error(f"unexpected '{self.src[t.s:t.e]}'", t)
        near = _nearest(t.val) if t.val.isalpha() else None
        hint = f"; did you mean \\{near}?" if near else ""
        return self.error(f"unknown LaTeX command \\{t.val}{hint}", t)

    def inner_product(self, t):
        """<A, B> is tr(A^T B): the Frobenius inner product (a^T b for vectors)."""
        self.emit("tr((", t.s, t.e)
        self.closers.append(",")
        self.expr()
        self.closers.pop()
        c = self.peek()
        if c is None or not c.is_ch(","):
            raise self.error("an inner product <a, b> needs a comma between its two sides", t)
        self.take()
        self.emit(")^T (", c.s, c.e)
        end = self.group(t, ">")
        if end.kind != "delim" or end.val[0] != ">":
            raise self.error(f"'{self.src[t.s:t.e]}' is closed by '{self.src[end.s:end.e]}'",
                             (t.s, end.e))
        self.emit("))", end.s, end.e)
        return None

    def bars(self, t, text):
        self.emit("(" + text, t.s, t.e)
        end = self.group(t, text)
        if end.kind != "delim" or end.val[0] != text:
            raise self.error(f"'{self.src[t.s:t.e]}' is closed by '{self.src[end.s:end.e]}'",
                             (t.s, end.e))
        self.emit(text, end.s, end.e)
        if text == "||":
            self.norm_sub()
        self.emit(")", self.out[-1][2], self.out[-1][2])
        return None

    def norm_sub(self):
        t = self.peek()
        if t is None or not t.is_ch("_"):
            return
        self.take()
        content, end = self.sub_content(t)
        content = {"infty": "inf", "fro": "F", "mathrm{F}": "F"}.get(content, content)
        self.emit("_" + content, t.s, end)

    def sub_content(self, us):
        """The text of a subscript after the '_' token us, and where it ends."""
        t = self.peek()
        if t is None:
            raise self.error("'_' needs a subscript", us)
        toks = self.arg_tokens(us, one_letter=False)
        parts = []
        for p in toks:
            if p.kind in ("word", "num"):
                parts.append(p.val)
            elif p.kind == "cmd" and (p.val in GREEK or p.val in ("max", "min", "infty")):
                parts.append(p.val)
            elif p.kind == "cmd" and (p.val in TEXTLIKE or p.val in DECORATIONS):
                continue
            elif p.kind == "delim" and self.src[p.s] in "{}":
                continue
            elif p.kind == "ch" and p.val in "*":
                parts.append(p.val)
            else:
                raise self.error("a subscript holds letters and digits (w_{2}, x_i, W_{out})",
                                 (toks[0].s, toks[-1].e))
        if not parts:
            raise self.error("an empty subscript", (us.s, toks[-1].e if toks else us.e))
        return "".join(parts), toks[-1].e

    def sized_subscript(self, name):
        """Whether the subscript ahead of I or K holds sizes: I_{n} is always the identity,
        K_{m,n} (two sizes) the commutation matrix, while K_{1} stays the symbol K_1."""
        if name == "I":
            return True
        depth = 0
        for u in self.toks[self.i:]:
            if self.is_brace(u, "{"):
                depth += 1
            elif self.is_brace(u, "}"):
                depth -= 1
                if depth <= 0:
                    return False
            elif depth == 1 and u.is_ch(","):
                return True
            elif depth == 0:
                return False
        return False

    def size_content(self, us):
        r"""The sizes of a subscript after the '_' token us, in the plain language, and
        where it ends: the printer's I_{m n}, I_{n^{2}}, K_{m,n}, \mathbf{0}_{m\times n}
        are I(m n), I(n n), K(m, n), zeros(m, n)."""
        toks = self.arg_tokens(us, one_letter=False)
        sizes, factors = [], []
        k = 0
        while k < len(toks):
            p = toks[k]
            k += 1
            if self.is_brace(p, "{") or self.is_brace(p, "}"):
                continue
            if p.kind in ("word", "num") or p.kind == "cmd" and p.val in GREEK:
                factors.append(p.val)
            elif p.is_ch("^") and factors:
                power = [q for q in toks[k:k + 3] if not (self.is_brace(q, "{") or self.is_brace(q, "}"))]
                if not power or power[0].kind != "num" or not power[0].val.isdigit():
                    raise self.error("a size's power is a whole number (I_{n^{2}})", p)
                factors.extend([factors[-1]] * (int(power[0].val) - 1))
                while k < len(toks) and toks[k] is not power[0]:
                    k += 1
                k += 1
            elif p.is_ch(",") or p.is_cmd("times"):
                if not factors:
                    raise self.error("a size is missing", p)
                sizes.append(" ".join(factors))
                factors = []
            elif p.is_ch("*") or p.is_cmd("cdot") or p.kind == "cmd" and p.val in TEXTLIKE | DECORATIONS:
                continue
            else:
                raise self.error("a size subscript holds sizes (I_{n}, K_{m,n}, "
                                 "\\mathbf{0}_{m\\times n})", (toks[0].s, toks[-1].e))
        if not factors:
            raise self.error("a size is missing", (us.s, toks[-1].e if toks else us.e))
        sizes.append(" ".join(factors))
        return ", ".join(sizes), toks[-1].e

    def arg_tokens(self, owner, one_letter=True):
        """The tokens of one argument: a {...} group, or one token (a number, a letter, a
        command; '-' with the token after it)."""
        t = self.peek()
        if one_letter and t is not None and len(t.val) > 1 and (
                t.kind == "word" or t.kind == "num" and t.val.isdigit()):
            # X^TAX is X^T A X: a superscript without braces is one letter
            self.toks[self.i] = _Tok(t.kind, t.val[1:], t.s + 1, t.e)
            self.toks.insert(self.i, _Tok(t.kind, t.val[0], t.s, t.s + 1))
            t = self.peek()
        if t is None:
            raise self.error(f"'{self.src[owner.s:owner.e]}' needs an argument", owner)
        if t.kind == "delim" and self.src[t.s] == "{":
            depth = 0
            start = self.i
            while True:
                u = self.peek()
                if u is None:
                    raise self.error("'{' is never closed", t)
                self.take()
                if u.kind == "delim" and self.src[u.s] == "{":
                    depth += 1
                elif u.kind == "delim" and self.src[u.s] == "}":
                    depth -= 1
                    if depth == 0:
                        return self.toks[start:self.i]
        self.take()
        if t.is_ch("-", "−") and self.peek() is not None:
            return [t, self.take()]
        if t.kind == "cmd" and t.val in TEXTLIKE | DECORATIONS and self.peek() is not None:
            return [t] + self.arg_tokens(t)
        return [t]

    def sub_translate(self, toks):
        """Translate a slice of tokens in place (spans stay those of the source)."""
        saved = self.toks, self.i, self.closers
        self.toks, self.i, self.closers = toks, 0, []
        try:
            self.expr()
            if self.i < len(self.toks):
                raise self._unknown_close(self.toks[self.i])
        finally:
            self.toks, self.i, self.closers = saved

    def _unknown_close(self, t):
        return self.error(f"'{self.src[t.s:t.e]}' closes nothing", t)

    def argument(self, owner):
        """One argument ({...} or a single token), translated inside parentheses."""
        toks = self.arg_tokens(owner)
        if toks and toks[0].kind == "delim" and self.src[toks[0].s] == "{":
            toks = toks[1:-1]
        if not toks:
            raise self.error(f"'{self.src[owner.s:owner.e]}' needs an argument", owner)
        self.emit("(", toks[0].s, toks[0].s)
        self.sub_translate(toks)
        self.emit(")", toks[-1].e, toks[-1].e)

    def text_arg(self, t):
        toks = self.arg_tokens(t)
        inner = [p for p in toks if not (p.kind == "delim" and self.src[p.s] in "{}")]
        if not inner or not all(p.kind in ("word", "num") or p.is_ch("_") for p in inner):
            raise self.error(f"\\{t.val}{{...}} must hold a name (letters, digits, _)",
                             (t.s, toks[-1].e if toks else t.e))
        return "".join(p.val for p in inner), toks[-1].e

    def decorated(self, t):
        """\\mathbf{x}, \\boldsymbol{\\Sigma}, \\bm{W}_1: the symbol itself; \\mathit{eps}, the
        printer's name of several letters, is one symbol (not e p s)."""
        toks = self.arg_tokens(t)
        inner = [p for p in toks if not (p.kind == "delim" and self.src[p.s] in "{}")]
        if len(inner) > 1 and all(p.kind == "cmd" and p.val in DECORATIONS for p in inner[:-1]):
            inner = inner[-1:]          # \hat{\mathbf{x}}, \boldsymbol{\mathit{x}}
        if len(inner) == 1 and inner[0].val in ("0", "1") and self.peek() is not None \
                and self.peek().is_ch("_"):
            # the printer's zeros and ones: \mathbf{0}_{n}, \mathbf{1}_{m\times n}
            us = self.take()
            sizes, end = self.size_content(us)
            self.emit(f"{'zeros' if inner[0].val == '0' else 'ones'}({sizes})", t.s, end)
            return None
        if inner and all(p.kind == "num" for p in inner):
            raise self.error(f"\\{t.val}{{{''.join(p.val for p in inner)}}}: a bold number (a ones "
                             f"or zeros vector) is not read from LaTeX; write ones(n) or zeros(n), "
                             f"or the plain number", (t.s, toks[-1].e))
        if t.val == "mathit" and inner:
            name = self.italic_name(inner)
            if name is not None:
                return self.emit(name, t.s, toks[-1].e)
        if len(inner) == 1 and inner[0].kind == "word" and (
                inner[0].val in KEEP or len(re.findall(r"[^0-9][0-9]*", inner[0].val)) == 1):
            return self.emit(inner[0].val, t.s, toks[-1].e)
        if len(inner) == 1 and inner[0].kind == "cmd" and inner[0].val in GREEK:
            return self.emit(inner[0].val, t.s, toks[-1].e)
        if not inner:
            raise self.error(f"\\{t.val}{{}} is empty", t)
        self.emit("(", t.s, t.s)
        self.sub_translate(inner)
        self.emit(")", toks[-1].e, toks[-1].e)
        return None

    def italic_name(self, inner):
        """The one symbol \\mathit{...} names (the printer's name of several letters:
        \\mathit{eps}, \\mathit{x\\_}, \\mathit{\\Delta qqa}, \\mathit{pi}), or None."""
        parts = []
        for p in inner:
            if p.kind in ("word", "num"):
                parts.append(p.val)
            elif p.kind == "cmd" and p.val in GREEK | {"pi"}:
                parts.append(p.val)
            elif p.kind == "cmd" and p.val == "_":
                parts.append("_")
            elif p.kind == "cmd" and p.val in TEXTLIKE | DECORATIONS or self.is_brace(p, "{") \
                    or self.is_brace(p, "}"):
                continue
            else:
                return None
        name = "".join(parts)
        return name if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) else None

    def function(self, name, t):
        """A function: with parentheses (or braces) it is called on them; without, it
        takes the product that follows (up to + - a closing bracket or another function)."""
        self.emit(name, t.s, t.e)
        n = self.peek()
        if n is None:
            raise self.error(f"'{self.src[t.s:t.e]} needs an argument", t)
        if n.kind == "delim" and n.val == ("(", "open"):
            self.atom()        # the parenthesized argument; postfix after it applies to the call
            return
        self.emit("(", n.s, n.s)
        self.func_arg(t)
        self.emit(")", self.out[-1][2], self.out[-1][2])

    def func_arg(self, ftok):
        t = self.peek()
        if t is None or self.closes(t, True) or t.is_ch("+", ",") or self.product_op(t):
            raise self.error(f"'{self.src[ftok.s:ftok.e]} needs an argument", ftok)
        if t.is_ch("-", "−"):
            self.take()
            self.emit("-", t.s, t.e)
            t = self.peek()
            if t is None:
                raise self.error(f"'{self.src[ftok.s:ftok.e]} needs an argument", ftok)
        if self.starts_function(t, self.i):
            self.factor()
            return
        self.factor()
        while True:
            t = self.peek()
            if t is None:
                return
            op = self.product_op(t)
            if op is not None:
                nxt = self.peek(1)
                if nxt is None or self.starts_function(nxt, self.i + 1):
                    return
                self.take()
                self.emit(op, t.s, t.e)
                self.factor()
                continue
            if self.starts_function(t, self.i) or not self.starts_atom(t, self.i):
                return
            self.factor()

    def postfix(self, name_idx):
        while True:
            t = self.peek()
            if t is None:
                return
            if t.is_ch("^"):
                self.take()
                self.superscript(t, "^", name_idx)
            elif t.is_ch(".^"):
                self.take()
                self.superscript(t, ".^")
            elif t.is_ch("_"):
                self.take()
                if name_idx is None:
                    raise self.error("a subscript must follow a symbol (w_{2}) or a norm "
                                     "(\\|x\\|_2)", t)
                piece = self.out[name_idx]
                if piece[0] in ("I", "K") and self.sized_subscript(piece[0]):
                    content, end = self.size_content(t)      # I_{m n}, K_{m,n}: sizes
                    piece[0] = f"{piece[0]}({content})"
                    piece[2] = end
                    continue
                content, end = self.sub_content(t)
                piece[0] += "_" + content
                piece[2] = end
            elif t.is_ch("'", "ᵀ", "²", "³", "⁻¹", "⁻ᵀ"):
                self.take()
                self.emit(t.val, t.s, t.e)
            elif t.is_cmd("top", "intercal", "T"):
                self.take()
                self.emit("ᵀ", t.s, t.e)
            elif t.is_cmd("prime"):
                self.take()
                self.emit("'", t.s, t.e)
            else:
                return

    def superscript(self, caret, op, name_idx=None):
        toks = self.arg_tokens(caret)
        end = toks[-1].e
        sig = []
        for p in toks:
            if p.kind == "cmd" and p.val in ("top", "intercal", "T"):
                sig.append("T")
            elif p.kind == "cmd" and p.val == "prime":
                sig.append("'")
            elif p.kind == "cmd" and (p.val in TEXTLIKE or p.val in DECORATIONS):
                continue
            elif p.kind == "delim" and self.src[p.s] in "{}":
                continue
            elif p.kind == "ch" and p.val == "−":
                sig.append("-")
            elif p.kind == "delim":
                sig.append(self.src[p.s:p.e])
            else:
                sig.append(str(p.val))
        sig = "".join(sig)
        if op == "^" and sig in ("T", "-T", "-1", "'"):
            self.emit({"T": "^T", "-T": "^-T", "-1": "^-1", "'": "'"}[sig], caret.s, end)
            return
        if toks[0].kind == "delim" and self.src[toks[0].s] == "{":
            toks = toks[1:-1]
        if not toks:
            raise self.error("an empty superscript", (caret.s, end))
        if op == "^" and toks[0].is_cmd("circ") and len(toks) > 1:
            op, toks = ".^", toks[1:]           # A^{\circ 2}: the Hadamard power
        elif op == "^" and name_idx is not None and name_idx == len(self.out) - 1 and \
                self.out[name_idx][0] == "e":
            # e^{x} is exp(x) (e^T, e^{-1} and e_i stay a symbol e)
            self.out[name_idx][0] = "exp"
            self.emit("(", caret.s, toks[0].s)
            self.sub_translate(toks)
            self.emit(")", end, end)
            return
        self.emit(op + "(", caret.s, toks[0].s)
        self.sub_translate(toks)
        self.emit(")", end, end)


def translate(src):
    """(plain text, spans): spans[k] is the (start, end) in src of the k-th character."""
    toks = _tokens(src)
    if not toks:
        raise ParseError("empty expression", (0, max(1, len(src))))
    tr = _Translator(src, toks)
    tr.expr()
    if tr.i < len(toks):
        t = toks[tr.i]
        raise tr.error(f"'{src[t.s:t.e]}' closes nothing", t)
    text = []
    spans = []
    for k, (piece, s, e) in enumerate(tr.out):
        if k:
            text.append(" ")
            spans.append((s, s))
        text.append(piece)
        spans.extend([(s, e)] * len(piece))
    return "".join(text), spans


def _mapper(src, spans):
    n = len(spans)

    def back(span):
        if span is None:
            return None
        a, b = span
        if a >= n:
            return (len(src), len(src) + 1)
        a = max(0, a)
        b = max(a + 1, min(b, n))
        s = min(spans[k][0] for k in (a, b - 1))
        e = max(spans[k][1] for k in (a, b - 1))
        return (s, max(e, s + 1))
    return back


def parse_latex(src, parse, max_length):
    """The raw tree of LaTeX src, parsed with parse (the plain parser, which takes at most
    max_length characters) from its translation; the spans of the tree and of errors point
    into src."""
    if len(src) > max_length:
        raise ParseError(f"the expression has {len(src)} characters; the limit is {max_length}",
                         (max_length, len(src)), src)
    try:
        text, spans = translate(src)
    except ParseError as err:
        err.text = src
        raise
    except RecursionError:
        raise ParseError("the expression is nested too deeply", None, src) from None
    back = _mapper(src, spans)
    try:
        tree = parse(text)
    except ParseError as err:
        err.span = back(err.span)
        err.text = src
        raise
    seen = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        span = getattr(node, "span", None)
        if span is not None:
            node.span = back(span)
        stack.extend(a for a in node.args if hasattr(a, "args"))
    return tree


def plain_name(text):
    """The plain name of a symbol written in LaTeX (\\Sigma, \\mathbf{x}, w_{2}), as the
    LaTeX input reads it; text without a backslash is returned as it is."""
    if not isinstance(text, str) or ("\\" not in text and "_{" not in text):
        return text
    try:
        out, _ = translate(text)
    except ParseError as err:
        err.text = text
        raise
    name = out.strip()
    if not re.fullmatch(r"[A-Za-z\u0370-\u03FF][A-Za-z0-9_\u0370-\u03FF]*", name):
        raise ParseError(f"{text.strip()} is not the name of a symbol", (0, len(text)), text)
    return name


def plain_names(wrt, symbols):
    """wrt (a name, "U,V" or a list) and the keys of symbols, LaTeX names made plain."""
    if isinstance(wrt, str):
        wrt = ",".join(plain_name(w) for w in wrt.split(",")) if "," in wrt else plain_name(wrt)
    elif isinstance(wrt, (list, tuple)):
        wrt = type(wrt)(plain_name(w) for w in wrt)
    if symbols:
        symbols = {plain_name(k): v for k, v in symbols.items()}
    return wrt, symbols


def read_back_name(name):
    """The name the LaTeX reader gives the printed LaTeX of the plain name ``name``: A1
    prints A_{1}, which reads back as A_1 (CONTRACT §5.4: w_{2} is w_2); most names read
    back as themselves."""
    from .printing import _latex_name
    return plain_name(_latex_name(name))

