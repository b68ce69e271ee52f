"""Text and LaTeX printers: one visitor, two styles.

The text form is the input language and reads back with ``matcalc.parse``: products
print with scalar factors first and divisions last (``2 t / (1 + t^2)``), sugar is
restored (``a - b``, ``X^-T``, ``A ./ B``, ``||x||``), and a parenthesis is written
exactly where the grammar's precedence needs one.  Precedence levels (loosest first):
sum 0, unary minus 1, product-like operators 2, postfix 3, atom 4.
"""
import re
from fractions import Fraction

from . import expr as E
from .errors import UnsupportedError
from .operators import ARRAY_RECORDS, elementwise, matrix_function, node_record, table

SUM, NEG, PROD, POST, ATOM = range(5)

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
         "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
         "Psi", "Omega", "varepsilon", "vartheta", "varphi", "varrho", "varsigma"}
UNICODE_GREEK = {chr(0x3b1 + i): n for i, n in enumerate(
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
     "mu", "nu", "xi", "omicron", "pi", "rho", "varsigma", "sigma", "tau", "upsilon", "phi", "chi",
     "psi", "omega"])}
UNICODE_GREEK.update({"Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda", "Ξ": "Xi", "Π": "Pi",
                      "Σ": "Sigma", "Υ": "Upsilon", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega"})


def _int_text(n):
    """An integer as the language writes it: digits, or 2e100 when that is shorter."""
    s = str(n)
    if len(s) <= 15:
        return s
    stripped = s.rstrip("0")
    k = len(s) - len(stripped)
    if k >= 3:
        return f"{stripped}e{k}"
    return s


def _decimal_digits(v):
    """(digits, exp) with v = int(digits) * 10^exp exactly, digits without trailing
    zeros, for a positive Fraction whose denominator divides a power of 10; else None."""
    d = v.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return None
    k = max(twos, fives)                   # v = m / 10^k with an integer m
    m = str(v.numerator * (10 ** k) // v.denominator)
    digits = m.rstrip("0")
    return digits, len(m) - len(digits) - k


MAX_DIGITS = 17          # significant digits of a decimal printed exactly (a float needs ≤ 17)
SHORT_FRACTION = 10      # digits of p and q together for p/q to print as a fraction


def number_form(v):
    """How a positive non-integer Fraction prints: ("dec", digits, exp) for the decimal
    int(digits) × 10^exp, or ("frac", p, q).

    Numbers print as the user wrote them: a decimal literal is the Fraction of its
    decimal (0.1 is 1/10), so it prints back as that decimal; a decimal of more than 17
    significant digits (exact products of long literals) prints as the shortest decimal
    that reads back to the same float (repr of the float), which is what evaluation
    computes with.  A fraction p/q that is not a decimal prints exactly when it is short
    (2/3, 355/113: exact arithmetic made it), else as that shortest decimal too
    (0.7978845608028654 / 3)."""
    dec = _decimal_digits(v)
    if dec is not None and len(dec[0]) <= MAX_DIGITS:
        return ("dec",) + dec
    if dec is None and len(str(v.numerator)) + len(str(v.denominator)) <= SHORT_FRACTION:
        return ("frac", v.numerator, v.denominator)
    try:
        f = float(v)
    except OverflowError:
        f = float("inf")
    if 1e-300 < f < 1e300:
        import decimal
        t = decimal.Decimal(repr(f)).as_tuple()
        digits = "".join(map(str, t.digits))
        stripped = digits.rstrip("0")
        return "dec", stripped, t.exponent + len(digits) - len(stripped)
    if dec is not None:                    # beyond the float range: exact
        return ("dec",) + dec
    return ("frac", v.numerator, v.denominator)


def _decimal_text(digits, exp):
    """int(digits) × 10^exp as a literal of the language: 0.5, 123.25, 1e-40, 1.5e-40."""
    if exp >= 0:
        return _int_text(int(digits) * 10 ** exp)
    k = -exp
    zeros = k - len(digits)                # zeros after the point, before the digits
    if zeros < 5:
        whole = digits.rjust(k + 1, "0")
        return f"{whole[:-k]}.{whole[-k:]}"
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}e{exp + len(digits) - 1}"


def _num_text(v):
    """A nonnegative Fraction as a literal (0.5, 3, 1e-40, 2e100), or None when it
    prints as a fraction (1/3)."""
    if v.denominator == 1:
        return _int_text(v.numerator)
    form = number_form(v)
    if form[0] == "frac":
        return None
    return _decimal_text(form[1], form[2])


def _decimal_coefficient(v, quotient=False):
    """A non-integer coefficient printed in front as a decimal (0.002 w, 0.1 x,
    0.7978845608028654 x) rather than as a quotient (2 x / 3, x / 1024): a decimal of at
    most 6 significant digits (unless the product is a quotient already: x / (2 y)), or
    any number whose exact fraction is long."""
    form = number_form(v)
    if form[0] == "frac":
        return False
    long_fraction = len(str(v.numerator)) + len(str(v.denominator)) > SHORT_FRACTION
    return long_fraction or (len(form[1]) <= 6 and not quotient)


_ONE = Fraction(1)


def split_product(e):
    """(numeric coefficient, factors above the line, factors below it) of a product:
    s^-k goes below as s^k, the way a person writes a quotient."""
    coef = _ONE
    num, den = [], []
    for f in e.items:
        if isinstance(f, E.Num):
            coef = coef * f.value if coef is not _ONE else f.value
        elif isinstance(f, E.Pow) and isinstance(f.exp, E.Num) and f.exp.value < 0:
            den.append(f.base if f.exp.value == -1 else E.Pow(f.base, E.Num(-f.exp.value)))
        else:
            num.append(f)
    return coef, num, den


class Printer:
    latex = False

    def __init__(self):
        self.memo = {}

    # ---- style hooks
    def name(self, n):
        return n

    def size(self, s):
        if isinstance(s, E.SizeProd):
            return None
        return str(s)

    def join_sum(self, parts):
        return " ".join(parts)

    # ---- entry
    root = None

    def __call__(self, e):
        self.root = e
        return self.p(e)[0]

    def p(self, e):
        """(text, precedence level) of e."""
        k = id(e)
        hit = self.memo.get(k)
        if hit is not None and hit[0] is e:
            return hit[1]
        fn = getattr(self, "p_" + type(e).__name__, None)
        out = fn(e) if fn is not None else self.p_call_node(e)
        self.memo[k] = (e, out)
        return out

    def wrap(self, e, level):
        s, l = self.p(e)
        return self.paren(s) if l < level else s

    def paren(self, s):
        return f"\\left({s}\\right)" if self.latex else f"({s})"

    # ---- leaves
    def p_Num(self, e):
        v = e.value
        s = _num_text(abs(v))
        if s is None:
            s = f"{abs(v.numerator)} / {v.denominator}"
            lvl = PROD
        else:
            lvl = ATOM
        if v < 0:
            return "-" + s, NEG
        return s, lvl

    def p_Sym(self, e):
        return self.name(e.name), ATOM

    def p_Diff(self, e):
        n = self.name(e.var.name)
        return (f"\\mathrm{{d}}{n}" if self.latex else f"d{n}"), ATOM

    def p_Identity(self, e):
        s = self.size(e.n)
        if s is None:  # one identity of size 3 m n: I(3*m*n), as the declarations write sizes
            return f"I({self.size_text(e.n)})", ATOM
        return f"I({s})", ATOM

    def p_Zero(self, e):
        # zeros(n), zeros(m,n): a bare 0 would read back as a scalar
        if e.rows == 1 and e.cols == 1:
            return "0", ATOM
        return self.filled("zeros", e.rows, e.cols)

    def filled(self, fn, rows, cols):
        """ones(n), ones(m,n), zeros(…) of the language; a size that is a product as the
        declarations write it: zeros(m*n, p)."""
        r, c = self.size_text(rows), self.size_text(cols)
        return (f"{fn}({r})" if cols == 1 else f"{fn}({r},{c})"), ATOM

    def size_text(self, s):
        """A size as the language reads it: n, 3, m*n."""
        t = self.size(s)
        if t is not None:
            return t
        coef, names = E.size_factors(s)
        return "*".join(str(x) for x in ((coef,) if coef != 1 else ()) + tuple(names))

    def p_Commutation(self, e):
        m, n = self.size(e.m), self.size(e.n)
        return f"K({m},{n})", ATOM

    def p_Fill(self, e):
        # a broadcast scalar: inside a sum it prints as the scalar; alone, times ones(m,n)
        ones, level = self.filled("ones", e.rows, e.cols)
        if isinstance(e.value, E.Num) and e.value.value == 1:
            return ones, level
        v = self.wrap(e.value, POST)
        return f"{v} {ones if level >= POST else self.paren(ones)}", PROD

    # ---- sums
    def p_Add(self, e):
        parts = []
        for i, t in enumerate(e.items):
            if isinstance(t, E.Fill):
                s, l = self.p(t.value)
            else:
                s, l = self.p(t)
            if i == 0:
                parts.append(s if l >= NEG else self.paren(s))
                continue
            if s.startswith("-") and l >= NEG:
                parts.append("- " + s[1:].lstrip())
            else:
                parts.append("+ " + (s if l > SUM else self.paren(s)))
        return self.join_sum(parts), SUM

    # ---- products
    def p_Mul(self, e):
        coef, num_factors, den_factors = split_product(e)
        sign = "-" if coef.numerator < 0 else ""       # a Fraction's sign is its numerator's
        if sign:
            coef = -coef
        numer, denom = coef.numerator, coef.denominator
        parts = []
        if denom != 1 and _decimal_coefficient(coef, quotient=bool(den_factors)):
            parts.append(_num_text(coef))
            denom = 1
        elif numer != 1 or (not num_factors):
            parts.append(_int_text(numer))
        for f in num_factors:
            s, l = self.p(f)
            atomic = isinstance(f, E.Mul)          # a 1×1 product used as a scalar
            if l < POST or atomic or (parts and s.startswith("-")):
                if l <= PROD or atomic:
                    s = self.paren(s)
            parts.append(s)
        text = self.juxt(parts)
        if denom != 1 or den_factors:
            dparts = ([_int_text(denom)] if denom != 1 else [])
            for f in den_factors:
                s, l = self.p(f)
                dparts.append(self.paren(s) if (l <= PROD or isinstance(f, E.Mul)) else s)
            d = self.juxt(dparts)
            if len(dparts) > 1:
                d = self.paren(d)
            text = f"{text} / {d}"
        return sign + text, (NEG if sign else PROD)

    def juxt(self, parts):
        return " ".join(parts)

    def _binary(self, e, op):
        parts = []
        for i, f in enumerate(e.items):
            s, l = self.p(f)
            # left-associative: a later operand that is itself a product needs parentheses
            if l < PROD or (i > 0 and l <= PROD) or l == NEG:
                s = self.paren(s)
            parts.append(s)
        return f" {op} ".join(parts), PROD

    def p_Hadamard(self, e):
        if any(isinstance(f, E.Identity) for f in e.items) and not all(isinstance(f, E.Identity) for f in e.items):
            # the size of I follows from the other operand
            e = E.Hadamard(tuple(_BareI() if isinstance(f, E.Identity) else f for f in e.items))
        nums = [f for f in e.items if not (isinstance(f, E.ElemPow) and isinstance(f.exp, E.Num) and f.exp.value < 0)]
        dens = [f for f in e.items if f not in nums]
        if dens and nums:
            # a left-associated chain: the products first, then each division
            out = self._binary(E.Hadamard(tuple(nums)), ".*")[0] if len(nums) > 1 else self.wrap(nums[0], PROD + 1)
            for d in dens:
                base = d.base if d.exp.value == -1 else E.ElemPow(d.base, E.Num(-d.exp.value))
                s = self.wrap(base, POST)
                out = f"{out} ./ {s}"
            return out, PROD
        return self._binary(e, ".*")

    def p_Kron(self, e):
        return self._binary(e, "⊗")

    # ---- postfix
    def _post_operand(self, x):
        return self.wrap(x, ATOM if isinstance(x, (E.MatPow, E.Pow, E.ElemPow)) else POST)

    def p_Transpose(self, e):
        s = self._post_operand(e.arg)
        return f"{s}^T", POST

    def p_Inverse(self, e):
        if isinstance(e.arg, E.Transpose):
            s = self._post_operand(e.arg.arg)
            return f"{s}^-T", POST
        s = self._post_operand(e.arg)
        return f"{s}^-1", POST

    def p_MatPow(self, e):
        a = e.arg
        if isinstance(a, E.Inverse):      # a power of an inverse: X^-2 (the parser's reading), never (X^-1)^2
            if isinstance(a.arg, E.Transpose):
                return f"({self.wrap(a.arg.arg, ATOM)}^-{e.k})^T", POST     # (X^-2)^T, not (X^-T)^2
            return f"{self.wrap(a.arg, ATOM)}^-{e.k}", POST
        s = self.wrap(a, ATOM)
        return f"{s}^{e.k}", POST

    def _exponent(self, p):
        if isinstance(p, E.Pow) and isinstance(p.exp, E.Num) and p.exp.value < 0:
            p = E.Mul((E.ONE, p))           # an exponent n^-1 as 1/n: det(X)^(1/n)
            s, l = self.p(p)
            return "{" + s + "}" if self.latex else self.paren(s.replace(" / ", "/"))
        s, l = self.p(p)
        if self.latex:
            return "{" + s + "}"
        if isinstance(p, E.Num) and l == ATOM:
            return s
        if isinstance(p, E.Num) and p.value < 0 and _num_text(-p.value) is not None:
            return s.replace(" ", "")
        if isinstance(p, E.Sym):           # the grammar's exponent: a number, a name or (…)
            return s
        return self.paren(s)

    def p_Pow(self, e):
        b = e.base
        s = self.wrap(b, ATOM)
        if isinstance(b, (E.Transpose, E.Inverse, E.MatPow, E.Pow, E.ElemPow)):
            s = self.paren(self.p(b)[0])
        return f"{s}^{self._exponent(e.exp)}", POST

    def p_ElemPow(self, e):
        s = self.wrap(e.base, POST)
        if isinstance(e.base, (E.Pow, E.ElemPow)):
            s = self.paren(self.p(e.base)[0])
        return f"{s} .^ {self._exponent(e.exp)}", POST

    # ---- functions
    def call(self, name, arg, latex_name=None):
        s = self.p(arg)[0]
        if self.latex:
            ln = latex_name or f"\\operatorname{{{name}}}"
            return f"{ln}\\left({s}\\right)", ATOM
        return f"{name}({s})", ATOM

    def p_call_node(self, e):
        """A node without a p_ method, written as a call: its spelling from its record
        (matcalc/operators/nodes.py), tr(X) and \\operatorname{tr}\\left(X\\right)."""
        piece = "LaTeX printing" if self.latex else "text printing"
        rec = node_record(type(e), piece)
        if rec.text is None or len(e.args) != 1:
            raise UnsupportedError(f"the operator {rec.name} has no {piece}: give its record a "
                                   f"call spelling (text=) or the printers a p_{rec.name} method")
        return self.call(rec.text, e.args[0], rec.latex)

    def p_Det(self, e):
        if self.latex and not e.arg.is_scalar:   # |s| of a scalar would read back as abs(s)
            return f"\\left|{self.p(e.arg)[0]}\\right|", ATOM
        return self.p_call_node(e)

    def p_LogDet(self, e):
        if self.latex and not e.arg.is_scalar:
            return f"\\log\\left|{self.p(e.arg)[0]}\\right|", ATOM
        return self.p_call_node(e)

    def p_Norm(self, e):
        s = self.p(e.arg)[0]
        matrix = e.arg.shape[0] != 1 and e.arg.shape[1] != 1
        if "|" in s:                        # bars inside bars read ambiguously
            return f"norm({s})", ATOM
        return f"||{s}||" + ("_F" if matrix else ""), ATOM

    def p_SpecNorm(self, e):
        s = self.p(e.arg)[0]
        if "|" in s:                        # bars inside bars: parentheses keep them apart
            s = f"({s})"
        return f"||{s}||_2", ATOM

    def p_Unvec(self, e):
        s = self.p(e.arg)[0]
        if self.latex:
            return f"\\operatorname{{unvec}}_{{{self.size(e.m)}}}\\left({s}\\right)", ATOM
        return f"unvec({s}, {E.size_str(e.m)})", ATOM

    def p_DiagVec(self, e):
        if isinstance(e.arg, E.Identity) and e.arg.n is not None:
            return self.p_Fill(E.Fill(E.Num(1), e.arg.n, 1))    # diag(I(n)): the ones vector
        return self.p_call_node(e)

    def p_Func(self, e):
        return self.call(e.name, e.arg)

    def p_ArrayFunc(self, e):
        return self.call(e.name, e.arg)

    def p_Spectral(self, e):
        """λ_max(S), ||X||_*, ||x||_1, eigvec_max(S), polar(X): the record's template."""
        from .operators import SPECTRAL
        rec = SPECTRAL.get(e.name)
        if rec is None:
            raise UnsupportedError(f"the spectral function {e.name} has no record: it is not "
                                   f"declared in matcalc/operators/spectral.py")
        s = self.p(e.arg)[0]
        if self.latex:
            return rec.spell_latex(s), ATOM
        if rec.text.startswith("||") and "|" in s:      # bars inside bars read ambiguously
            s = f"({s})"
        return rec.spell(s), ATOM

    p_SpectralVec = p_Spectral

    # ---- functions of a square matrix (records in operators/matrix.py)
    def _p_number(self, p):
        """The exponent p of X^p, dpowm(X, E, p): 1/3, 0.3, -1/2."""
        s = _num_text(abs(p))
        if s is None:
            s = f"{abs(p.numerator)}/{p.denominator}"
        return ("-" if p < 0 else "") + s

    def p_MatFunc(self, e):
        rec = matrix_function(e.name, "text printing")
        if rec.text is not None:
            return self.call(rec.text, e.arg)
        base = self.wrap(e.arg, ATOM)
        if isinstance(e.arg, (E.Transpose, E.Inverse, E.MatPow, E.MatFunc)):
            base = self.paren(self.p(e.arg)[0])
        p = self._p_number(e.p)
        if self.latex:
            return f"{base}^{{{p}}}", POST
        return f"{base}^({p})" if "/" in p or p.startswith("-") else f"{base}^{p}", POST

    def _calls(self, name, args, p):
        parts = [self.p(a)[0] for a in args] + ([self._p_number(p)] if p is not None else [])
        inner = ", ".join(parts)
        if self.latex:
            return f"\\operatorname{{{name}}}\\left({inner}\\right)", ATOM
        return f"{name}({inner})", ATOM

    def p_Frechet(self, e):
        rec = matrix_function(e.name, "text printing")
        return self._calls(rec.frechet, (e.arg, e.dir), e.p)

    def p_FrechetJac(self, e):
        rec = matrix_function(e.name, "text printing")
        return self._calls(rec.jacobian, (e.arg,), e.p)


class _BareI(E.Identity):
    """An identity printed without its size, where an operand fixes it."""
    __slots__ = ()

    def __init__(self):
        super().__init__(None)


Printer.p__BareI = lambda self, e: ("I", ATOM)


# LaTeX spellings of Greek letters typed as Unicode: the ones LaTeX has a command for,
# and the capitals that look like Latin letters (LaTeX has no \Alpha) as upright Latin.
_GREEK_CHAR = {c: "\\" + n for c, n in UNICODE_GREEK.items()}
_GREEK_CHAR["ο"] = "o"  # LaTeX has no \omicron
_GREEK_CHAR.update({"ϑ": "\\vartheta", "ϕ": "\\phi", "ϖ": "\\varpi", "ϱ": "\\varrho", "ϵ": "\\epsilon"})
_GREEK_CHAR.update({c: f"\\mathrm{{{l}}}" for c, l in zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX")})

# the LaTeX command of each elementwise function that has one (from its record)
_LATEX_FUNCS = table("LaTeX command", lambda r: r.latex)
_LATEX_ARRAY_FUNCS = table("LaTeX command", lambda r: r.latex, ARRAY_RECORDS)


def _latex_scientific(digits, exp):
    """digits × 10^exp (digits a string without trailing zeros) as d.ddd × 10^{e}."""
    e = exp + len(digits) - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"10^{{{e}}}" if mant == "1" else f"{mant} \\times 10^{{{e}}}"


def _latex_int(n):
    """A nonnegative integer: digits, or 10 to a power when it is long (1e60 → 10^{60})."""
    s = str(n)
    stripped = s.rstrip("0")
    if len(s) > 15 and len(s) - len(stripped) >= 3:
        return _latex_scientific(stripped, len(s) - len(stripped))
    return s


def _latex_number(v):
    """A nonnegative Fraction in LaTeX and whether it is atomic: halves, quarters and
    eighths as \\frac{1}{2}, other decimals as decimals (0.1, 123.456), very long or very
    small ones with a power of 10 (10^{-12}, 2.5 \\times 10^{60}), short fractions as
    \\frac{1}{3} (number_form decides, as in text)."""
    p, q = v.numerator, v.denominator
    if q == 1:
        s = _latex_int(p)
        return s, s.isdigit()
    form = number_form(v)
    if form[0] == "dec" and q not in (2, 4, 8):
        digits, exp = form[1], form[2]
        k = -exp
        zeros = k - len(digits)                 # zeros after the point, before the digits
        if zeros < 5:
            whole = digits.rjust(k + 1, "0")
            return f"{whole[:-k]}.{whole[-k:]}", True
        return _latex_scientific(digits, exp), False
    return f"\\frac{{{_latex_int(p)}}}{{{_latex_int(q)}}}", False


class LatexPrinter(Printer):
    """LaTeX of a typed tree, for KaTeX and MathJax as much as for LaTeX itself.

    Transpose is ``^{\\top}``, inverse ``^{-1}``, ``X^{-\\top}``, Hadamard product and
    division ``\\odot`` and ``\\oslash``, elementwise power ``^{\\circ p}``, Kronecker
    ``\\otimes``, determinant ``\\left|X\\right|``, norms ``\\left\\|x\\right\\|`` and
    ``\\left\\|X\\right\\|_{F}``, scalar division ``\\frac``, sized identities ``I_{n}``
    and commutation matrices ``K_{m,n}``.  Greek names are spelled as letters
    (``Sigma`` → ``\\Sigma``, ``σ`` → ``\\sigma``) and trailing digits or an underscore
    make a subscript (``A1`` → ``A_{1}``, ``w_2`` → ``w_{2}``).  Nothing is ever put
    where TeX forbids it: no superscript on a superscript, no bare ``_`` or ``^``."""

    latex = True

    def __call__(self, e):
        # sigmoid prints as σ(x) unless σ already names a symbol of the expression
        self._sigma_taken = any(n in ("sigma", "σ") for n in E.symbols_of(e))
        return self.p(e)[0]

    # ---- names and sizes
    def name(self, n):
        return _latex_name(n)

    def size(self, s):
        if isinstance(s, E.SizeProd):           # m n, 2 n, n^{2}
            parts = [str(s[0])] if s[0] != 1 else []
            names = list(s[1:])
            for x in dict.fromkeys(names):
                k = names.count(x)
                parts.append(_latex_name(x) + (f"^{{{k}}}" if k > 1 else ""))
            return " ".join(parts)
        if isinstance(s, int):
            return str(s)
        return _latex_name(str(s))

    # ---- leaves
    def p_Num(self, e):
        v = e.value
        s, atomic = _latex_number(abs(v))
        if v < 0:
            return "-" + s, NEG
        return s, (ATOM if atomic else PROD)

    def p_Identity(self, e):
        return f"I_{{{self.size(e.n)}}}", ATOM        # I_{n}, I_{m n}, I_{n^{2}}

    p__BareI = lambda self, e: ("I", ATOM)  # noqa: E731

    def p_Zero(self, e):
        r, c = e.rows, e.cols
        if r == 1 and c == 1:
            return "0", ATOM
        if c == 1:
            return f"\\mathbf{{0}}_{{{self.size(r)}}}", ATOM
        if r == 1:
            return f"\\mathbf{{0}}_{{{self.size(c)}}}^{{\\top}}", POST
        return f"\\mathbf{{0}}_{{{self.size(r)}\\times {self.size(c)}}}", ATOM

    def p_Commutation(self, e):
        return f"K_{{{self.size(e.m)},{self.size(e.n)}}}", ATOM

    def p_Fill(self, e):
        r, c = e.rows, e.cols
        level = ATOM
        if c == 1:
            ones = f"\\mathbf{{1}}_{{{self.size(r)}}}"
        elif r == 1:
            ones, level = f"\\mathbf{{1}}_{{{self.size(c)}}}^{{\\top}}", POST
        else:
            ones = f"\\mathbf{{1}}_{{{self.size(r)}\\times {self.size(c)}}}"
        if isinstance(e.value, E.Num) and e.value.value == 1:
            return ones, level
        return self._juxt([self._factor(e.value), ones]), PROD

    # ---- products and fractions
    def _factor(self, f, alone=False, sole=False):
        """f as one factor of a product.  alone: the whole numerator or denominator of
        a \\frac, which needs no parenthesis; sole: the only factor besides a number,
        where a scalar product (x^T y) needs none either."""
        s, l = self.p(f)
        if alone:
            return s
        if isinstance(f, E.Mul) and sole and l == PROD:
            return s
        if l < POST or s.startswith("-") or isinstance(f, E.Mul):
            return self.paren(s)
        return s

    @staticmethod
    def _juxt(parts):
        out = ""
        for i, s in enumerate(parts):
            if i == 0:
                out = s
            elif s[:1].isdigit():   # 2 \cdot 3^{x}, not 2 3^{x}
                out += " \\cdot " + s
            else:
                out += " " + s
        return out

    def _side(self, coef, factors):
        if not factors:
            return _latex_int(coef)
        alone = coef == 1 and len(factors) == 1
        sole = len(factors) == 1
        parts = ([_latex_int(coef)] if coef != 1 else []) + [self._factor(f, alone, sole) for f in factors]
        return self._juxt(parts)

    def p_Mul(self, e):
        coef, num, den = split_product(e)
        sign = "-" if coef < 0 else ""
        coef = abs(coef)
        if den and coef.denominator != 1 and _decimal_coefficient(coef, quotient=True):
            # 0.7978845608028654 \frac{x}{y}: a long number stays a decimal in front
            text = self._juxt([_latex_number(coef)[0],
                               f"\\frac{{{self._side(1, num)}}}{{{self._side(1, den)}}}"])
        elif den:
            text = (f"\\frac{{{self._side(coef.numerator, num)}}}"
                    f"{{{self._side(coef.denominator, den)}}}")
        else:
            parts = []
            if coef != 1 or not num:
                parts.append(_latex_number(coef)[0])
            parts.extend(self._factor(f, sole=len(num) == 1) for f in num)
            text = self._juxt(parts)
        return sign + text, (NEG if sign else PROD)

    def _binary(self, e, op):
        # ⊙, ⊘ and ⊗ between products would read as binding tighter than the product:
        # every operand that is itself a product-like expression is parenthesized
        return f" {op} ".join(self._operand(f) for f in e.items), PROD

    def p_Kron(self, e):
        return self._binary(e, "\\otimes")

    def _operand(self, f):
        s, l = self.p(f)
        return self.paren(s) if (l <= PROD or isinstance(f, E.Mul)) else s

    def p_Hadamard(self, e):
        nums = [f for f in e.items
                if not (isinstance(f, E.ElemPow) and isinstance(f.exp, E.Num) and f.exp.value < 0)]
        dens = [f for f in e.items if f not in nums]
        if not (dens and nums):
            return self._binary(e, "\\odot")
        out = self._binary(E.Hadamard(tuple(nums)), "\\odot")[0] if len(nums) > 1 \
            else self._operand(nums[0])
        for d in dens:
            base = d.base if d.exp.value == -1 else E.ElemPow(d.base, E.Num(-d.exp.value))
            out = f"{out} \\oslash {self._operand(base)}"
        return out, PROD

    # ---- superscripts: a base that carries a superscript already is parenthesized
    def _sup_base(self, x):
        return self.wrap(x, ATOM)

    def p_Transpose(self, e):
        return f"{self._sup_base(e.arg)}^{{\\top}}", POST

    def p_Inverse(self, e):
        if isinstance(e.arg, E.Transpose):
            return f"{self._sup_base(e.arg.arg)}^{{-\\top}}", POST
        return f"{self._sup_base(e.arg)}^{{-1}}", POST

    def p_MatPow(self, e):
        a = e.arg
        if isinstance(a, E.Inverse):      # X^{-2}, (X^{-2})^{\top}: never (X^{-1})^{2}
            if isinstance(a.arg, E.Transpose):
                return f"\\left({self._sup_base(a.arg.arg)}^{{-{e.k}}}\\right)^{{\\top}}", POST
            return f"{self._sup_base(a.arg)}^{{-{e.k}}}", POST
        return f"{self._sup_base(e.arg)}^{{{e.k}}}", POST

    def p_Pow(self, e):
        p = e.exp
        if isinstance(p, E.Num) and p.value == Fraction(1, 2):
            return f"\\sqrt{{{self.p(e.base)[0]}}}", ATOM
        if isinstance(p, E.Num) and p.value < 0:
            return self.p_Mul(E.Mul((e,)))          # \frac{1}{s^{k}}
        return f"{self._sup_base(e.base)}^{{{self.p(p)[0]}}}", POST

    def p_ElemPow(self, e):
        return f"{self._sup_base(e.base)}^{{\\circ {self.p(e.exp)[0]}}}", POST

    # ---- functions
    def p_Norm(self, e):
        s = self.p(e.arg)[0]
        matrix = e.arg.shape[0] != 1 and e.arg.shape[1] != 1
        return f"\\left\\|{s}\\right\\|" + ("_{F}" if matrix else ""), ATOM

    def p_SpecNorm(self, e):
        return f"\\left\\|{self.p(e.arg)[0]}\\right\\|_{{2}}", ATOM

    def p_ArrayFunc(self, e):
        return self.call(e.name, e.arg, _LATEX_ARRAY_FUNCS.get(e.name))

    def p_Func(self, e):
        form = elementwise(e.name, "LaTeX form").latex_form
        if e.name == "abs" and not e.arg.is_scalar:
            # bars around an array read back as its determinant (CONTRACT §5.4): the
            # elementwise absolute value of an array is written as the function
            return self.call("abs", e.arg)
        if form is not None:
            return form.format(self.p(e.arg)[0]), ATOM
        latex_name = _LATEX_FUNCS.get(e.name)
        if latex_name == "\\sigma" and getattr(self, "_sigma_taken", False):
            latex_name = None           # σ is a symbol of the expression: \operatorname{sigmoid}
        return self.call(e.name, e.arg, latex_name)


def _latex_word(w, sub=False):
    """One name or subscript without underscores: Greek spelled as letters, several
    letters upright in a subscript (x_{\\mathrm{max}}) and as one italic word otherwise.
    A symbol named pi is \\mathit{pi}: \\pi reads back as the number π (CONTRACT §5.4)."""
    if w in ("pi", "π"):
        return "\\mathit{pi}"
    if w in GREEK:
        return "\\" + w
    if all(c in _GREEK_CHAR for c in w):
        return " ".join(_GREEK_CHAR[c] for c in w)
    if len(w) == 1:
        return w
    if w.isascii() and w.isalnum() and sub and len(w) <= 2:
        return w                                   # indices: x_{ij}
    if w.isdigit():
        return w
    body = "".join(_GREEK_CHAR[c] + " " if c in _GREEK_CHAR else c for c in w).strip()
    return f"\\mathrm{{{body}}}" if sub else f"\\mathit{{{body}}}"


def _latex_name(n, sub=False):
    """``A1`` → ``A_{1}``, ``w_2`` → ``w_{2}``, ``Sigma`` → ``\\Sigma``, ``x_a_b`` →
    ``x_{a_{b}}``; a name with a doubled or trailing underscore is one italic word."""
    if "_" in n:
        base, rest = n.split("_", 1)
        if not base or not rest or rest.startswith("_") or rest.endswith("_"):
            body = "".join(_GREEK_CHAR[c] + " " if c in _GREEK_CHAR else c for c in n).strip()
            return "\\mathit{" + body.replace("_", "\\_") + "}"
        return f"{_latex_word(base, sub)}_{{{_latex_name(rest, True)}}}"
    m = re.match(r"^(.*?\D)(\d+)$", n)
    if m and not sub:
        return f"{_latex_word(m.group(1))}_{{{m.group(2)}}}"
    return _latex_word(n, sub)


class AsciiPrinter(Printer):
    """The same text in ASCII spellings of the language (``kron(A, B)`` for A ⊗ B), for
    an output that cannot encode Unicode; it reads back as the same expression."""

    def p_Kron(self, e):
        out = self.p(e.items[0])[0]
        for f in e.items[1:]:
            out = f"kron({out}, {self.p(f)[0]})"
        return out, ATOM


def to_text(e, ascii=False):
    """The text of e in the input language (ascii=True: ASCII spellings only)."""
    return (AsciiPrinter() if ascii else Printer())(e)


def to_latex(e):
    return LatexPrinter()(e)
