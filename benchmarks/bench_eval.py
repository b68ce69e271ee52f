"""Evaluation speed: matcalc's generated gradients and Hessians against hand-written
NumPy, jax.grad / jax.hessian under jit, torch.func and HIPS autograd.

    python benchmarks/bench_eval.py [--sizes 100 1000 2000] [--only NAME ...] [--quick]

Problems (nine): least squares ||A x - b||^2 (in x), logistic regression
sum(log(1 + exp(-y .* (A w)))) (in w), the Gaussian likelihood in the covariance
logdet(S) + (x - mu)^T S^-1 (x - mu) (in an spd S), matrix factorisation
||X - U V^T||_F^2 (in U, rank 10), x^T A x (in x); the Gaussian negative
log-likelihood of n samples (the columns of X) in the trace form
logdet(S) + tr(S^-1 (X - mu 1^T) (X - mu 1^T)^T), in mu and in the spd S; a two-layer
MLP ||W2 tanh(W1 X + b1 1^T) + b2 1^T - Y||_F^2 over a batch of n samples (in W1; 10
outputs); softmax regression logsumexp(W x) - y^T W x (the cross-entropy of a one-hot y,
in W) -- with n x n data.  For each
problem and size every implementation computes the same thing -- the value and the
gradient ("grad"), or the Hessian ("hess") -- and is checked against the hand-written
NumPy answer before it is timed.  The autodiff functions differentiate f written in
their own array library; for the spd covariance they differentiate f((S + S^T)/2), whose
gradient and Hessian are the symmetric ones matcalc gives (CONTRACT section 2).

Times are medians of interleaved rounds (each round times every implementation once,
so drift on a busy machine hits all alike); the ratios are taken within the run:

    gen/hand   generated NumPy over hand-written NumPy     (target <= 1.1)
    ahead      fastest autodiff framework over generated    (target > 1; >= 10 where the
               closed form is structurally cheaper, e.g. the Hessian of x^T A x)

Hessians of the matrix-variable problems are n^2 x n^2 (Gaussian in S, MLP, softmax)
and nk x nk (factorisation): they run at the sizes where that fits in memory (--hess-sizes-matrix).
An implementation predicted to take more than --max-seconds for one call (from the
previous size, by the cube of the size ratio) is skipped and marked "-".
"""
import argparse
import datetime
import os
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _threads_from_argv(argv):
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# Every library gets the same number of threads (default 1), set before any of them is
# imported: on a small machine, BLAS, OpenMP and XLA thread pools spinning against each
# other otherwise dominate the times.
THREADS = _threads_from_argv(sys.argv[1:])
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
           "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, THREADS)
os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'false' if THREADS == '1' else 'true'} "
                      f"intra_op_parallelism_threads={THREADS}")
# XLA's CPU runtime runs independent operations of one jitted function side by side on a
# thread pool sized by the cores it may use, whatever the flags above say (with JAX 0.10,
# value_and_grad of x^T A x ran its two matrix-vector products at once, on both cores of
# this machine, against NumPy on one).  Pinning the whole process to THREADS cores is the
# one setting every library obeys; time_all checks it (CPU time over wall time).
if hasattr(os, "sched_setaffinity") and THREADS.isdigit():
    _cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, _cores[:max(1, int(THREADS))])

import numpy as np  # noqa: E402

import matcalc  # noqa: E402
from matcalc import codegen  # noqa: E402

RANK = 10


# ----------------------------------------------------------------------------- problems

def _ls_values(n, rng):
    return {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n)) / np.sqrt(n),
            "b": rng.standard_normal(n)}


def _lr_values(n, rng):
    return {"w": rng.standard_normal(n) / np.sqrt(n), "y": rng.choice([-1.0, 1.0], n),
            "A": rng.standard_normal((n, n))}


def _gauss_values(n, rng):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    S = (q * rng.uniform(0.5, 2.0, n)) @ q.T
    return {"S": (S + S.T) / 2, "x": rng.standard_normal(n), "mu": rng.standard_normal(n)}


