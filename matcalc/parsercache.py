"""The built parser tables, cached between runs so that a command does not rebuild them
(about 0.1 s of each start-up).

A cache is a pickle, and loading a pickle runs whatever code it names: so the cache is
read only from a place that the user alone can write, and only after checking it:

* the folder is ``$MATCALC_CACHE``, else ``$XDG_CACHE_HOME/matcalc``, else
  ``~/.cache/matcalc``; it is created with mode 0700, and used only if it is a real
  folder (not a symbolic link) owned by the user, that neither group nor others can write;
* the file is opened relative to that folder with ``O_NOFOLLOW`` and used only if the
  opened file (``fstat``) is a regular file owned by the user that neither group nor
  others can write;
* it is written under a fresh name (``O_EXCL``, mode 0600) and renamed into place, so a
  reader never sees half a file.

Anything that fails a check is ignored (the parser is built from the grammar instead),
never trusted.  No shared temporary folder is ever read.
"""
import os
import stat

_MAGIC = b"matcalc-parser-cache 1\n"


def cache_dir():
    """The folder of the cache (not yet checked), or None when there is no home."""
    d = os.environ.get("MATCALC_CACHE")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not home or home == "~":
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "matcalc")


def _private(st, want_dir):
    """Whether st is the user's own folder (or regular file) that no one else can write."""
    kind_ok = stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)
    owner_ok = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return kind_ok and owner_ok and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _open_dir(create):
    """A descriptor of the checked cache folder, or None."""
    d = cache_dir()
    if d is None or not hasattr(os, "O_NOFOLLOW"):
        return None
    if create:
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
        except OSError:
            return None
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW
    try:
        fd = os.open(d, flags)
    except OSError:
        return None
    try:
        if _private(os.fstat(fd), want_dir=True):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def load(name, key, **options):
    """The Lark parser cached under name if the cache is the user's own and was built
    from the same grammar and lark (key), else None."""
    from lark import Lark
    dfd = _open_dir(create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except OSError:
        os.close(dfd)
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not _private(os.fstat(fh.fileno()), want_dir=False):
                return None
            if fh.readline() != _MAGIC or fh.readline() != key.encode() + b"\n":
                return None
            return Lark.__new__(Lark)._load(fh, **options)
    except Exception:  # noqa: BLE001 - a stale or damaged cache is rebuilt, never fatal
        return None
    finally:
        os.close(dfd)


def save(name, key, parser):
    """Store parser under name (silently nothing when the folder is not usable)."""
    from lark.lark import _LOAD_ALLOWED_OPTIONS
    dfd = _open_dir(create=True)
    if dfd is None:
        return
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + key.encode() + b"\n")
            parser.save(fh, _LOAD_ALLOWED_OPTIONS)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except Exception:  # noqa: BLE001 - no cache is not an error
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)
