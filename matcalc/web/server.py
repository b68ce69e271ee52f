"""The playground's HTTP server (standard library only): the page, its static files
(KaTeX vendored under static/katex), the rule catalogue at /rules, and
``POST /api/derive``.

Safety: it listens on 127.0.0.1 unless told otherwise; it answers only requests whose
Host (and Origin, when sent) names this server, against DNS rebinding; the API takes JSON
bodies of at most 64 KiB; every derivation runs in a worker process with a time limit
and a memory cap (worker.py); every response carries a strict Content-Security-Policy;
idle connections are closed after a timeout.
"""
import html
import ipaddress
import json
import os
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .worker import MEMORY_LIMIT, TIME_LIMIT, WORKERS, Pool

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY = 64 * 1024
IDLE_TIMEOUT = 15                      # seconds a connection may sit idle
MAX_EXPR = 8000                        # characters of an expression
MAX_LETS = 64

# KaTeX builds its HTML with the DOM (element.style), which style-src 'self' allows: no
# 'unsafe-inline' is needed for katex.render.  Nothing is inline, nothing is evaluated.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".woff2": "font/woff2", ".png": "image/png",
         ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8"}

LAYOUTS = ("gradient", "numerator", "denominator")
KINDS = ("derivative", "hessian")
CONVENTIONS = ("sym", "cookbook")


# the failures that are the server's, not the input's (an input error is answered with 200)
_FAILURE_STATUS = {"TimeLimit": 504, "Busy": 503, "WorkerCrashed": 503, "MemoryError": 503,
                   "InternalError": 500}


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _split_host(value):
    """'localhost:8000' -> ('localhost', 8000); '[::1]:80' -> ('::1', 80); None if unreadable."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port or 80
    except ValueError:
        return None


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    pool = None

    def __init__(self, host="127.0.0.1", port=8000, workers=WORKERS,
                 time_limit=TIME_LIMIT, memory_limit=MEMORY_LIMIT, test_hooks=False):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.host = host
        self.port = self.server_address[1]
        self.pool = Pool(workers=workers, time_limit=time_limit, memory_limit=memory_limit,
                                test_hooks=test_hooks)
        self.test_hooks = test_hooks

    @property
    def url(self):
        shown = self.host
        if shown in ("0.0.0.0", "::", ""):
            shown = "127.0.0.1"
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    def host_allowed(self, name, port):
        """A Host (or Origin) names this server: localhost, the loopback addresses, the
        bound host; when bound to every interface, any IP address (an IP literal cannot
        be rebound, a DNS name can)."""
        if port != self.port:
            return False
        names = {"localhost", "127.0.0.1", "::1", self.host.lower().strip("[]")}
        if name in names:
            return True
        return self.host in ("0.0.0.0", "::", "") and _is_ip(name)

    def handle_error(self, request, client_address):
        """A client that went away (a request aborted while typing) is no error; anything
        else is reported in one line, never as a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(f"matcalc: error while answering {client_address[0]}: {type(exc).__name__}: {exc}",
              file=sys.stderr)

    def service_actions(self):
        self.pool.replenish()

    def server_close(self):
        super().server_close()
        if self.pool is not None:
            self.pool.close()


