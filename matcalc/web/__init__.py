"""The web playground, ``matcalc serve``: a local page that derives as you type, with
the rendered answer (KaTeX, vendored in static/katex), the steps, the numeric check and
generated code.  Standard library only; imported only by ``matcalc serve``."""
from .server import PlaygroundServer, serve

__all__ = ["PlaygroundServer", "serve"]
