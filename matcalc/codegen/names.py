"""Safe, unique Python identifiers for the symbols and temporaries of generated code."""
import builtins
import keyword
import unicodedata

_LIB_NAMES = {"np", "numpy", "jnp", "jax", "torch", "math", "f_and_grad", "hessian",
              "f_grad_hessian"}
RESERVED = (set(keyword.kwlist) | set(getattr(keyword, "softkwlist", ())) | set(dir(builtins))
            | _LIB_NAMES)


def python_name(name):
    """A safe Python identifier for a symbol name (not yet made unique): keywords,
    builtins and library names get a trailing underscore, other characters are NFKC-
    normalised (as Python does) or replaced."""
    n = unicodedata.normalize("NFKC", str(name))
    if not n.isidentifier():
        n = "".join(ch if (ch == "_" or ch.isalnum()) else "_" for ch in n)
        if not n.isidentifier():
            n = "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else "_" for ch in n)
        if not n or not (n[0].isalpha() or n[0] == "_"):
            n = "s_" + n
    if n.startswith("_"):
        n = n.lstrip("_") or "s"
    if n in RESERVED or keyword.iskeyword(n):
        n = n + "_"
    return n


class Names:
    """Unique identifiers within one generated module or function."""

    def __init__(self, used=()):
        self.used = set(used)

    def take(self, want):
        name, i = want, 2
        while name in self.used or name in RESERVED or keyword.iskeyword(name):
            name = f"{want}_{i}"
            i += 1
        self.used.add(name)
        return name

    def copy(self):
        return Names(self.used)