def _mf_values(n, rng):
    return {"U": rng.standard_normal((n, RANK)), "X": rng.standard_normal((n, n)),
            "V": rng.standard_normal((n, RANK))}


def _q_values(n, rng):
    return {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n))}


def _gauss_batch_values(n, rng):
    v = _gauss_values(n, rng)
    # n samples (the columns of X) around mu
    v["X"] = v["mu"][:, None] + rng.standard_normal((n, n))
    return v


def _mlp_values(n, rng):
    return {"W1": rng.standard_normal((n, n)) / np.sqrt(n), "W2": rng.standard_normal((RANK, n)) / np.sqrt(n),
            "X": rng.standard_normal((n, n)), "b1": rng.standard_normal(n) / 10,
            "b2": rng.standard_normal(RANK) / 10, "Y": rng.standard_normal((RANK, n))}


def _sm_values(n, rng):
    y = np.zeros(n)
    y[rng.integers(n)] = 1.0                       # one-hot: the class of x
    return {"W": rng.standard_normal((n, n)) / np.sqrt(n), "x": rng.standard_normal(n), "y": y}


# hand-written NumPy: what a careful person writes (value and gradient; Hessian)

def ls_hand(x, A, b):
    r = A @ x - b
    return float(r @ r), 2.0 * (A.T @ r)


def ls_hand_h(x, A, b):
    return 2.0 * (A.T @ A)


def lr_hand(w, y, A):
    e = np.exp(-y * (A @ w))
    return float(np.sum(np.log1p(e))), -(A.T @ (y * (e / (1.0 + e))))


def lr_hand_h(w, y, A):
    s = 1.0 / (1.0 + np.exp(y * (A @ w)))           # sigmoid(-y .* (A w))
    return A.T @ ((y * y * s * (1.0 - s))[:, None] * A)


def gauss_hand(S, x, mu):
    Si = np.linalg.inv(S)
    r = x - mu
    v = Si @ r
    return float(np.linalg.slogdet(S)[1] + r @ v), Si - np.outer(v, v)


def gauss_hand_h(S, x, mu):
    n = S.shape[0]
    Si = np.linalg.inv(S)
    v = Si @ (x - mu)
    W = np.outer(v, v)
    H = np.kron(Si, W) + np.kron(W, Si) - np.kron(Si, Si)
    # P H P with P = (I + K)/2: the Hessian along symmetric directions
    H = H + np.swapaxes(H.reshape(n, n, n * n), 0, 1).reshape(n * n, n * n)
    H = H + np.swapaxes(H.reshape(n * n, n, n), 1, 2).reshape(n * n, n * n)
    return 0.25 * H


def mf_hand(U, X, V):
    R = U @ V.T - X
    return float(np.vdot(R, R)), 2.0 * (R @ V)


def mf_hand_h(U, X, V):
    return np.kron(2.0 * (V.T @ V), np.eye(U.shape[0]))


def q_hand(x, A):
    Ax = A @ x
    return float(x @ Ax), Ax + A.T @ x


def q_hand_h(x, A):
    return A + A.T


def gmu_hand(mu, S, X):
    R = X - mu[:, None]
    V = np.linalg.solve(S, R)
    return float(np.linalg.slogdet(S)[1] + np.vdot(V, R)), -2.0 * V.sum(axis=1)


def gmu_hand_h(mu, S, X):
    return (2.0 * X.shape[1]) * np.linalg.inv(S)


def gsig_hand(S, X, mu):
    Si = np.linalg.inv(S)
    R = X - mu[:, None]
    V = Si @ R
    return float(np.linalg.slogdet(S)[1] + np.vdot(V, R)), Si - V @ V.T


