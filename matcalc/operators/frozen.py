"""The base class of the operator records: a frozen record from annotated fields.

What ``dataclasses.dataclass(frozen=True, eq=False)`` gives the records (a keyword or
positional ``__init__`` from the annotations and their defaults, ``__post_init__``,
read-only attributes, a repr), built without generating and compiling methods for each
class: ``matcalc diff`` imports every record class at each start, and the dataclass
machinery cost about 4 ms of it.  ``replace(**changes)`` makes a changed copy.
Equality is identity, as with ``eq=False``.
"""
from dataclasses import FrozenInstanceError
from typing import ClassVar


class factory:
    """A default made afresh for each record (dataclasses' default_factory)."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def _is_classvar(annotation):
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar or (
        isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")))


class Record:
    """A frozen record: the fields are the class's annotated names (ClassVar ones are not
    fields), in order, base classes' first; a field with a class-level value has that
    default (a ``factory`` one, a fresh value each time)."""

    _fields = ()
    _defaults = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields, defaults = [], {}
        for klass in reversed(cls.__mro__):
            for name, annotation in klass.__dict__.get("__annotations__", {}).items():
                if _is_classvar(annotation):
                    continue
                if name not in fields:
                    fields.append(name)
                if name in klass.__dict__:
                    defaults[name] = klass.__dict__[name]
                else:                   # annotated again without a value: no default
                    defaults.pop(name, None)
        seen_default = False
        for name in fields:
            if name in defaults:
                seen_default = True
            elif seen_default:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default after one with a default")
        cls._fields = tuple(fields)
        cls._defaults = defaults

    def __init__(self, *args, **kwargs):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, {len(args)} given")
        values = dict(zip(fields, args))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__}: field {name!r} given twice")
            values[name] = value
        put = object.__setattr__
        for name in fields:
            if name in values:
                put(self, name, values[name])
                continue
            if name not in self._defaults:
                raise TypeError(f"{type(self).__name__} needs the field {name!r}")
            default = self._defaults[name]
            put(self, name, default.make() if isinstance(default, factory) else default)
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def replace(self, **changes):
        """A copy with the given fields changed (dataclasses.replace)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)

    def __repr__(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({inner})"
