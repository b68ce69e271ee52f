"""Everyday machine-learning and statistics objectives, differentiated with matcalc and
checked numerically.

Each problem is written the way a user would type it, once in matcalc's input language
and once by hand in NumPy; for each variable that one would differentiate in practice,
the table holds the shortest answer one would write by hand.  The tests assert
correctness only (central differences of the NumPy function along random directions,
the printed answer read back, and the hand form itself); `python tests/test_everyday.py`
prints the answers that are clearly longer than the hand-written form.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fd_everyday import (Problem, check, inv, logdet, params, print_report,  # noqa: E402
                          sigmoid, softplus, tr)

P = Problem
S = "scalar"


# ----------------------------------------------------------------------------- value fixes


def _labels_pm1(v, rng):
    v["y"] = rng.choice([-1.0, 1.0], size=np.shape(v["y"]))


def _labels_01(v, rng):
    v["y"] = rng.uniform(0.05, 0.95, size=np.shape(v["y"]))


def _one_hot(v, rng):
    y = np.zeros(np.shape(v["y"]))
    y[rng.integers(len(y))] = 1.0
    v["y"] = y


def _barrier_feasible(v, rng):
    v["b"] = v["A"] @ v["x"] + rng.uniform(0.5, 1.5, size=np.shape(v["b"]))


def _ones_e(v, rng):
    v["e"] = np.ones(np.shape(v["e"]))


def _count_N(v, rng):
    v["N"] = 7.0


def _distinct_xy(v, rng):
    v["y"] = v["x"] + rng.normal(size=np.shape(v["x"]))


def _pos_prob(name):
    def fix(v, rng):
        p = rng.uniform(0.5, 1.5, size=np.shape(v[name]))
        v[name] = p / p.sum()
    return fix


def _both(*fixes):
    def fix(v, rng):
        for f in fixes:
            f(v, rng)
    return fix


def _ones_o(v, rng):
    v["o"] = np.ones(np.shape(v["o"]))


def _one_hot_rows(v, rng):
    Y = np.zeros(np.shape(v["Y"]))
    Y[np.arange(Y.shape[0]), rng.integers(Y.shape[1], size=Y.shape[0])] = 1.0
    v["Y"] = Y


def _multinomial(v):
    Z = v["X"] @ v["W"]
    return -tr(v["Y"].T @ Z) + np.sum(np.log(np.exp(Z) @ v["o"]))


def _student_t(v):
    r = v["x"] - v["mu"]
    return (v["nu"] + 3) * np.log(1 + r @ inv(v["S"]) @ r / v["nu"]) + logdet(v["S"])


def _kalman(v):
    C = v["A"] @ v["S"] @ v["A"].T + v["R"]
    return logdet(C) + v["y"] @ inv(C) @ v["y"]


def _kl_gaussians(v):
    S1, S2, dm = v["S1"], v["S2"], v["m2"] - v["m1"]
    return 0.5 * (tr(inv(S2) @ S1) + dm @ inv(S2) @ dm - v["k"] + logdet(S2) - logdet(S1))


def _factor_analysis(v):
    Sg = v["W"] @ v["W"].T + v["D"]
    return logdet(Sg) + tr(inv(Sg) @ v["C"])


def _mahal(v):
    r = v["x"] - v["y"]
    return np.sqrt(r @ v["M"] @ r)


PROBLEMS = [
    # ------------------------------------------------------------------ least squares family
    P("least_squares", "||A x - b||^2", lambda v: np.sum((v["A"] @ v["x"] - v["b"]) ** 2),
      {"x": "2 A^T (A x - b)", "A": "2 (A x - b) x^T", "b": "2 (b - A x)"}),
    P("least_squares_half", "0.5 ||A x - b||^2", lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["b"]) ** 2),
      {"x": "A^T (A x - b)"}),
    P("least_squares_expanded", "x^T A^T A x - 2 b^T A x + b^T b",
      lambda v: v["x"] @ v["A"].T @ v["A"] @ v["x"] - 2 * v["b"] @ v["A"] @ v["x"] + v["b"] @ v["b"],
      {"x": "2 A^T (A x - b)"}),
    P("weighted_least_squares", "(A x - b)^T W (A x - b)",
      lambda v: (v["A"] @ v["x"] - v["b"]) @ v["W"] @ (v["A"] @ v["x"] - v["b"]),
      {"x": "2 A^T W (A x - b)", "A": "2 W (A x - b) x^T", "W": "(A x - b) (A x - b)^T"},
      symbols={"W": "spd"}),
    P("weighted_least_squares_diag", "(A x - b)^T D (A x - b)",
      lambda v: (v["A"] @ v["x"] - v["b"]) @ v["D"] @ (v["A"] @ v["x"] - v["b"]),
      {"x": "2 A^T D (A x - b)", "D": "I .* ((A x - b) (A x - b)^T)"}, symbols={"D": "diagonal"},
      positive=("D",)),
    P("weighted_ls_hadamard", "sum(w .* (A x - b) .^ 2)",
      lambda v: np.sum(v["w"] * (v["A"] @ v["x"] - v["b"]) ** 2),
      {"x": "2 A^T (w .* (A x - b))", "w": "(A x - b) .^ 2"}, positive=("w",)),
    P("ridge", "||A x - b||^2 + lambda ||x||^2",
      lambda v: np.sum((v["A"] @ v["x"] - v["b"]) ** 2) + v["lambda"] * v["x"] @ v["x"],
      {"x": "2 A^T (A x - b) + 2 lambda x", "lambda": "x^T x", "A": "2 (A x - b) x^T"},
      symbols={"lambda": S}),
    P("ridge_xtx", "0.5 (A x - b)^T (A x - b) + 0.5 lambda x^T x",
      lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["b"]) ** 2) + 0.5 * v["lambda"] * v["x"] @ v["x"],
      {"x": "A^T (A x - b) + lambda x", "lambda": "0.5 x^T x"}, symbols={"lambda": S}),
    P("ridge_closed_form_fit", "y^T X (X^T X + lambda I)^-1 X^T y",
      lambda v: v["y"] @ v["X"] @ inv(v["X"].T @ v["X"] + v["lambda"] * np.eye(v["X"].shape[1])) @ v["X"].T @ v["y"],
      {"lambda": "-y^T X (X^T X + lambda I)^-2 X^T y", "y": "2 X (X^T X + lambda I)^-1 X^T y"},
      symbols={"lambda": S, "X": "matrix(m,n)"}, sizes={"m": 6, "n": 3}),
    P("lasso_smooth_part", "0.5 ||A x - b||^2 + 0.5 mu ||x||^2",
      lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["b"]) ** 2) + 0.5 * v["mu"] * v["x"] @ v["x"],
      {"x": "A^T (A x - b) + mu x"}, symbols={"mu": S}),
    P("smoothed_l1", "0.5 ||A x - b||^2 + lambda sum(sqrt(x .* x + eps))",
      lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["b"]) ** 2) + v["lambda"] * np.sum(np.sqrt(v["x"] ** 2 + v["eps"])),
      {"x": "A^T (A x - b) + lambda x ./ sqrt(x .* x + eps)", "eps": "0.5 lambda sum(1 ./ sqrt(x .* x + eps))"},
      symbols={"lambda": S, "eps": S}),
    P("multivariate_regression", "||Y - X B||_F^2", lambda v: np.sum((v["Y"] - v["X"] @ v["B"]) ** 2),
      {"B": "2 X^T (X B - Y)", "X": "2 (X B - Y) B^T"}),
    P("multivariate_regression_trace", "tr((Y - X B)^T (Y - X B))",
      lambda v: tr((v["Y"] - v["X"] @ v["B"]).T @ (v["Y"] - v["X"] @ v["B"])), {"B": "2 X^T (X B - Y)"}),
    P("regression_intercept", "||X w + c - y||^2", lambda v: np.sum((v["X"] @ v["w"] + v["c"] - v["y"]) ** 2),
      {"w": "2 X^T (X w + c - y)", "c": "2 sum(X w + c - y)"}, symbols={"c": S}),
    P("procrustes", "||A R - B||_F^2", lambda v: np.sum((v["A"] @ v["R"] - v["B"]) ** 2),
      {"R": "2 A^T (A R - B)"}),
    P("quadratic_program", "0.5 x^T Q x + c^T x", lambda v: 0.5 * v["x"] @ v["Q"] @ v["x"] + v["c"] @ v["x"],
      {"x": "Q x + c", "Q": "0.5 x x^T"}, symbols={"Q": "spd"}),
    # ------------------------------------------------------------------ classification
    P("logistic_regression", "sum(log(1 + exp(-y .* (A w))))",
      lambda v: np.sum(np.log1p(np.exp(-v["y"] * (v["A"] @ v["w"])))),
      {"w": "-A^T (y .* sigmoid(-y .* (A w)))", "A": "-(y .* sigmoid(-y .* (A w))) w^T"}, fix=_labels_pm1),
    P("logistic_regression_softplus", "sum(softplus(-y .* (A w)))",
      lambda v: np.sum(softplus(-v["y"] * (v["A"] @ v["w"]))),
      {"w": "-A^T (y .* sigmoid(-y .* (A w)))"}, fix=_labels_pm1),
    P("logistic_regression_bias_l2", "sum(log(1 + exp(-y .* (A w + c)))) + 0.5 lambda w^T w",
      lambda v: np.sum(np.log1p(np.exp(-v["y"] * (v["A"] @ v["w"] + v["c"])))) + 0.5 * v["lambda"] * v["w"] @ v["w"],
      {"w": "lambda w - A^T (y .* sigmoid(-y .* (A w + c)))", "c": "-y^T sigmoid(-y .* (A w + c))",
       "lambda": "0.5 w^T w"},
      symbols={"c": S, "lambda": S}, fix=_labels_pm1),
    P("logistic_cross_entropy", "-sum(y .* log(sigmoid(A w)) + (1 - y) .* log(1 - sigmoid(A w)))",
      lambda v: -np.sum(v["y"] * np.log(sigmoid(v["A"] @ v["w"])) + (1 - v["y"]) * np.log(1 - sigmoid(v["A"] @ v["w"]))),
      {"w": "A^T (sigmoid(A w) - y)", "y": "-(A w)"}, fix=_labels_01),
    P("logistic_cross_entropy_dot", "-(y^T log(sigmoid(A w)) + (1 - y)^T log(1 - sigmoid(A w)))",
      lambda v: -(v["y"] @ np.log(sigmoid(v["A"] @ v["w"])) + (1 - v["y"]) @ np.log(1 - sigmoid(v["A"] @ v["w"]))),
      {"w": "A^T (sigmoid(A w) - y)"}, fix=_labels_01),
    P("softmax_cross_entropy", "-y^T (A w) + log(sum(exp(A w)))",
      lambda v: -v["y"] @ (v["A"] @ v["w"]) + np.log(np.sum(np.exp(v["A"] @ v["w"]))),
      {"w": "A^T (softmax(A w) - y)", "A": "(softmax(A w) - y) w^T"}, fix=_one_hot),
    P("multiclass_softmax", "-y^T W x + log(sum(exp(W x)))",
      lambda v: -v["y"] @ v["W"] @ v["x"] + np.log(np.sum(np.exp(v["W"] @ v["x"]))),
      {"W": "(softmax(W x) - y) x^T", "x": "W^T (softmax(W x) - y)"}, fix=_one_hot),
    P("multinomial_logistic", "-tr(Y^T X W) + sum(log(exp(X W) o))", _multinomial,
      {"W": "X^T (exp(X W) ./ (exp(X W) o o^T) - Y)", "X": "(exp(X W) ./ (exp(X W) o o^T) - Y) W^T"},
      symbols={"X": "matrix(N,d)", "W": "matrix(d,k)"}, fix=_both(_ones_o, _one_hot_rows),
      sizes={"N": 6, "d": 4, "k": 3}),
    P("log_sum_exp", "log(sum(exp(x)))", lambda v: np.log(np.sum(np.exp(v["x"]))),
      {"x": "exp(x) / sum(exp(x))"}),
    P("smooth_hinge", "sum(softplus(1 - y .* (A w))) + 0.5 lambda ||w||^2",
      lambda v: np.sum(softplus(1 - v["y"] * (v["A"] @ v["w"]))) + 0.5 * v["lambda"] * v["w"] @ v["w"],
      {"w": "lambda w - A^T (y .* sigmoid(1 - y .* (A w)))"}, symbols={"lambda": S}, fix=_labels_pm1),
    P("poisson_regression", "sum(exp(A w)) - y^T (A w)",
      lambda v: np.sum(np.exp(v["A"] @ v["w"])) - v["y"] @ (v["A"] @ v["w"]),
      {"w": "A^T (exp(A w) - y)", "A": "(exp(A w) - y) w^T"}),
    P("fisher_lda", "(w^T (m1 - m2))^2 / (w^T S w)",
      lambda v: (v["w"] @ (v["m1"] - v["m2"])) ** 2 / (v["w"] @ v["S"] @ v["w"]),
      {"w": "2 (w^T (m1 - m2)) (m1 - m2) / (w^T S w) - 2 (w^T (m1 - m2))^2 S w / (w^T S w)^2"},
      symbols={"S": "spd"}),
    # ------------------------------------------------------------------ Gaussians
    P("gaussian_mean", "(x - mu)^T S^-1 (x - mu)",
      lambda v: (v["x"] - v["mu"]) @ inv(v["S"]) @ (v["x"] - v["mu"]),
      {"mu": "2 S^-1 (mu - x)", "x": "2 S^-1 (x - mu)"}, symbols={"S": "spd"}),
    P("gaussian_nll", "logdet(S) + (x - mu)^T S^-1 (x - mu)",
      lambda v: logdet(v["S"]) + (v["x"] - v["mu"]) @ inv(v["S"]) @ (v["x"] - v["mu"]),
      {"S": "S^-1 - S^-1 (x - mu) (x - mu)^T S^-1", "mu": "2 S^-1 (mu - x)"}, symbols={"S": "spd"}),
    P("gaussian_nll_half", "0.5 logdet(S) + 0.5 (x - mu)^T inv(S) (x - mu)",
      lambda v: 0.5 * logdet(v["S"]) + 0.5 * (v["x"] - v["mu"]) @ inv(v["S"]) @ (v["x"] - v["mu"]),
      {"S": "0.5 (S^-1 - S^-1 (x - mu) (x - mu)^T S^-1)", "mu": "S^-1 (mu - x)"}, symbols={"S": "spd"}),
    P("gaussian_nll_samples", "N logdet(S) + tr(S^-1 (X - mu e^T) (X - mu e^T)^T)",
      lambda v: v["N"] * logdet(v["S"]) + tr(inv(v["S"]) @ (v["X"] - np.outer(v["mu"], v["e"])) @ (v["X"] - np.outer(v["mu"], v["e"])).T),
      {"S": "N S^-1 - S^-1 (X - mu e^T) (X - mu e^T)^T S^-1", "mu": "2 S^-1 (mu e^T - X) e"},
      symbols={"S": "spd", "N": S, "X": "matrix(d,k)"}, fix=_both(_ones_e, _count_N), sizes={"d": 3, "k": 6}),
    P("gaussian_nll_scatter", "N logdet(S) + tr(S^-1 C)",
      lambda v: v["N"] * logdet(v["S"]) + tr(inv(v["S"]) @ v["C"]),
      {"S": "N S^-1 - S^-1 C S^-1"}, symbols={"S": "spd", "C": "spd", "N": S}, fix=_count_N),
    P("gaussian_precision", "-N logdet(P) + tr(P C)",
      lambda v: -v["N"] * logdet(v["P"]) + tr(v["P"] @ v["C"]),
      {"P": "C - N P^-1"}, symbols={"P": "spd", "C": "spd", "N": S}, fix=_count_N),
    P("gaussian_centered_data", "N logdet(S) + tr(X^T S^-1 X)",
      lambda v: v["N"] * logdet(v["S"]) + tr(v["X"].T @ inv(v["S"]) @ v["X"]),
      {"S": "N S^-1 - S^-1 X X^T S^-1", "X": "2 S^-1 X"}, symbols={"S": "spd", "N": S}, fix=_count_N),
    P("gaussian_diag_cov_vector", "sum(log(s)) + sum((x - mu) .^ 2 ./ s)",
      lambda v: np.sum(np.log(v["s"])) + np.sum((v["x"] - v["mu"]) ** 2 / v["s"]),
      {"s": "1 ./ s - (x - mu) .^ 2 ./ s .^ 2", "mu": "2 (mu - x) ./ s"}, positive=("s",)),
    P("gaussian_diag_cov_matrix", "logdet(D) + (x - mu)^T D^-1 (x - mu)",
      lambda v: logdet(v["D"]) + (v["x"] - v["mu"]) @ inv(v["D"]) @ (v["x"] - v["mu"]),
      {"D": "I .* (D^-1 - D^-1 (x - mu) (x - mu)^T D^-1)"}, symbols={"D": "diagonal"}, positive=("D",)),
    P("regression_noise_variance", "N log(s2) + ||y - X w||^2 / s2",
      lambda v: v["N"] * np.log(v["s2"]) + np.sum((v["y"] - v["X"] @ v["w"]) ** 2) / v["s2"],
      {"s2": "N / s2 - ||y - X w||^2 / s2^2", "w": "2 X^T (X w - y) / s2"}, symbols={"s2": S, "N": S},
      fix=_count_N),
    P("gp_marginal_likelihood", "y^T (K + s I)^-1 y + logdet(K + s I)",
      lambda v: v["y"] @ inv(v["K"] + v["s"] * np.eye(len(v["y"]))) @ v["y"] + logdet(v["K"] + v["s"] * np.eye(len(v["y"]))),
      {"s": "tr((K + s I)^-1) - y^T (K + s I)^-2 y",
       "K": "(K + s I)^-1 - (K + s I)^-1 y y^T (K + s I)^-1"},
      symbols={"s": S, "K": "spd"}),
    P("student_t_nll", "(nu + 3) log(1 + (x - mu)^T S^-1 (x - mu) / nu) + logdet(S)", _student_t,
      {"mu": "2 (nu + 3) S^-1 (mu - x) / (nu + (x - mu)^T S^-1 (x - mu))",
       "S": "S^-1 - (nu + 3) S^-1 (x - mu) (x - mu)^T S^-1 / (nu + (x - mu)^T S^-1 (x - mu))",
       "nu": "log(1 + (x - mu)^T S^-1 (x - mu) / nu) - (nu + 3) (x - mu)^T S^-1 (x - mu) / (nu (nu + (x - mu)^T S^-1 (x - mu)))"},
      symbols={"S": "spd", "nu": S, "x": "vector(3)"}),
    P("kalman_marginal_likelihood", "logdet(A S A^T + R) + y^T (A S A^T + R)^-1 y", _kalman,
      {"S": "A^T ((A S A^T + R)^-1 - (A S A^T + R)^-1 y y^T (A S A^T + R)^-1) A",
       "R": "(A S A^T + R)^-1 - (A S A^T + R)^-1 y y^T (A S A^T + R)^-1"},
      symbols={"S": "spd", "R": "spd", "A": "matrix(m,n)"}),
    P("kl_gaussians", "0.5 (tr(S2^-1 S1) + (m2 - m1)^T S2^-1 (m2 - m1) - k + logdet(S2) - logdet(S1))",
      _kl_gaussians,
      {"S1": "0.5 (S2^-1 - S1^-1)", "m1": "S2^-1 (m1 - m2)",
       "S2": "0.5 (S2^-1 - S2^-1 (S1 + (m2 - m1) (m2 - m1)^T) S2^-1)"},
      symbols={"S1": "spd", "S2": "spd", "k": S}),
    P("factor_analysis", "logdet(W W^T + D) + tr((W W^T + D)^-1 C)", _factor_analysis,
      {"W": "2 ((W W^T + D)^-1 - (W W^T + D)^-1 C (W W^T + D)^-1) W",
       "D": "I .* ((W W^T + D)^-1 - (W W^T + D)^-1 C (W W^T + D)^-1)"},
      symbols={"D": "diagonal", "C": "spd", "W": "matrix(n,k)"}, positive=("D",), sizes={"n": 5, "k": 2}),
    P("mahalanobis", "sqrt((x - y)^T M (x - y))", _mahal,
      {"x": "M (x - y) / sqrt((x - y)^T M (x - y))", "y": "M (y - x) / sqrt((x - y)^T M (x - y))",
       "M": "(x - y) (x - y)^T / (2 sqrt((x - y)^T M (x - y)))"},
      symbols={"M": "spd"}, fix=_distinct_xy),
    P("metric_learning", "||L (x - y)||^2", lambda v: np.sum((v["L"] @ (v["x"] - v["y"])) ** 2),
      {"L": "2 L (x - y) (x - y)^T", "x": "2 L^T L (x - y)"}),
    # ------------------------------------------------------------------ factorisations, PCA
    P("matrix_factorisation", "||X - U V^T||_F^2", lambda v: np.sum((v["X"] - v["U"] @ v["V"].T) ** 2),
      {"U": "2 (U V^T - X) V", "V": "2 (U V^T - X)^T U"}, symbols={"X": "matrix(m,n)", "U": "matrix(m,k)"},
      sizes={"m": 6, "n": 5, "k": 3}),
    P("matrix_factorisation_reg", "||X - U V^T||_F^2 + lambda (||U||_F^2 + ||V||_F^2)",
      lambda v: np.sum((v["X"] - v["U"] @ v["V"].T) ** 2) + v["lambda"] * (np.sum(v["U"] ** 2) + np.sum(v["V"] ** 2)),
      {"U": "2 (U V^T - X) V + 2 lambda U", "V": "2 (U V^T - X)^T U + 2 lambda V"},
      symbols={"lambda": S, "X": "matrix(m,n)", "U": "matrix(m,k)"}, sizes={"m": 6, "n": 5, "k": 3}),
    P("matrix_completion", "||M .* (X - U V^T)||_F^2",
      lambda v: np.sum((v["M"] * (v["X"] - v["U"] @ v["V"].T)) ** 2),
      {"U": "2 (M .* M .* (U V^T - X)) V", "V": "2 (M .* M .* (U V^T - X))^T U"},
      symbols={"X": "matrix(m,n)", "U": "matrix(m,k)"}, sizes={"m": 6, "n": 5, "k": 3}),
    P("rayleigh_quotient", "w^T C w / (w^T w)", lambda v: v["w"] @ v["C"] @ v["w"] / (v["w"] @ v["w"]),
      {"w": "2 C w / (w^T w) - 2 (w^T C w) w / (w^T w)^2"}, symbols={"C": "symmetric"}),
    P("rayleigh_quotient_general", "w^T C w / (w^T w)", lambda v: v["w"] @ v["C"] @ v["w"] / (v["w"] @ v["w"]),
      {"w": "(C + C^T) w / (w^T w) - 2 (w^T C w) w / (w^T w)^2"}),
    P("trace_form", "tr(W^T C W)", lambda v: tr(v["W"].T @ v["C"] @ v["W"]),
      {"W": "2 C W", "C": "W W^T"}, symbols={"C": "symmetric", "W": "matrix(n,k)"}),
    P("pca_reconstruction", "||X - W W^T X||_F^2", lambda v: np.sum((v["X"] - v["W"] @ v["W"].T @ v["X"]) ** 2),
      {"W": "-2 ((X - W W^T X) X^T + X (X - W W^T X)^T) W"}, symbols={"X": "matrix(d,k)", "W": "matrix(d,r)"},
      sizes={"d": 5, "k": 6, "r": 2}),
    P("linear_autoencoder", "||X - B A X||_F^2", lambda v: np.sum((v["X"] - v["B"] @ v["A"] @ v["X"]) ** 2),
      {"A": "2 B^T (B A X - X) X^T", "B": "2 (B A X - X) X^T A^T"},
      symbols={"X": "matrix(d,k)", "A": "matrix(r,d)"}, sizes={"d": 5, "k": 6, "r": 2}),
    P("graph_laplacian_reg", "tr(F^T L F) + mu ||F - Y||_F^2",
      lambda v: tr(v["F"].T @ v["L"] @ v["F"]) + v["mu"] * np.sum((v["F"] - v["Y"]) ** 2),
      {"F": "2 L F + 2 mu (F - Y)"}, symbols={"L": "symmetric", "mu": S}),
    # ------------------------------------------------------------------ barriers and smooth penalties
    P("log_barrier", "-sum(log(b - A x))", lambda v: -np.sum(np.log(v["b"] - v["A"] @ v["x"])),
      {"x": "A^T (1 ./ (b - A x))", "b": "-1 ./ (b - A x)", "A": "(1 ./ (b - A x)) x^T"}, fix=_barrier_feasible),
    P("lp_barrier", "t c^T x - sum(log(x))", lambda v: v["t"] * v["c"] @ v["x"] - np.sum(np.log(v["x"])),
      {"x": "t c - 1 ./ x", "t": "c^T x"}, symbols={"t": S}, positive=("x",)),
    P("logdet_barrier", "-logdet(X)", lambda v: -logdet(v["X"]), {"X": "-X^-1"}, symbols={"X": "spd"}),
    P("sdp_barrier", "tr(C X) - logdet(X)", lambda v: tr(v["C"] @ v["X"]) - logdet(v["X"]),
      {"X": "C - X^-1"}, symbols={"X": "spd", "C": "symmetric"}),
    P("smooth_abs", "sum(sqrt(1 + x .* x))", lambda v: np.sum(np.sqrt(1 + v["x"] ** 2)),
      {"x": "x ./ sqrt(1 + x .* x)"}),
    P("pseudo_huber", "delta^2 sum(sqrt(1 + ((A x - b) / delta) .^ 2))",
      lambda v: v["delta"] ** 2 * np.sum(np.sqrt(1 + ((v["A"] @ v["x"] - v["b"]) / v["delta"]) ** 2)),
      {"x": "A^T ((A x - b) ./ sqrt(1 + ((A x - b) / delta) .^ 2))"}, symbols={"delta": S}),
    P("log_cosh", "sum(softplus(2 r) - r)",
      lambda v: np.sum(softplus(2 * v["r"]) - v["r"]), {"r": "tanh(r)"}),
    P("nuclear_surrogate", "logdet(X^T X + eps I)",
      lambda v: logdet(v["X"].T @ v["X"] + v["eps"] * np.eye(v["X"].shape[1])),
      {"X": "2 X (X^T X + eps I)^-1", "eps": "tr((X^T X + eps I)^-1)"},
      symbols={"eps": S, "X": "matrix(m,n)"}, sizes={"m": 5, "n": 3}),
    # ------------------------------------------------------------------ neural networks
    P("tanh_layer", "sum(tanh(W x + b))", lambda v: np.sum(np.tanh(v["W"] @ v["x"] + v["b"])),
      {"W": "(1 - tanh(W x + b) .^ 2) x^T", "b": "1 - tanh(W x + b) .^ 2",
       "x": "W^T (1 - tanh(W x + b) .^ 2)"}),
    P("two_layer_regression", "||V tanh(W x + b) - y||^2",
      lambda v: np.sum((v["V"] @ np.tanh(v["W"] @ v["x"] + v["b"]) - v["y"]) ** 2),
      {"V": "2 (V tanh(W x + b) - y) tanh(W x + b)^T",
       "W": "2 ((V^T (V tanh(W x + b) - y)) .* (1 - tanh(W x + b) .^ 2)) x^T",
       "b": "2 (V^T (V tanh(W x + b) - y)) .* (1 - tanh(W x + b) .^ 2)"},
      symbols={"V": "matrix(p,h)", "W": "matrix(h,n)"}),
    P("batched_mlp", "||tanh(X W) V - Y||_F^2", lambda v: np.sum((np.tanh(v["X"] @ v["W"]) @ v["V"] - v["Y"]) ** 2),
      {"V": "2 tanh(X W)^T (tanh(X W) V - Y)",
       "W": "2 X^T (((tanh(X W) V - Y) V^T) .* (1 - tanh(X W) .^ 2))"},
      symbols={"X": "matrix(N,d)", "W": "matrix(d,h)"}, sizes={"N": 6, "d": 4, "h": 5}),
    P("sigmoid_readout", "v^T sigmoid(W x + b)", lambda v: v["v"] @ sigmoid(v["W"] @ v["x"] + v["b"]),
      {"W": "(v .* sigmoid(W x + b) .* (1 - sigmoid(W x + b))) x^T",
       "b": "v .* sigmoid(W x + b) .* (1 - sigmoid(W x + b))"}),
    P("softplus_layer", "sum(softplus(W x))", lambda v: np.sum(softplus(v["W"] @ v["x"])),
      {"W": "sigmoid(W x) x^T", "x": "W^T sigmoid(W x)"}),
    P("word2vec_negative_sampling", "-log(sigmoid(u^T v)) - sum(log(sigmoid(-N v)))",
      lambda v: -np.log(sigmoid(v["u"] @ v["v"])) - np.sum(np.log(sigmoid(-v["N"] @ v["v"]))),
      {"v": "N^T sigmoid(N v) - sigmoid(-u^T v) u", "u": "-sigmoid(-u^T v) v",
       "N": "sigmoid(N v) v^T"}),
    # ------------------------------------------------------------------ kernels, similarity, information
    P("kernel_ridge", "||y - K a||^2 + lambda a^T K a",
      lambda v: np.sum((v["y"] - v["K"] @ v["a"]) ** 2) + v["lambda"] * v["a"] @ v["K"] @ v["a"],
      {"a": "2 K (K a - y + lambda a)", "lambda": "a^T K a"}, symbols={"K": "symmetric", "lambda": S}),
    P("kernel_ridge_fit", "y^T (K + lambda I)^-1 y",
      lambda v: v["y"] @ inv(v["K"] + v["lambda"] * np.eye(len(v["y"]))) @ v["y"],
      {"lambda": "-y^T (K + lambda I)^-2 y", "K": "-(K + lambda I)^-1 y y^T (K + lambda I)^-1",
       "y": "2 (K + lambda I)^-1 y"},
      symbols={"K": "spd", "lambda": S}),
    P("cosine_similarity", "x^T y / (||x|| ||y||)",
      lambda v: v["x"] @ v["y"] / (np.linalg.norm(v["x"]) * np.linalg.norm(v["y"])),
      {"x": "y / (||x|| ||y||) - (x^T y) x / (||x||^3 ||y||)"}),
    P("triplet_loss", "||a - p||^2 - ||a - n||^2",
      lambda v: np.sum((v["a"] - v["p"]) ** 2) - np.sum((v["a"] - v["n"]) ** 2),
      {"a": "2 (n - p)", "p": "2 (p - a)", "n": "2 (a - n)"}),
    P("entropy", "-sum(p .* log(p))", lambda v: -np.sum(v["p"] * np.log(v["p"])), {"p": "-log(p) - 1"},
      fix=_pos_prob("p")),
    P("kl_divergence", "sum(p .* log(p ./ q))", lambda v: np.sum(v["p"] * np.log(v["p"] / v["q"])),
      {"p": "log(p ./ q) + 1", "q": "-p ./ q"}, fix=_both(_pos_prob("p"), _pos_prob("q"))),
    P("cross_entropy_probs", "-y^T log(p)", lambda v: -v["y"] @ np.log(v["p"]), {"p": "-y ./ p"},
      fix=_both(_pos_prob("p"), _pos_prob("y"))),
]

CASES = params(PROBLEMS)


@pytest.mark.parametrize("case", CASES)
def test_everyday(case):
    problem, wrt = case
    check(problem, wrt)


def test_count():
    assert len(PROBLEMS) >= 40


if __name__ == "__main__":
    print_report(PROBLEMS)