def gsig_hand_h(S, X, mu):
    n = S.shape[0]
    Si = np.linalg.inv(S)
    V = Si @ (X - mu[:, None])
    W = V @ V.T
    H = np.kron(Si, W) + np.kron(W, Si) - np.kron(Si, Si)
    # P H P with P = (I + K)/2: the Hessian along symmetric directions
    H = H + np.swapaxes(H.reshape(n, n, n * n), 0, 1).reshape(n * n, n * n)
    H = H + np.swapaxes(H.reshape(n * n, n, n), 1, 2).reshape(n * n, n * n)
    return 0.25 * H


def mlp_hand(W1, W2, X, b1, b2, Y):
    H = np.tanh(W1 @ X + b1[:, None])
    R = W2 @ H + b2[:, None] - Y
    G = (W2.T @ R) * (1.0 - H * H)
    return float(np.vdot(R, R)), 2.0 * (G @ X.T)


def mlp_hand_h(W1, W2, X, b1, b2, Y):
    # H[(i,j),(k,l)] = d2f / dW1_ij dW1_kl (vec: column-major, so the row index is j*n + i)
    #   = 2 sum_s X_js X_ls (D_is (W2^T W2)_ik D_ks - 2 delta_ik E_is T_is D_is)
    n, p = W1.shape
    T = np.tanh(W1 @ X + b1[:, None])
    D = 1.0 - T * T
    E = W2.T @ (W2 @ T + b2[:, None] - Y)
    M = D[:, None, :] * (W2.T @ W2)[:, :, None] * D[None, :, :]          # (i, k, s)
    H = np.einsum("js,ls,iks->jilk", X, X, M, optimize=True)
    H -= np.einsum("js,ls,is,ik->jilk", X, X, 2.0 * E * T * D, np.eye(n), optimize=True)
    return 2.0 * H.reshape(n * p, n * p)


def sm_hand(W, x, y):
    z = W @ x
    m = z.max()
    e = np.exp(z - m)
    se = e.sum()
    return float(m + np.log(se) - y @ z), np.outer(e / se - y, x)


def sm_hand_h(W, x, y):
    z = W @ x
    e = np.exp(z - z.max())
    s = e / e.sum()
    return np.kron(np.outer(x, x), np.diag(s) - np.outer(s, s))


# f in each autodiff framework's array library (xp: numpy-like namespace)

def ls_f(xp):
    def f(x, A, b):
        r = A @ x - b
        return xp.sum(r * r)
    return f


def lr_f(xp):
    def f(w, y, A):
        return xp.sum(xp.log1p(xp.exp(-y * (A @ w))))
    return f


def gauss_f(xp):
    def f(S, x, mu):
        S = (S + S.T) / 2
        r = x - mu
        return xp.slogdet(S)[1] + r @ xp.solve(S, r)
    return f


def mf_f(xp):
    def f(U, X, V):
        R = X - U @ V.T
        return xp.sum(R * R)
    return f


def q_f(xp):
    def f(x, A):
        return x @ (A @ x)
    return f


def gmu_f(xp):
    def f(mu, S, X):
        R = X - mu[:, None]
        return xp.slogdet(S)[1] + xp.sum(R * xp.solve(S, R))
    return f


def gsig_f(xp):
    def f(S, X, mu):
        S = (S + S.T) / 2
        R = X - mu[:, None]
        return xp.slogdet(S)[1] + xp.sum(R * xp.solve(S, R))
    return f


def mlp_f(xp):
    def f(W1, W2, X, b1, b2, Y):
        R = W2 @ xp.tanh(W1 @ X + b1[:, None]) + b2[:, None] - Y
        return xp.sum(R * R)
    return f


def sm_f(xp):
    def f(W, x, y):
        z = W @ x
        return xp.logsumexp(z) - y @ z
    return f


GAUSS_TRACE = "logdet(S) + tr(S^-1 (X - mu ones(n)^T) (X - mu ones(n)^T)^T)"