class Handler(BaseHTTPRequestHandler):
    server_version = "matcalc-playground"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT             # socket timeout: an idle connection is closed

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - quiet; the page shows errors
        pass

    # ------------------------------------------------------------------ responses

    def _send(self, status, body, ctype, extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store" if ctype.startswith("application/json") else "no-cache")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj, ensure_ascii=False), "application/json; charset=utf-8")

    def _refuse(self, status, message):
        self.close_connection = True
        if self.path.startswith("/api/"):
            self._json(status, {"ok": False, "error": {"type": "Refused", "message": message,
                                                       "rendered": message, "span": None}})
        else:
            self._send(status, message + "\n", "text/plain; charset=utf-8")

    # ------------------------------------------------------------------ checks

    def _check_origin(self):
        host = self.headers.get("Host")
        where = _split_host(host) if host else None
        if where is None or not self.server.host_allowed(*where):
            raise Refused(HTTPStatus.FORBIDDEN, f"refused: the Host header {host!r} is not this server "
                          f"(open {self.server.url} instead)")
        origin = self.headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin) if origin != "null" else None
            try:
                ok = (parts is not None and parts.scheme == "http" and parts.hostname is not None
                      and self.server.host_allowed(parts.hostname.lower(), parts.port or 80))
            except ValueError:
                ok = False
            if not ok:
                raise Refused(HTTPStatus.FORBIDDEN, f"refused: the Origin {origin!r} is not this server")

    # ------------------------------------------------------------------ methods

    def do_GET(self):
        try:
            self._check_origin()
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                return self._file("index.html")
            if path in ("/rules", "/rules.html"):
                return self._send(200, rules_page(), TYPES[".html"])
            if path.startswith("/static/"):
                return self._file(path[len("/static/"):])
            if path == "/favicon.ico":
                return self._send(204, b"", "text/plain")
            raise Refused(HTTPStatus.NOT_FOUND, "not found")
        except Refused as r:
            self._refuse(r.status, r.message)

    do_HEAD = do_GET

    def do_POST(self):
        try:
            self._check_origin()
            if urlsplit(self.path).path != "/api/derive":
                raise Refused(HTTPStatus.NOT_FOUND, "not found")
            job = self._read_job()
        except Refused as r:
            return self._refuse(r.status, r.message)
        answer = self.server.pool.run(job)
        # an input error is an answer (200, "ok": false, the message with its caret);
        # the other statuses say that the server could not answer
        status = 200 if answer.get("ok") else _FAILURE_STATUS.get(answer["error"]["type"], 200)
        self._json(status, answer)

    def _other(self):
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    def _file(self, rel):
        path = _static_path(rel)
        ext = os.path.splitext(path)[1].lower() if path else None
        if path is None or ext not in TYPES:
            raise Refused(HTTPStatus.NOT_FOUND, "not found")
        with open(path, "rb") as f:
            self._send(200, f.read(), TYPES[ext])

    # ------------------------------------------------------------------ the API body

    def _read_job(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (Content-Type: application/json)")
        if self.headers.get("Transfer-Encoding"):
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required") from None
        if length < 0:
            raise Refused(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > MAX_BODY:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY // 1024} KiB")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        return checked_job(body, self.server.test_hooks)


def checked_job(body, test_hooks=False):
    """The job for a worker from a request body, every field checked (a Refused otherwise)."""
    def bad(msg):
        return Refused(HTTPStatus.BAD_REQUEST, msg)
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    expr, wrt = body.get("expr"), body.get("wrt")
    if not isinstance(expr, str) or not isinstance(wrt, str):
        raise bad("expr and wrt must be strings")
    if len(expr) > MAX_EXPR:
        raise bad(f"the expression is longer than {MAX_EXPR} characters")
    lets = body.get("let", [])
    if isinstance(lets, str):
        lets = [lets]
    if not isinstance(lets, list) or len(lets) > MAX_LETS or not all(isinstance(x, str) for x in lets):
        raise bad("let must be a list of NAME=KIND strings")
    job = {"expr": expr, "wrt": wrt, "let": lets}
    for key, allowed, default in (("layout", LAYOUTS, "gradient"), ("kind", KINDS, "derivative"),
                                  ("symmetric", CONVENTIONS, None)):
        value = body.get(key) or default
        if value is not None and value not in allowed:
            raise bad(f"{key} must be one of {', '.join(allowed)}")
        job[key] = value
    for key in ("check", "code"):
        job[key] = bool(body.get(key, True))
    if test_hooks:
        for key in ("_test_sleep", "_test_alloc", "_test_exit"):
            if key in body:
                job[key] = body[key]
    return job


def _read(name):
    with open(os.path.join(STATIC, name), "rb") as f:
        return f.read()


def _static_path(rel):
    """The file under static/ that rel names, or None (no '..', no hidden files)."""
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p for p in parts):
        return None
    path = os.path.realpath(os.path.join(STATIC, *parts))
    root = os.path.realpath(STATIC)
    if not path.startswith(root + os.sep) or not os.path.isfile(path):
        return None
    return path


_RULES = None


def rules_page():
    """The rule catalogue (matcalc.rules.catalogue) as a page; every string escaped."""
    global _RULES
    if _RULES is None:
        from ..rules import catalogue
        parts = []
        for section, rows in catalogue():
            parts.append(f"<section><h2>{html.escape(section)}</h2><table><thead><tr><th scope=\"col\">rule"
                         "</th><th scope=\"col\">formula</th></tr></thead><tbody>")
            parts.extend(f"<tr><td><code>{html.escape(n)}</code></td><td><code>{html.escape(f)}</code></td></tr>"
                         for n, f in rows)
            parts.append("</tbody></table></section>")
        _RULES = _read("rules.html").decode("utf-8").replace("<!--RULES-->", "\n".join(parts))
    return _RULES


# ---------------------------------------------------------------------------- the command


def serve(host="127.0.0.1", port=8000, open_browser=False, workers=WORKERS,
          time_limit=TIME_LIMIT, out=None, err=None):
    """Serve until Ctrl-C; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"matcalc: warning: listening on {host}, not only on this machine's loopback interface: "
              "other machines can reach the playground", file=err)
    server = None
    try:
        try:
            server = PlaygroundServer(host, port, workers=workers, time_limit=time_limit)
        except (OSError, OverflowError, ValueError) as e:
            print(f"matcalc: cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}", file=err)
            return 2
        print(f"matcalc playground: {server.url}  (Ctrl-C stops it)", file=out, flush=True)
        if open_browser:
            import webbrowser
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("matcalc playground: stopped", file=out, flush=True)
    finally:
        if server is not None:
            server.server_close()
    return 0
