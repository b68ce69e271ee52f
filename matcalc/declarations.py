"""What the user declared: symbols= (or --let) checked, the expression typed by it, the
variable's name checked, and the notes on a symbol whose kind came from its first letter
where a scalar also fits.

A declaration is a dict name -> kind ("symmetric", "matrix(m,n)", "scalar", ...); a
name that is not a symbol, I, a function, or a symbol of another script that looks
like a Latin letter is a MatcalcError that says why (and the nearest symbol).
"""
import re
from collections.abc import Mapping

from . import expr as E
from . import shapes as S
from .errors import MatcalcError
from .parse import FUNCTION_NAMES, LOOKALIKES as _LOOKALIKES, parse_raw

NAME_RE = re.compile(r"^[A-Za-z\u0370-\u03FF][A-Za-z0-9_\u0370-\u03FF]*$")    # a symbol's name
NAMES_IN = re.compile(r"[A-Za-z\u0370-\u03FF][A-Za-z0-9_\u0370-\u03FF]*")     # names in a text


def typed(text, symbols=None, extra=()):
    """(typed tree, {name: typed Sym}) of text under the declarations symbols=."""
    raw = parse_raw(text, reserved=extra)       # a where clause may not define the variable
    return S.infer(raw, declarations(symbols, text), text, extra)


def declarations(symbols, text=None):
    """symbols= as a dict of declarations: a mapping whose keys are symbol names (not
    I, not a function, not empty or a number); a MatcalcError that says why otherwise."""
    if symbols is None:
        return None
    if not isinstance(symbols, Mapping):
        raise MatcalcError(f"symbols= takes a dict of declarations such as "
                           f"{{\"A\": \"symmetric\", \"X\": \"matrix(m,n)\"}}, got "
                           f"{type(symbols).__name__} {symbols!r}")
    for name in symbols:
        if not isinstance(name, str):
            raise MatcalcError(f"cannot declare {name!r}: a symbol's name is a string")
        shown = name if name.strip() else "an empty name"
        if not name.strip():
            raise MatcalcError("cannot declare an empty name: write NAME=KIND, e.g. A=symmetric")
        if name == "I":
            raise MatcalcError("cannot declare I: I is the identity matrix, a reserved name")
        if name in FUNCTION_NAMES:
            raise MatcalcError(f"cannot declare {name}: {name} is a function of the language")
        if not NAME_RE.match(name):
            why = "a number" if name.strip()[:1].isdigit() or name.strip()[:1] == "." else \
                "not a symbol name (a letter, then letters, digits or _)"
            odd = [c for c in name if ord(c) > 127 and not ("\u0370" <= c <= "\u03FF")]
            if odd:
                import unicodedata
                c = odd[0]
                why = (f"not a symbol name: it contains {unicodedata.name(c, 'U+%04X' % ord(c))} "
                       f"(U+{ord(c):04X})" + (f", which looks like the Latin {c.translate(_LOOKALIKES)}"
                                              if c.translate(_LOOKALIKES) != c else ""))
                folded = name.strip().translate(_LOOKALIKES)
                if isinstance(text, str) and folded in NAMES_IN.findall(text):
                    why += f"; did you mean {folded}?"
            raise MatcalcError(f"cannot declare {shown!r}: {why}")
    return dict(symbols)


def check_declared(symbols, syms, text):
    """Every declared name is a symbol of the expression (or the variable): a
    declaration that names nothing is an error naming the nearest symbol."""
    for name in symbols or {}:
        if name in syms:
            continue
        import difflib
        names = sorted(syms)
        folded = name.translate(_LOOKALIKES)
        near = [n for n in names if n == folded] or [n for n in names if n.lower() == name.lower()] \
            or difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]}?" if near else ""
        if near and folded == near[0] and folded != name:
            hint += (f" ({name!r} is written with letters of another script that look like "
                     f"{near[0]!r})")
        raise MatcalcError(f"{name!r} is declared but is not a symbol of {text!r}{hint} "
                           f"(its symbols: {', '.join(names)})")


def check_wrt(wrt):
    """wrt as a symbol's name (stripped); a MatcalcError if it is not one."""
    if not isinstance(wrt, str) or not wrt.strip():
        raise MatcalcError(f"wrt must be the name of a symbol (or a list of names), got {wrt!r}")
    wrt = wrt.strip()
    if not NAME_RE.match(wrt) or wrt == "I" or wrt in FUNCTION_NAMES:
        raise MatcalcError(f"wrt={wrt!r} is not a symbol name")
    return wrt


def scalar_notes(text, f, syms, symbols):
    """Notes for an f that is a vector or matrix only because a symbol whose kind came
    from its first letter sits where a scalar also fits (||X w - y||^2 + lambda ||w||^2
    without lambda declared a scalar): f adds a scalar to an array, and each such
    symbol (or a smallest group of them), re-typed as a scalar, makes f a scalar.  A
    symbol that f is a function of alone (exp(x)) is not suspected."""
    if f.is_scalar or not E.contains(f, lambda n: isinstance(n, E.Fill)):
        return []       # no scalar added to an array: f is an array by design (t^2 a, exp(t A))
    declared = dict(symbols or {})
    present = E.symbols_of(f)
    if len(present) < 2:
        return []
    arrays = [n for n, s in syms.items() if n in present and not s.is_scalar]
    undeclared = [n for n in arrays if n not in declared]
    if len(arrays) < 2 or not undeclared or len(text) > 3000:
        return []       # f is about its one array (exp(x)); or too long to re-type cheaply
    notes = []
    raw = parse_raw(text)           # parsed once, typed once per suspect
    for name in undeclared[:8]:
        try:
            g, _ = S.infer(raw, {**declared, name: "scalar"}, text)
        except MatcalcError:
            continue
        if g.is_scalar:
            notes.append(_scalar_note(text, [name], syms))
    if notes or not 2 <= len(undeclared) <= 6 or len(text) > 500:
        return notes
    # several at once (a^T x + c + d)
    def scalar_with(names):
        try:
            return S.infer(raw, {**declared, **{n: "scalar" for n in names}}, text)[0].is_scalar
        except MatcalcError:
            return False
    # the smallest group (of two or three) that makes f a scalar
    from itertools import combinations, islice
    for k in (2, 3):
        for group in islice(combinations(undeclared, k), 40):
            if len(group) < len(arrays) and scalar_with(group):
                return [_scalar_note(text, list(group), syms)]
    return notes


def _scalar_note(text, names, syms):
    kinds = " and ".join(f"{n} is a {S.kind_string(syms[n]).split('(')[0]}" for n in names)
    one = len(names) == 1
    return (f"{text!r} is not a scalar only because {kinds} (a kind that comes from the first "
            f"letter); if {'it is a scalar' if one else 'they are scalars'}, declare "
            f"{'it' if one else 'them'}: {' '.join(f'--let {n}=scalar' for n in names)}, or "
            f"symbols={{{', '.join(f'{chr(34)}{n}{chr(34)}: {chr(34)}scalar{chr(34)}' for n in names)}}}")


def plain_names(wrt, symbols):
    """wrt and declared names written in LaTeX (\\Sigma, \\mathbf{x}) as their plain names."""
    keys = symbols if isinstance(symbols, Mapping) else ()      # anything else: declarations() says why
    if "\\" in str(wrt) or any("\\" in str(k) for k in keys):
        from .latex_input import plain_names as plain
        return plain(wrt, symbols)
    return wrt, symbols