PROBLEMS = [
    dict(name="least_squares", expr="||A x - b||^2", wrt="x", symbols=None, args=("x", "A", "b"),
         values=_ls_values, hand=ls_hand, hand_h=ls_hand_h, f=ls_f, matrix_var=False),
    dict(name="logistic", expr="sum(log(1 + exp(-y .* (A w))))", wrt="w", symbols=None,
         args=("w", "y", "A"), values=_lr_values, hand=lr_hand, hand_h=lr_hand_h, f=lr_f, matrix_var=False),
    dict(name="gaussian_cov", expr="logdet(S) + (x - mu)^T S^-1 (x - mu)", wrt="S", symbols={"S": "spd"},
         args=("S", "x", "mu"), values=_gauss_values, hand=gauss_hand, hand_h=gauss_hand_h, f=gauss_f,
         matrix_var=True),
    dict(name="factorisation", expr="||X - U V^T||_F^2", wrt="U", symbols=None, args=("U", "X", "V"),
         values=_mf_values, hand=mf_hand, hand_h=mf_hand_h, f=mf_f, matrix_var=True, hess_scale=5),
    dict(name="xAx", expr="x^T A x", wrt="x", symbols=None, args=("x", "A"), values=_q_values,
         hand=q_hand, hand_h=q_hand_h, f=q_f, matrix_var=False),
    dict(name="gaussian_mu", expr=GAUSS_TRACE, wrt="mu", symbols={"S": "spd(n)", "X": "matrix(n,n)"},
         args=("mu", "S", "X"), values=_gauss_batch_values, hand=gmu_hand, hand_h=gmu_hand_h, f=gmu_f,
         matrix_var=False,
         # the frameworks' Hessians push n tangents through solve(S, X - mu 1^T): n^3 numbers
         # (8 GB at n = 1000; the first full run was killed for memory there)
         autodiff_hess_max=(400, "the autodiff Hessians hold n tangents of n x n: n^3 numbers")),
    dict(name="gaussian_sigma", expr=GAUSS_TRACE, wrt="S", symbols={"S": "spd(n)", "X": "matrix(n,n)"},
         args=("S", "X", "mu"), values=_gauss_batch_values, hand=gsig_hand, hand_h=gsig_hand_h, f=gsig_f,
         matrix_var=True),
    dict(name="mlp", expr="||W2 tanh(W1 X + b1 ones(n)^T) + b2 ones(n)^T - Y||_F^2", wrt="W1",
         symbols={"W1": "matrix(n,n)", "X": "matrix(n,n)"}, args=("W1", "W2", "X", "b1", "b2", "Y"),
         values=_mlp_values, hand=mlp_hand, hand_h=mlp_hand_h, f=mlp_f, matrix_var=True),
    dict(name="softmax", expr="logsumexp(W x) - y^T W x", wrt="W", symbols=None, args=("W", "x", "y"),
         values=_sm_values, hand=sm_hand, hand_h=sm_hand_h, f=sm_f, matrix_var=True),
]


# ----------------------------------------------------------------------------- frameworks


