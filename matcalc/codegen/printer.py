"""Printing the IR as Python source: the one place that makes text.

Parentheses follow Python's precedence (an operand is parenthesised only where Python
would read it otherwise), so a pass that puts one expression inside another never has
to think about them.  A statement's comment goes after it, at column 50 where the
statement is shorter.
"""
import matcalc.codegen.ir as ir

_PREC = {"and": 4, ">": 6, "<=": 6, "<": 6, ">=": 6, "+": 11, "-": 11,
         "*": 12, "/": 12, "//": 12, "@": 12, "**": 14}
_NEG = 13
_ATOM = 100
COMMENT_COLUMN = 48


def prec(n):
    if isinstance(n, ir.Bin):
        return _PREC[n.op]
    if isinstance(n, ir.Neg):
        return _NEG
    return _ATOM


def expr(n):
    """The source of an expression."""
    if isinstance(n, ir.Name):
        return n.id
    if isinstance(n, ir.Const):
        return n.text
    if isinstance(n, ir.Lib):
        return n.path
    if isinstance(n, ir.Call):
        args = [expr(a) for a in n.args] + [f"{k}={expr(v)}" for k, v in n.kwargs]
        return f"{n.func}({', '.join(args)})"
    if isinstance(n, ir.Bin):
        p = _PREC[n.op]
        if n.op == "**":          # right-associative
            left = _wrap(n.left, prec(n.left) <= p)
            right = _wrap(n.right, prec(n.right) < p)
        else:
            # (y * t) @ A rather than y * t @ A: a product and a matrix product side by
            # side are parenthesised, though Python reads them left to right alike
            # and a negation as an operand is parenthesised: 2.0 * (-t), (-t) @ A
            left = _wrap(n.left, prec(n.left) < p or _mixed(n.left, n.op) or isinstance(n.left, ir.Neg))
            right = _wrap(n.right, prec(n.right) <= p or isinstance(n.right, ir.Neg))
        return f"{left} {n.op} {right}"
    if isinstance(n, ir.Neg):
        return "-" + _wrap(n.arg, prec(n.arg) < _NEG)
    if isinstance(n, ir.Attr):
        return f"{_operand(n.obj)}.{n.attr}"
    if isinstance(n, ir.Method):
        return f"{_operand(n.obj)}.{n.method}({', '.join(expr(a) for a in n.args)})"
    if isinstance(n, ir.Index):
        return f"{_operand(n.obj)}[{', '.join(expr(a) for a in n.items)}]"
    if isinstance(n, ir.Slice):
        return ("" if n.lo is None else expr(n.lo)) + ":" + ("" if n.hi is None else expr(n.hi))
    if isinstance(n, ir.Tuple_):
        items = [expr(a) for a in n.items]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"not an IR expression: {n!r}")


def _mixed(child, op):
    return isinstance(child, ir.Bin) and _PREC[child.op] == _PREC[op] and "@" in (child.op, op) \
        and child.op != op


def _wrap(n, paren):
    s = expr(n)
    return f"({s})" if paren else s


def _operand(n):
    """An expression before .attr, (...) or [...]."""
    s = expr(n)
    if prec(n) < _ATOM or (isinstance(n, ir.Const) and not s.startswith("(") and s[:1] in "-0123456789."):
        return f"({s})"
    return s


def _returned(n):
    if isinstance(n, ir.Tuple_):
        return ", ".join(expr(a) for a in n.items)
    return expr(n)


def statement(s):
    """The source of one statement, without indentation or comment (its first line only
    for a loop or a condition)."""
    if isinstance(s, ir.Assign):
        return f"{', '.join(s.targets)} = {expr(s.value)}"
    if isinstance(s, ir.AddTo):
        return f"{s.target} += {expr(s.value)}"
    if isinstance(s, ir.Store):
        return f"{s.target}[{', '.join(expr(i) for i in s.index)}] = {expr(s.value)}"
    if isinstance(s, ir.Del):
        return "del " + ", ".join(s.names)
    if isinstance(s, ir.Return):
        return "return " + _returned(s.value)
    if isinstance(s, ir.If):
        return f"if {expr(s.cond)}:"
    if isinstance(s, ir.For):
        return f"for {s.var} in range({', '.join(expr(a) for a in s.range_args)}):"
    raise TypeError(f"not an IR statement: {s!r}")


def body(stmts, indent="    "):
    """The lines of a body (nested bodies indented further)."""
    out = []
    for s in stmts:
        line = indent + statement(s)
        if s.comment:
            pad = max(1, COMMENT_COLUMN - len(line))
            line = f"{line}{' ' * pad}  # {s.comment}"
        out.append(line)
        if isinstance(s, (ir.If, ir.For)):
            out.extend(body(s.body, indent + "    "))
    return out


def _doc(text):
    """A docstring's text with its backslashes doubled (a LaTeX input: \\top, \\xi)."""
    return text.replace("\\", "\\\\")


def function(fn):
    """The source of an ir.Function."""
    args = list(fn.params)
    if fn.kwonly:
        args += ["*"] + list(fn.kwonly)
    lines = [f"def {fn.name}({', '.join(args)}):", f'    """{_doc(fn.doc)}"""']
    lines += body(fn.body)
    return "\n".join(lines) + "\n"


def module(m):
    """The source of an ir.Module."""
    parts = [_doc(m.doc), "\n".join(m.imports)]
    text = "\n\n".join(p for p in parts if p) + "\n\n\n"
    defs = [h.rstrip("\n") + "\n" for h in m.helpers] + [function(f).rstrip("\n") + "\n" for f in m.functions]
    return text + "\n\n".join(defs)
