"""The intermediate representation: Python expressions and statements as frozen data.

An expression is a small tree (:class:`Name`, :class:`Const`, :class:`Call`,
:class:`Bin`, :class:`Neg`, :class:`Attr`, :class:`Method`, :class:`Index`); a
statement knows the names it reads (``reads``) and the ones it writes (``writes``).
A function body is a tuple of statements.  The passes rewrite these tuples; only
``printer`` turns them into text, so no pass ever looks at generated source.

Every statement also carries ``rep`` (how each value it writes is held: "S" a
scalar, "V" a 1-D array, "M" a 2-D array) and a ``comment`` for the reader.
"""
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional, Tuple


# ----------------------------------------------------------------------------- expressions


class Node:
    """An expression.  ``names`` is the set of variable names it reads."""

    __slots__ = ()

    def children(self):
        return ()

    def map(self, fn):
        """This node with fn applied to each child expression."""
        return self

    @property
    def names(self):
        out = set()
        stack = [self]
        while stack:
            n = stack.pop()
            if isinstance(n, Name):
                out.add(n.id)
            else:
                stack.extend(n.children())
        return out


@dataclass(frozen=True)
class Name(Node):
    """A variable: a parameter, a temporary, a size."""
    id: str


@dataclass(frozen=True)
class Const(Node):
    """A literal, already spelt (``2.0``, ``(-0.5)``, ``3``, ``float('nan')``)."""
    text: str

    @property
    def value(self):
        try:
            return float(self.text.strip("()"))
        except ValueError:
            return None


@dataclass(frozen=True)
class Lib(Node):
    """A library object that is not a variable (``torch.float64``, ``np.newaxis``)."""
    path: str


@dataclass(frozen=True)
class Call(Node):
    """func(args..., key=value...): func a library function or a helper's name."""
    func: str
    args: Tuple[Node, ...] = ()
    kwargs: Tuple[Tuple[str, Node], ...] = ()

    def children(self):
        return self.args + tuple(v for _, v in self.kwargs)

    def map(self, fn):
        return Call(self.func, tuple(fn(a) for a in self.args), tuple((k, fn(v)) for k, v in self.kwargs))


@dataclass(frozen=True)
class Bin(Node):
    """left op right, op one of + - * / @ ** > <= and."""
    op: str
    left: Node
    right: Node

    def children(self):
        return (self.left, self.right)

    def map(self, fn):
        return Bin(self.op, fn(self.left), fn(self.right))


@dataclass(frozen=True)
class Neg(Node):
    arg: Node

    def children(self):
        return (self.arg,)

    def map(self, fn):
        return Neg(fn(self.arg))


@dataclass(frozen=True)
class Attr(Node):
    """obj.attr (``a.T``)."""
    obj: Node
    attr: str

    def children(self):
        return (self.obj,)

    def map(self, fn):
        return Attr(fn(self.obj), self.attr)


@dataclass(frozen=True)
class Method(Node):
    """obj.method(args...) (``r.reshape(n, m)``, ``a.sum(0)``)."""
    obj: Node
    method: str
    args: Tuple[Node, ...] = ()

    def children(self):
        return (self.obj,) + self.args

    def map(self, fn):
        return Method(fn(self.obj), self.method, tuple(fn(a) for a in self.args))


@dataclass(frozen=True)
class Slice(Node):
    """lo:hi inside an index (either may be None)."""
    lo: Optional[Node] = None
    hi: Optional[Node] = None

    def children(self):
        return tuple(x for x in (self.lo, self.hi) if x is not None)

    def map(self, fn):
        return Slice(None if self.lo is None else fn(self.lo), None if self.hi is None else fn(self.hi))


@dataclass(frozen=True)
class Index(Node):
    """obj[items...]: items are expressions, Slice or Const("None")."""
    obj: Node
    items: Tuple[Node, ...]

    def children(self):
        return (self.obj,) + self.items

    def map(self, fn):
        return Index(fn(self.obj), tuple(fn(a) for a in self.items))


@dataclass(frozen=True)
class Tuple_(Node):
    """(a, b, ...), for shapes and returned pairs."""
    items: Tuple[Node, ...]

    def children(self):
        return self.items

    def map(self, fn):
        return Tuple_(tuple(fn(a) for a in self.items))


def substitute(node, mapping):
    """node with each Name whose id is in mapping replaced by mapping[id] (an expression)."""
    def go(n):
        if isinstance(n, Name):
            return mapping.get(n.id, n)
        return n.map(go)
    return go(node)


def rename_expr(node, mapping):
    """node with names renamed (mapping: id -> id)."""
    if not mapping:
        return node

    def go(n):
        if isinstance(n, Name):
            new = mapping.get(n.id)
            return n if new is None else Name(new)
        return n.map(go)
    return go(node)


def is_number(n):
    """Whether n is Python arithmetic on literals only (2.0 + 0.5: a float, not an array)."""
    stack = [n]
    while stack:
        m = stack.pop()
        if not isinstance(m, (Const, Bin, Neg)):
            return False
        stack.extend(m.children())
    return True


def is_name(n):
    return isinstance(n, Name)


def is_transposed_name(n):
    """a.T for a name a."""
    return isinstance(n, Attr) and n.attr == "T" and isinstance(n.obj, Name)


def count_nodes(n, limit=None):
    """The number of nodes of an expression (counting stops past limit)."""
    k, stack = 0, [n]
    while stack:
        m = stack.pop()
        k += 1
        if limit is not None and k > limit:
            break
        stack.extend(m.children())
    return k


# ----------------------------------------------------------------------------- statements