class _NS:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def frameworks():
    """name -> (make(problem, what) -> (fn, to_args, sync)) for the installed autodiff tools."""
    out = {}
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jax.scipy.special as jsp
        xp = _NS(sum=jnp.sum, exp=jnp.exp, log1p=jnp.log1p, slogdet=jnp.linalg.slogdet,
                 solve=jnp.linalg.solve, tanh=jnp.tanh, logsumexp=jsp.logsumexp)

        def make_jax(p, what, xp=xp):
            f = p["f"](xp)
            fn = jax.jit(jax.value_and_grad(f) if what == "grad" else jax.hessian(f))

            def to_args(vals):
                return [jnp.asarray(vals[a]) for a in p["args"]]

            return fn, to_args, lambda out: jax.block_until_ready(out)
        out["jax"] = make_jax
    except ImportError:
        pass
    try:
        import torch
        import torch.func as tf
        torch.set_num_threads(int(THREADS))
        xp = _NS(sum=torch.sum, exp=torch.exp, log1p=torch.log1p, slogdet=torch.linalg.slogdet,
                 solve=torch.linalg.solve, tanh=torch.tanh, logsumexp=lambda z: torch.logsumexp(z, 0))

        def make_torch(p, what, xp=xp):
            f = p["f"](xp)
            if what == "grad":
                g = tf.grad_and_value(f)

                def fn(*args):
                    grad, val = g(*args)
                    return val, grad
            else:
                fn = tf.hessian(f)

            def to_args(vals):
                return [torch.as_tensor(vals[a], dtype=torch.float64) for a in p["args"]]
            return fn, to_args, lambda out: None
        out["torch.func"] = make_torch
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp
        import autograd.scipy.special as asp
        xp = _NS(sum=anp.sum, exp=anp.exp, log1p=anp.log1p, slogdet=anp.linalg.slogdet,
                 solve=anp.linalg.solve, tanh=anp.tanh, logsumexp=asp.logsumexp)

        def make_autograd(p, what, xp=xp):
            f = p["f"](xp)
            fn = autograd.value_and_grad(f) if what == "grad" else autograd.hessian(f)

            def to_args(vals):
                return [vals[a] for a in p["args"]]
            return fn, to_args, lambda out: None
        out["autograd"] = make_autograd
    except ImportError:
        pass
    return out


def to_numpy(x):
    if isinstance(x, (tuple, list)):
        return type(x)(to_numpy(t) for t in x)
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _flat_hessian(H, p, vals):
    """An autodiff Hessian (shape of x twice) as the vec-by-vec matrix matcalc gives:
    column-major vec for matrices."""
    H = to_numpy(H)
    x = vals[p["wrt"]]
    if np.ndim(x) == 1:
        return H
    m, n = x.shape
    # H[i, j, k, l] = d2f / dX_ij dX_kl; vec index of (i, j) is i + j*m
    return H.transpose(1, 0, 3, 2).reshape(m * n, m * n)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


# ----------------------------------------------------------------------------- timing


def _calibrate(call, target=0.002):
    """Calls per sample so that one sample takes about `target` seconds."""
    t0 = time.perf_counter()
    call()
    t = time.perf_counter() - t0
    if t >= target:
        return 1, t
    number = 1
    while True:
        number *= 2
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        t = time.perf_counter() - t0
        if t >= target or number >= 4096:
            return number, t / number


def time_all(calls, rounds, budget, cpu=None):
    """Seconds per call of each callable in each of the interleaved rounds (the order
    shuffled every round), as {name: [per-round times]}.  If `cpu` is a dict, it receives
    each callable's process CPU time over its wall time (about 1 on one core; more means
    the library ran threads side by side)."""
    numbers = {}
    first = {}
    for name, call in calls.items():
        numbers[name], first[name] = _calibrate(call)
    samples = {name: [] for name in calls}
    t_start = time.perf_counter()
    order = list(calls)
    shuffle = np.random.default_rng(12345).permutation
    for r in range(rounds):
        for name in [order[i] for i in shuffle(len(order))]:
            call = calls[name]
            if first[name] > budget and len(samples[name]) >= 3:
                continue       # slow: one or two samples are enough
            k = numbers[name]
            c0 = time.process_time()
            t0 = time.perf_counter()
            for _ in range(k):
                call()
            t = time.perf_counter() - t0
            samples[name].append(t / k)
            if cpu is not None:
                cpu.setdefault(name, []).append((time.process_time() - c0) / t)
        if r >= 2 and time.perf_counter() - t_start > budget * max(1, len(calls)):
            break
    return samples


# ----------------------------------------------------------------------------- the run



