"""The one family of errors matcalc raises.

Every error can carry the source text and a span (start, end) into it; ``str(e)`` is
the message, and ``e.render()`` adds the offending line with a caret under the span,
which is what the command line prints.
"""


class MatcalcError(Exception):
    """Base class of every error matcalc raises on purpose."""

    def __init__(self, message, span=None, text=None):
        super().__init__(message)
        self.message = message
        self.span = span          # (start, end) character offsets into text, or None
        self.text = text

    @property
    def position(self):
        return None if self.span is None else self.span[0]

    def with_text(self, text):
        if self.text is None:
            self.text = text
        return self

    def render(self):
        """The message, then the input with carets under the offending text."""
        lines = [f"{type(self).__name__}: {self.message}"]
        if self.text is not None and self.span is not None:
            text = self.text
            start, end = self.span
            start = max(0, min(start, len(text)))
            end = max(start + 1, min(end, len(text) + 1))
            # show one line of the input around the span, with visible control characters
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", start)
            line_end = len(text) if line_end < 0 else line_end
            shown = text[line_start:line_end]
            off = start - line_start
            if len(shown) > 100:                      # long input: a window around the span
                lo = max(0, off - 50)
                shown = ("…" if lo else "") + shown[lo:lo + 100] + ("…" if lo + 100 < len(shown) else "")
                off = off - lo + (1 if lo else 0)
            shown = "".join(c if c.isprintable() else "?" for c in shown)
            width = max(1, min(end - start, len(shown) - off + 1))
            lines.append("  " + shown)
            lines.append("  " + " " * off + "^" * width)
        return "\n".join(lines)


class ParseError(MatcalcError):
    """The text is not an expression of the language (carries the position)."""


class ShapeError(MatcalcError):
    """Sizes or kinds that cannot fit; the message names the operands."""


class UnsupportedError(MatcalcError):
    """An operation the engine cannot differentiate (or evaluate); names the operation."""


class EvaluationError(MatcalcError):
    """The expression has no value at the values given: a singular matrix where an inverse
    is taken, an array too large to build, ...; names the operation."""


class MissingDependencyError(MatcalcError, ImportError):
    """An optional library that the requested feature needs is not installed; the
    message says what to install.  Also an ImportError, for code that catches those."""


def require_module(module, what, install):
    """Import module for the feature what, or raise MissingDependencyError naming the
    pip command (install) that provides it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{what} needs {module}, which is not installed: {install}") from e