class Stmt:
    """A statement: ``reads`` (names it reads), ``writes`` (names it binds)."""

    comment = None

    @property
    def writes(self):
        return ()

    @cached_property
    def reads(self):
        return frozenset()

    def rename(self, mapping):
        return self


@dataclass(frozen=True)
class Assign(Stmt):
    """targets = value (several targets: a tuple unpacked).  rep: one per target."""
    targets: Tuple[str, ...]
    value: Node
    rep: Tuple[str, ...]
    comment: Optional[str] = None

    @property
    def writes(self):
        return self.targets

    @cached_property
    def reads(self):
        return frozenset(self.value.names)

    def rename(self, mapping):
        return Assign(tuple(mapping.get(t, t) for t in self.targets), rename_expr(self.value, mapping),
                      self.rep, self.comment)


@dataclass(frozen=True)
class AddTo(Stmt):
    """target += value."""
    target: str
    value: Node
    comment: Optional[str] = None

    @cached_property
    def reads(self):
        return frozenset(self.value.names) | {self.target}

    def rename(self, mapping):
        return AddTo(mapping.get(self.target, self.target), rename_expr(self.value, mapping), self.comment)


@dataclass(frozen=True)
class Store(Stmt):
    """target[index] = value (a block of rows of a preallocated result)."""
    target: str
    index: Tuple[Node, ...]
    value: Node
    comment: Optional[str] = None

    @cached_property
    def reads(self):
        out = set(self.value.names) | {self.target}
        for i in self.index:
            out |= i.names
        return frozenset(out)

    def rename(self, mapping):
        return Store(mapping.get(self.target, self.target), tuple(rename_expr(i, mapping) for i in self.index),
                     rename_expr(self.value, mapping), self.comment)


@dataclass(frozen=True)
class Del(Stmt):
    names: Tuple[str, ...]

    @cached_property
    def reads(self):
        return frozenset(self.names)

    def rename(self, mapping):
        return Del(tuple(mapping.get(t, t) for t in self.names))


@dataclass(frozen=True)
class Return(Stmt):
    """return value (a Tuple_ of several)."""
    value: Node

    @cached_property
    def reads(self):
        return frozenset(self.value.names)

    def rename(self, mapping):
        return Return(rename_expr(self.value, mapping))


@dataclass(frozen=True)
class If(Stmt):
    """if cond: body (no else; the dispatch to the row-block function)."""
    cond: Node
    body: Tuple[Stmt, ...]
    comment: Optional[str] = None

    @property
    def writes(self):
        out = []
        for s in self.body:
            out.extend(s.writes)
        return tuple(out)

    @cached_property
    def reads(self):
        out = set(self.cond.names)
        for s in self.body:
            out |= s.reads
        return frozenset(out)

    def rename(self, mapping):
        return If(rename_expr(self.cond, mapping), tuple(s.rename(mapping) for s in self.body), self.comment)


@dataclass(frozen=True)
class For(Stmt):
    """for var in range(start, stop, step): body."""
    var: str
    range_args: Tuple[Node, ...]
    body: Tuple[Stmt, ...]
    comment: Optional[str] = None

    @property
    def writes(self):
        out = [self.var]
        for s in self.body:
            out.extend(s.writes)
        return tuple(out)

    @cached_property
    def reads(self):
        out = set()
        for a in self.range_args:
            out |= a.names
        for s in self.body:
            out |= s.reads
        return frozenset(out)

    def rename(self, mapping):
        return For(mapping.get(self.var, self.var), tuple(rename_expr(a, mapping) for a in self.range_args),
                   tuple(s.rename(mapping) for s in self.body), self.comment)


# ----------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Function:
    """One generated function: its name, parameters (positional, then keyword-only
    sizes), docstring, body, and the temporaries the lowering made (the names the
    passes may rename or drop)."""
    name: str
    params: Tuple[str, ...]
    kwonly: Tuple[str, ...]
    doc: str
    body: Tuple[Stmt, ...]
    temps: frozenset = field(default_factory=frozenset)
    keep: frozenset = field(default_factory=frozenset)     # names the passes leave alone
    sizes: frozenset = field(default_factory=frozenset)    # the sizes read from arguments' shapes

    def with_body(self, body, temps=None):
        return Function(self.name, self.params, self.kwonly, self.doc, tuple(body),
                        self.temps if temps is None else frozenset(temps), self.keep, self.sizes)


@dataclass(frozen=True)
class Module:
    """A generated module: docstring, import lines, helper definitions (source text of
    the fixed helpers, which are not generated), and the functions."""
    doc: str
    imports: Tuple[str, ...]
    helpers: Tuple[str, ...]
    functions: Tuple[Function, ...]


def walk_stmts(body):
    """Every statement of a body, the bodies of loops and conditions included."""
    stack = list(reversed(body))
    while stack:
        s = stack.pop()
        yield s
        if isinstance(s, (If, For)):
            stack.extend(reversed(s.body))


def name_list(node):
    """The names an expression reads, once per occurrence."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            out.append(n.id)
        else:
            stack.extend(n.children())
    return out


def occurrences(s):
    """The names a statement reads, once per occurrence (a loop's or a condition's body
    not included: walk_stmts reaches those)."""
    if isinstance(s, For):
        nodes = list(s.range_args)
    elif isinstance(s, If):
        nodes = [s.cond]
    elif isinstance(s, (Assign, Return)):
        nodes = [s.value]
    elif isinstance(s, AddTo):
        return [s.target] + name_list(s.value)
    elif isinstance(s, Store):
        nodes = [s.value] + list(s.index)
        return [s.target] + [n for x in nodes for n in name_list(x)]
    elif isinstance(s, Del):
        return list(s.names)
    else:
        return []
    return [n for x in nodes for n in name_list(x)]