def time_paired(calls, rounds, budget, notes):
    """(median time of each implementation, the median over rounds of generated /
    hand-written): the ratios within each round are paired, so that a busy moment of the
    machine hits both sides of a ratio.  An implementation that used more cores than
    THREADS is noted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cpu = {}
        samples = time_all(calls, rounds, budget, cpu)
    times = {name: statistics.median(v) for name, v in samples.items()}
    busy = [f"{name} {statistics.median(v):.1f}" for name, v in cpu.items()
            if statistics.median(v) > 1.25 * int(THREADS)]
    if busy:
        notes.append("cores used: " + ", ".join(busy))
    g, h = samples["generated"], samples["hand"]
    return times, statistics.median(a / b for a, b in zip(g, h))

def run_case(p, what, n, fws, rounds, budget, max_seconds, prev, check_tol=1e-6):
    rng = np.random.default_rng(n + 7)
    vals = p["values"](n, rng)
    np_args = [vals[a] for a in p["args"]]
    if what == "grad":
        d = matcalc.diff(p["expr"], wrt=p["wrt"], symbols=p["symbols"])
        ns = codegen.load(d.to_code())
        gen = ns["f_and_grad"]
        hand = p["hand"]
    else:
        d = matcalc.hessian(p["expr"], wrt=p["wrt"], symbols=p["symbols"])
        ns = codegen.load(d.to_code())
        gen = ns["hessian"]
        hand = p["hand_h"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = hand(*np_args)
        mine = gen(*np_args)
    notes = []
    if what == "grad":
        err = max(rel_err(mine[0], ref[0]), rel_err(mine[1], ref[1]))
    else:
        err = rel_err(mine, ref)
    if err > check_tol:
        notes.append(f"generated differs from hand-written: {err:.1e}")
    calls = {"generated": lambda: gen(*np_args), "hand": lambda: hand(*np_args)}
    # the generated JAX code, jitted, as one more column
    if "jax" in fws:
        import jax
        import jax.numpy as jnp
        jns = codegen.load(d.to_code(target="jax"))
        jfn = jax.jit(jns["f_and_grad"] if what == "grad" else jns["hessian"])
        jargs = [jnp.asarray(vals[a]) for a in p["args"]]
        out = jfn(*jargs)
        e = (max(rel_err(to_numpy(out[0]), ref[0]), rel_err(to_numpy(out[1]), ref[1]))
             if what == "grad" else rel_err(to_numpy(out), ref))
        if e > check_tol:
            notes.append(f"gen-jax differs: {e:.1e}")
        calls["gen-jax"] = lambda: jax.block_until_ready(jfn(*jargs))
    single = {}
    limit = p.get("autodiff_hess_max") if what == "hess" else None
    if limit is not None and n > limit[0] and fws:
        notes.append(f"autodiff skipped above n = {limit[0]} ({limit[1]})")
        fws = {}
    for name, make in fws.items():
        key = (p["name"], what, name)
        if key in prev:
            n0, t0 = prev[key]
            est = t0 * (n / n0) ** 3
            if est > max_seconds:
                notes.append(f"{name} skipped (estimated {est:.0f} s a call)")
                continue
        fn, to_args, sync = make(p, what)
        fargs = to_args(vals)
        try:
            out = fn(*fargs)            # the first call compiles (jit) and warms up
            sync(out)
            t0 = time.perf_counter()
            out = fn(*fargs)
            sync(out)
            t_call = time.perf_counter() - t0
        except Exception as ex:  # noqa: BLE001
            notes.append(f"{name} failed: {type(ex).__name__}: {str(ex)[:60]}")
            continue
        if what == "grad":
            e = max(rel_err(float(to_numpy(out[0])), ref[0]), rel_err(to_numpy(out[1]), ref[1]))
        else:
            e = rel_err(_flat_hessian(out, p, vals), ref)
        if e > check_tol:
            notes.append(f"{name} differs: {e:.1e}")
        if t_call > 3 * budget:
            single[name] = t_call       # slow: the one timed call stands
        else:
            calls[name] = (lambda fn=fn, fargs=fargs, sync=sync: sync(fn(*fargs)))
    times, times_ratio = time_paired(calls, rounds, budget, notes)
    times["_ratio"] = times_ratio
    times.update(single)
    for name in fws:
        if name in times:
            prev[(p["name"], what, name)] = (n, times[name])
    return times, notes


def fmt_t(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f}us"
    if t < 1:
        return f"{t * 1e3:.2f}ms"
    return f"{t:.2f}s"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 2000])
    ap.add_argument("--hess-sizes-matrix", type=int, nargs="+", default=[20, 40],
                    help="sizes for the Hessians of the matrix-variable problems (n^2 x n^2 for the "
                         "Gaussian; the factorisation's Hessian uses 5x these)")
    ap.add_argument("--only", nargs="*", help="problem names")
    ap.add_argument("--what", nargs="*", default=["grad", "hess"])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per implementation and case (about)")
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--no-frameworks", action="store_true", help="generated and hand-written only")
    ap.add_argument("--quick", action="store_true", help="sizes 100 and 400, fewer rounds")
    ap.add_argument("--threads", default="1", help="threads for every library (set before import; default 1)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.budget, args.hess_sizes_matrix = [100, 400], 7, 0.3, [20]
    fws = {} if args.no_frameworks else frameworks()
    cols = ["generated", "hand"] + (["gen-jax"] if "jax" in fws else []) + list(fws)
    print(f"# bench_eval {datetime.date.today()}  numpy {np.__version__}  "
          + "  ".join(f"{k}" for k in fws) + f"  threads {THREADS} (cores {os.cpu_count()})")
    head = f"{'problem':<15} {'what':<4} {'n':>5} " + " ".join(f"{c:>10}" for c in cols) + \
        f" {'gen/hand':>8} {'ahead':>7}  notes"
    print(head)
    prev = {}
    ratios, aheads, rows = [], [], []
    for p in PROBLEMS:
        if args.only and p["name"] not in args.only:
            continue
        for what in args.what:
            sizes = args.sizes
            if what == "hess" and p["matrix_var"]:
                sizes = [p.get("hess_scale", 1) * s for s in args.hess_sizes_matrix]
            for n in sizes:
                times, notes = run_case(p, what, n, fws, args.rounds, args.budget, args.max_seconds, prev)
                g = times.get("generated")
                ratio = times.pop("_ratio")
                ad = [times[k] for k in fws if k in times]
                ahead = (min(ad) / g) if ad else None
                ratios.append(ratio)
                if ahead is not None:
                    aheads.append((ahead, p["name"], what, n))
                rows.append((p["name"], what, n, times, ratio, ahead))
                print(f"{p['name']:<15} {what:<4} {n:>5} " + " ".join(f"{fmt_t(times.get(c)):>10}" for c in cols)
                      + f" {ratio:>8.2f} " + (f"{ahead:>7.1f}" if ahead else f"{'-':>7}")
                      + ("  " + "; ".join(notes) if notes else ""), flush=True)
    worst = max(ratios)
    within = sum(r <= 1.1 for r in ratios)
    line = (f"eval: {len(ratios)} cases, generated/hand-written median {statistics.median(ratios):.2f}x "
            f"(max {worst:.2f}x, {within}/{len(ratios)} within 1.1x)")
    if aheads:
        a = [x[0] for x in aheads]
        lo = min(aheads)
        line += (f"; ahead of the fastest autodiff median {statistics.median(a):.1f}x "
                 f"(min {lo[0]:.2f}x: {lo[1]} {lo[2]} n={lo[3]}, {sum(x > 1 for x in a)}/{len(a)} ahead)")
        q = [x for x in aheads if x[1] == "xAx" and x[2] == "hess" and x[3] == 1000]
        if q:
            jt = [r for r in rows if r[0] == "xAx" and r[1] == "hess" and r[2] == 1000][0][3].get("jax")
            line += f"; x^T A x Hessian n=1000: {q[0][0]:.0f}x ahead" + \
                (f" (jax.hessian {fmt_t(jt)})" if jt else "")
    print(line)


if __name__ == "__main__":
    main()
