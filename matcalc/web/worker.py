"""Derivations for the playground, each in a worker process with a time limit and a
memory cap.

``Pool.run(job)`` hands a job (a dict checked by the server) to an idle worker and waits
at most ``time_limit`` seconds for the answer.  A worker that overruns is killed and
replaced (by the server's loop, so the answer "took too long" is immediate); one that dies
(a crash, the memory cap) is replaced too.  The other workers keep answering meanwhile,
so one hostile expression never blocks the next request.

The worker processes are started with the "spawn" method (the server is threaded, and
forking a threaded process is unsafe); each caps its address space with
``resource.setrlimit(RLIMIT_AS, ...)`` before it imports anything large.
"""
import multiprocessing
import os
import queue
import signal
import threading
import time

TIME_LIMIT = 10.0                     # seconds per derivation
MEMORY_LIMIT = 2 * 1024 ** 3          # bytes of address space per worker
WORKERS = 2

TARGETS = ("numpy", "jax", "torch")


# ---------------------------------------------------------------------------- in the worker


def _worker_main(conn, memory_limit, test_hooks):
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the server's to handle
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")               # one thread: a small, predictable footprint
    if memory_limit:
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):    # not on this platform: the time limit remains
            pass
    try:                                              # import now, not during the first request
        from .. import api, check, codegen, steps  # noqa: F401
        import numpy  # noqa: F401
    except Exception:  # noqa: BLE001 - reported with the first job instead
        pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            answer = derive(job, test_hooks)
        except MemoryError:
            answer = _failure("MemoryError", "the derivation needed more memory than the playground "
                              f"allows ({memory_limit // 1024 ** 2} MiB); try a smaller expression")
        except RecursionError:
            answer = _failure("MatcalcError", "the expression is nested too deeply")
        except BaseException as e:  # noqa: BLE001 - the page gets a message, never a traceback
            answer = _failure("InternalError", f"internal error ({type(e).__name__}: {e}); "
                              "please report it with the input")
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


def _failure(kind, message, rendered=None, span=None):
    return {"ok": False, "error": {"type": kind, "message": message,
                                   "rendered": rendered or f"{kind}: {message}", "span": span}}


def derive(job, test_hooks=False):
    """The answer to one request: every derivative with its printed forms, steps, check
    and code, or the error with its caret text.  Runs in the worker."""
    if test_hooks:                      # only a server built by the tests honours these
        if job.get("_test_sleep"):
            time.sleep(float(job["_test_sleep"]))
        if job.get("_test_alloc"):
            bytearray(int(job["_test_alloc"]))
        if job.get("_test_exit"):
            os._exit(int(job["_test_exit"]))          # a worker that dies (a crash)
    from ..errors import MatcalcError
    from .. import api
    from ..report import as_json, declarations as _declarations, zero_note as _zero_note
    text = job["expr"]
    for item in job.get("let") or []:
        if "=" not in item:
            return _failure("MatcalcError", f"a declaration is NAME=KIND (as A=symmetric or X=matrix(m,n)), got {item!r}")
    try:
        symbols = _declarations(job.get("let") or [])
        fn = api.hessian if job.get("kind") == "hessian" else api.diff
        result = fn(text, wrt=job["wrt"], symbols=symbols or None, layout=job.get("layout", "gradient"),
                    symmetric=job.get("symmetric"))
    except MatcalcError as e:
        if e.text is None and e.span is not None:
            e.text = text
        return _failure(type(e).__name__, e.message, e.render(),
                        list(e.span) if e.span is not None and e.text == text else None)
    results = []
    for d in (result if isinstance(result, list) else [result]):
        out = {"json": as_json(d), "text": str(d), "latex": d.latex(), "note": _zero_note(d)}
        out["steps_latex"] = _optional(lambda: d.steps.latex())
        out["steps_text"] = _optional(lambda: d.steps.text())
        if job.get("check", True):
            out["check"] = _optional(lambda: _check(d))
        if job.get("code", True):
            out["code"] = {t: _optional(lambda t=t: d.to_code(t)) for t in TARGETS}
        results.append(out)
    return {"ok": True, "results": results}


def _optional(fn):
    """{"value": fn()}, or {"error": message} when a part of the answer fails (the
    derivative itself still shows)."""
    from ..errors import MatcalcError
    try:
        return {"value": fn()}
    except MatcalcError as e:
        return {"error": e.render()}
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001
        return {"error": f"internal error ({type(e).__name__}: {e}); please report it with the input"}


def _check(d):
    res = d.check()
    return {"error": res.error, "ok": res.ok, "trials": res.trials, "tol": res.tol, "note": res.note}


# ---------------------------------------------------------------------------- in the server


def _quietly(start):
    """Start a process with SIGINT ignored, a disposition it keeps through exec: Ctrl-C at
    the terminal reaches the whole process group, and a worker still importing would
    print a traceback.  (signal.signal works in the main thread only; the server starts
    its workers there, in its serve_forever loop.)"""
    if threading.current_thread() is not threading.main_thread():
        return start()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return start()
    finally:
        signal.signal(signal.SIGINT, old)


class _Worker:
    def __init__(self, ctx, memory_limit, test_hooks):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_limit, test_hooks),
                                daemon=True, name="matcalc-web-worker")
        _quietly(self.proc.start)
        child.close()

    def kill(self):
        try:
            self.proc.kill()
            self.proc.join(2)
        finally:
            self.conn.close()


class Pool:
    """A few worker processes; ``run(job)`` answers within the time limit (plus the wait
    for a free worker, itself bounded by the limit and a replacement's start)."""

    def __init__(self, workers=WORKERS, time_limit=TIME_LIMIT, memory_limit=MEMORY_LIMIT,
                 test_hooks=False):
        self.time_limit = float(time_limit)
        self.memory_limit = memory_limit
        self.test_hooks = test_hooks
        self._ctx = multiprocessing.get_context("spawn")
        self._idle = queue.Queue()
        self._all = set()
        self._lock = threading.Lock()
        self._closed = False
        self._missing = 0
        for _ in range(max(1, int(workers))):
            self._idle.put(self._start())

    def _start(self):
        w = _Worker(self._ctx, self.memory_limit, self.test_hooks)
        with self._lock:
            self._all.add(w)
        return w

    def _retire(self, w):
        with self._lock:
            self._all.discard(w)
            self._missing += 1
        w.kill()

    def replenish(self):
        """Start the replacements of retired workers (the server calls this from its
        serve_forever loop, every poll interval)."""
        while True:
            with self._lock:
                if self._closed or not self._missing:
                    return
                self._missing -= 1
            self._idle.put(self._start())

    def run(self, job):
        try:
            # a busy worker is free (or killed and replaced) within the limit, plus the
            # moment a replacement takes to start
            w = self._idle.get(timeout=self.time_limit + 5)
        except queue.Empty:
            return _failure("Busy", "every worker is busy; try again in a moment")
        try:
            w.conn.send(job)
            if not w.conn.poll(self.time_limit):
                self._retire(w)
                return _failure("TimeLimit", f"the derivation took longer than {self.time_limit:g} s "
                                "and was stopped; try a smaller expression")
            answer = w.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._retire(w)
            return _failure("WorkerCrashed", "the derivation stopped the worker process (out of memory "
                            "or a crash); try a smaller expression")
        except BaseException:
            self._retire(w)
            raise
        self._idle.put(w)
        return answer

    def close(self):
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()
