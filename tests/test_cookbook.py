"""The Matrix Cookbook's derivative identities (Petersen & Pedersen, version of
November 15, 2012), each checked numerically.

Equation numbers are those of the 2012 edition (the ones SymPy's test-suite quotes);
"§" marks identities of a section whose number we do not pin down, and "elementwise"
marks the NumPy-style analogues the Cookbook itself does not list (functions of a
matrix are elementwise in matcalc).

Each problem: (the function in the input language, the same function in NumPy, and for
each variable the shortest answer one would write by hand, from the Cookbook).  The test
asserts correctness only (finite differences of the NumPy function, read-back of the
printed answer, and the hand form itself); `python tests/test_cookbook.py` prints the
answers that are clearly longer than the hand-written form.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fd_everyday import (Problem, check, det, inv, logdet, mpow, params,  # noqa: E402
                          print_report, tr)

P = Problem
T = np.transpose


def _posdet(name):
    """Make det(v[name]) > 0 by flipping a row if needed."""
    def fix(v, rng):
        if np.linalg.det(v[name]) < 0:
            v[name] = v[name].copy()
            v[name][0] *= -1
    return fix


def _small_t(v, rng):
    v["t"] = 0.3


def _positive_aXb(v, rng):
    # a^T X b > 0
    if v["a"] @ v["X"] @ v["b"] < 0.2:
        v["X"] = v["X"] + (0.5 - v["a"] @ v["X"] @ v["b"]) * np.outer(v["a"], v["b"]) / (
            (v["a"] @ v["a"]) * (v["b"] @ v["b"]))


PROBLEMS = [
    # ------------------------------------------------------------------ 2.1 determinants
    P("eq46_det_line", "det(A + t B)", lambda v: det(v["A"] + v["t"] * v["B"]),
      {"t": "det(A + t B) tr((A + t B)^-1 B)"}, symbols={"t": "scalar"}, eq="(46)"),
    P("eq46_logdet_line", "logdet(A + t B)", lambda v: logdet(v["A"] + v["t"] * v["B"]),
      {"t": "tr((A + t B)^-1 B)"}, symbols={"t": "scalar", "A": "spd", "B": "symmetric"},
      fix=_small_t, eq="(46)/(43)"),
    P("eq49_det", "det(X)", lambda v: det(v["X"]), {"X": "det(X) X^-T"}, eq="(49)"),
    P("eq51_det_AXB", "det(A X B)", lambda v: det(v["A"] @ v["X"] @ v["B"]),
      {"X": "det(A X B) X^-T", "A": "det(A X B) A^-T", "B": "det(A X B) B^-T"},
      symbols={"A": "matrix(n,n)", "X": "matrix(n,n)", "B": "matrix(n,n)"}, eq="(51)"),
    P("eq52_det_XtAX_square", "det(X^T A X)", lambda v: det(v["X"].T @ v["A"] @ v["X"]),
      {"X": "2 det(X^T A X) X^-T"}, symbols={"X": "matrix(n,n)"}, eq="(52)"),
    P("eq53_det_XtAX_symA", "det(X^T A X)", lambda v: det(v["X"].T @ v["A"] @ v["X"]),
      {"X": "2 det(X^T A X) A X (X^T A X)^-1"}, symbols={"A": "symmetric", "X": "matrix(m,n)"},
      values_as={"A": "spd"}, sizes={"m": 5, "n": 3}, eq="(53)"),
    P("eq54_det_XtAX", "det(X^T A X)", lambda v: det(v["X"].T @ v["A"] @ v["X"]),
      {"X": "det(X^T A X) (A X (X^T A X)^-1 + A^T X (X^T A^T X)^-1)"},
      symbols={"X": "matrix(m,n)"}, values_as={"A": "spd"}, sizes={"m": 5, "n": 3}, eq="(54)"),
    P("eq55_logdet_XtX", "logdet(X^T X)", lambda v: logdet(v["X"].T @ v["X"]),
      {"X": "2 X (X^T X)^-1"}, symbols={"X": "matrix(m,n)"}, sizes={"m": 5, "n": 3}, eq="(55)"),
    P("eq57_log_abs_det", "log(abs(det(X)))", lambda v: np.log(abs(det(v["X"]))),
      {"X": "X^-T"}, eq="(57)"),
    P("eq57_logdet", "logdet(X)", lambda v: logdet(v["X"]), {"X": "X^-T"}, fix=_posdet("X"),
      eq="(57)"),
    P("eq57_log_det", "log(det(X))", lambda v: logdet(v["X"]), {"X": "X^-T"}, fix=_posdet("X"),
      eq="(57)"),
    P("eq58_det_Xk", "det(X^3)", lambda v: det(mpow(v["X"], 3)), {"X": "3 det(X^3) X^-T"},
      eq="(58)"),
    # ------------------------------------------------------------------ 2.2 inverses
    P("eq59_inverse_line", "(A + t B)^-1", lambda v: inv(v["A"] + v["t"] * v["B"]),
      {"t": "-(A + t B)^-1 B (A + t B)^-1"}, symbols={"t": "scalar"}, fix=_small_t, eq="(59)"),
    P("eq61_aXinvb", "a^T X^-1 b", lambda v: v["a"] @ inv(v["X"]) @ v["b"],
      {"X": "-X^-T a b^T X^-T", "a": "X^-1 b", "b": "X^-T a"}, eq="(61)"),
    P("eq62_det_inv", "det(X^-1)", lambda v: det(inv(v["X"])), {"X": "-det(X^-1) X^-T"}, eq="(62)"),
    P("eq63_tr_AXinvB", "tr(A X^-1 B)", lambda v: tr(v["A"] @ inv(v["X"]) @ v["B"]),
      {"X": "-X^-T A^T B^T X^-T"}, symbols={"A": "matrix(p,n)", "B": "matrix(n,p)"},
      eq="(63)/(124)"),
    P("eq64_tr_inv_XplusA", "tr((X + A)^-1)", lambda v: tr(inv(v["X"] + v["A"])),
      {"X": "-(X + A)^-T (X + A)^-T", "A": "-(X + A)^-T (X + A)^-T"},
      values_as={"A": "spd", "X": "spd"}, eq="(64)"),
    P("inv_tr_Xinv", "tr(X^-1)", lambda v: tr(inv(v["X"])), {"X": "-X^-T X^-T"}, eq="(64) with A = 0"),
    P("inv_tr_Xinv_spd", "tr(X^-1)", lambda v: tr(inv(v["X"])), {"X": "-X^-2"},
      symbols={"X": "spd"}, eq="(64), X spd"),
    # ------------------------------------------------------------------ 2.4 vectors and scalar forms
    P("eq69_xta", "x^T a", lambda v: v["x"] @ v["a"], {"x": "a", "a": "x"}, eq="(69)"),
    P("eq69_atx", "a^T x", lambda v: v["a"] @ v["x"], {"x": "a"}, eq="(69)"),
    P("eq70_aXb", "a^T X b", lambda v: v["a"] @ v["X"] @ v["b"],
      {"X": "a b^T", "a": "X b", "b": "X^T a"}, eq="(70)"),
    P("eq71_aXtb", "a^T X^T b", lambda v: v["a"] @ v["X"].T @ v["b"], {"X": "b a^T"}, eq="(71)"),
    P("eq72_aXa", "a^T X a", lambda v: v["a"] @ v["X"] @ v["a"], {"X": "a a^T", "a": "(X + X^T) a"},
      eq="(72)"),
    P("eq72_aXta", "a^T X^T a", lambda v: v["a"] @ v["X"].T @ v["a"], {"X": "a a^T"}, eq="(72)"),
    P("eq77_bXtXc", "b^T X^T X c", lambda v: v["b"] @ v["X"].T @ v["X"] @ v["c"],
      {"X": "X (b c^T + c b^T)"}, eq="(77)"),
    P("eq78_bilinear_affine", "(B x + b)^T C (D x + d)",
      lambda v: (v["B"] @ v["x"] + v["b"]) @ v["C"] @ (v["D"] @ v["x"] + v["d"]),
      {"x": "B^T C (D x + d) + D^T C^T (B x + b)", "C": "(B x + b) (D x + d)^T"},
      symbols={"B": "matrix(p,n)", "D": "matrix(q,n)"}, eq="(78)"),
    P("eq81_xtBx", "x^T B x", lambda v: v["x"] @ v["B"] @ v["x"],
      {"x": "(B + B^T) x", "B": "x x^T"}, eq="(81)"),
    P("eq81_xtBx_sym", "x^T B x", lambda v: v["x"] @ v["B"] @ v["x"], {"x": "2 B x", "B": "x x^T"},
      symbols={"B": "symmetric"}, eq="(81), B symmetric"),
    P("eq82_bXtDXc", "b^T X^T D X c", lambda v: v["b"] @ v["X"].T @ v["D"] @ v["X"] @ v["c"],
      {"X": "D^T X b c^T + D X c b^T", "D": "X b c^T X^T"}, eq="(82)"),
    P("eq83_XbcDXbc", "(X b + c)^T D (X b + c)",
      lambda v: (v["X"] @ v["b"] + v["c"]) @ v["D"] @ (v["X"] @ v["b"] + v["c"]),
      {"X": "(D + D^T) (X b + c) b^T", "c": "(D + D^T) (X b + c)"}, eq="(83)"),
    P("eq84_88_weighted_As", "(x - A s)^T W (x - A s)",
      lambda v: (v["x"] - v["A"] @ v["s"]) @ v["W"] @ (v["x"] - v["A"] @ v["s"]),
      {"s": "-2 A^T W (x - A s)", "x": "2 W (x - A s)", "A": "-2 W (x - A s) s^T",
       "W": "(x - A s) (x - A s)^T"},
      symbols={"W": "symmetric", "A": "matrix(n,k)"}, eq="(84),(87),(88)"),
    P("eq85_86_weighted_s", "(x - s)^T W (x - s)",
      lambda v: (v["x"] - v["s"]) @ v["W"] @ (v["x"] - v["s"]),
      {"x": "2 W (x - s)", "s": "-2 W (x - s)"}, symbols={"W": "symmetric"}, eq="(85),(86)"),
    P("eq91_aX3b", "a^T X^3 b", lambda v: v["a"] @ mpow(v["X"], 3) @ v["b"],
      {"X": "a b^T X^T X^T + X^T a b^T X^T + X^T X^T a b^T"}, eq="(91)"),
    # (92) as printed in the Cookbook has its first term transposed; the hand form is the
    # corrected one: sum_r (X^r)^T X^n (a b^T + b a^T) (X^(n-1-r))^T
    P("eq92_aXntXnb", "a^T (X^2)^T X^2 b", lambda v: v["a"] @ mpow(v["X"], 2).T @ mpow(v["X"], 2) @ v["b"],
      {"X": "X^2 (a b^T + b a^T) X^T + X^T X^2 (a b^T + b a^T)"},
      eq="(92) (corrected)"),
    P("eq94_ratio_quadratics", "(A x)^T (A x) / ((B x)^T (B x))",
      lambda v: (v["A"] @ v["x"]) @ (v["A"] @ v["x"]) / ((v["B"] @ v["x"]) @ (v["B"] @ v["x"])),
      {"x": "2 A^T A x / (x^T B^T B x) - 2 (x^T A^T A x) B^T B x / (x^T B^T B x)^2"},
      symbols={"A": "matrix(p,n)", "B": "matrix(q,n)"}, eq="(94)"),
    P("eq96_quadratic_plus_linear", "x^T A x + b^T x", lambda v: v["x"] @ v["A"] @ v["x"] + v["b"] @ v["x"],
      {"x": "(A + A^T) x + b", "b": "x"}, eq="(96)"),
    P("eq81_kron_quadratic", "x^T kron(A, B) x", lambda v: v["x"] @ np.kron(v["A"], v["B"]) @ v["x"],
      {"x": "(kron(A, B) + kron(A, B)^T) x"}, symbols={"A": "matrix(p,p)", "B": "matrix(q,q)"},
      eq="(81) with the matrix A ⊗ B"),
    # ------------------------------------------------------------------ 2.5 traces
    P("eq99_tr_X", "tr(X)", lambda v: tr(v["X"]), {"X": "I(n)"}, symbols={"X": "matrix(n,n)"},
      eq="(99)"),
    P("eq100_tr_XA", "tr(X A)", lambda v: tr(v["X"] @ v["A"]), {"X": "A^T", "A": "X^T"},
      symbols={"X": "matrix(m,n)"}, eq="(100)"),
    P("eq101_tr_AXB", "tr(A X B)", lambda v: tr(v["A"] @ v["X"] @ v["B"]), {"X": "A^T B^T"},
      symbols={"X": "matrix(m,n)", "A": "matrix(p,m)"}, eq="(101)"),
    P("eq102_tr_AXtB", "tr(A X^T B)", lambda v: tr(v["A"] @ v["X"].T @ v["B"]), {"X": "B A"},
      symbols={"X": "matrix(m,n)", "A": "matrix(p,n)"}, eq="(102)"),
    P("eq103_tr_XtA", "tr(X^T A)", lambda v: tr(v["X"].T @ v["A"]), {"X": "A", "A": "X"},
      symbols={"X": "matrix(m,n)"}, eq="(103)"),
    P("eq104_tr_AXt", "tr(A X^T)", lambda v: tr(v["A"] @ v["X"].T), {"X": "A"},
      symbols={"X": "matrix(m,n)"}, eq="(104)"),
    P("eq105_tr_kron_AX", "tr(kron(A, X))", lambda v: tr(np.kron(v["A"], v["X"])),
      {"X": "tr(A) I(n)", "A": "tr(X) I(p)"}, symbols={"A": "matrix(p,p)", "X": "matrix(n,n)"},
      eq="(105)"),
    P("eq106_tr_X2", "tr(X^2)", lambda v: tr(v["X"] @ v["X"]), {"X": "2 X^T"}, eq="(106)"),
    P("eq107_tr_X2B", "tr(X^2 B)", lambda v: tr(v["X"] @ v["X"] @ v["B"]), {"X": "(X B + B X)^T"},
      eq="(107)"),
    P("eq108_tr_XtBX", "tr(X^T B X)", lambda v: tr(v["X"].T @ v["B"] @ v["X"]),
      {"X": "B X + B^T X", "B": "X X^T"}, symbols={"X": "matrix(m,n)"}, eq="(108)"),
    P("eq109_tr_BXXt", "tr(B X X^T)", lambda v: tr(v["B"] @ v["X"] @ v["X"].T), {"X": "B X + B^T X"},
      symbols={"X": "matrix(m,n)"}, eq="(109)"),
    P("eq110_tr_XXtB", "tr(X X^T B)", lambda v: tr(v["X"] @ v["X"].T @ v["B"]), {"X": "B X + B^T X"},
      symbols={"X": "matrix(m,n)"}, eq="(110)"),
    P("eq111_tr_XBXt", "tr(X B X^T)", lambda v: tr(v["X"] @ v["B"] @ v["X"].T), {"X": "X B^T + X B"},
      symbols={"X": "matrix(m,n)"}, eq="(111)"),
    P("eq112_tr_BXtX", "tr(B X^T X)", lambda v: tr(v["B"] @ v["X"].T @ v["X"]), {"X": "X B^T + X B"},
      symbols={"X": "matrix(m,n)"}, eq="(112)"),
    P("eq113_tr_XtXB", "tr(X^T X B)", lambda v: tr(v["X"].T @ v["X"] @ v["B"]), {"X": "X B^T + X B"},
      symbols={"X": "matrix(m,n)"}, eq="(113)"),
    P("eq114_tr_AXBX", "tr(A X B X)", lambda v: tr(v["A"] @ v["X"] @ v["B"] @ v["X"]),
      {"X": "A^T X^T B^T + B^T X^T A^T"}, symbols={"X": "matrix(m,n)"}, eq="(114)"),
    P("eq115_tr_XtX", "tr(X^T X)", lambda v: tr(v["X"].T @ v["X"]), {"X": "2 X"},
      symbols={"X": "matrix(m,n)"}, eq="(115)"),
    P("eq115_tr_XXt", "tr(X X^T)", lambda v: tr(v["X"] @ v["X"].T), {"X": "2 X"},
      symbols={"X": "matrix(m,n)"}, eq="(115)"),
    P("eq116_tr_BtXtCXB", "tr(B^T X^T C X B)", lambda v: tr(v["B"].T @ v["X"].T @ v["C"] @ v["X"] @ v["B"]),
      {"X": "C^T X B B^T + C X B B^T"}, symbols={"X": "matrix(m,n)", "B": "matrix(n,p)"}, eq="(116)"),
    P("eq117_tr_XtBXC", "tr(X^T B X C)", lambda v: tr(v["X"].T @ v["B"] @ v["X"] @ v["C"]),
      {"X": "B X C + B^T X C^T"}, symbols={"X": "matrix(m,n)"}, eq="(117)"),
    P("eq118_tr_AXBXtC", "tr(A X B X^T C)", lambda v: tr(v["A"] @ v["X"] @ v["B"] @ v["X"].T @ v["C"]),
      {"X": "A^T C^T X B^T + C A X B"}, symbols={"X": "matrix(m,n)", "A": "matrix(p,m)"}, eq="(118)"),
    P("eq119_tr_AXBC_sq", "tr((A X B + C) (A X B + C)^T)",
      lambda v: tr((v["A"] @ v["X"] @ v["B"] + v["C"]) @ (v["A"] @ v["X"] @ v["B"] + v["C"]).T),
      {"X": "2 A^T (A X B + C) B^T", "C": "2 (A X B + C)"},
      symbols={"X": "matrix(m,n)", "A": "matrix(p,m)", "B": "matrix(n,q)"}, eq="(119)"),
    P("eq120_tr_kron_XX", "tr(kron(X, X))", lambda v: tr(np.kron(v["X"], v["X"])), {"X": "2 tr(X) I(n)"},
      symbols={"X": "matrix(n,n)"}, eq="(120)"),
    P("eq120_trX_squared", "tr(X)^2", lambda v: tr(v["X"]) ** 2, {"X": "2 tr(X) I(n)"},
      symbols={"X": "matrix(n,n)"}, eq="(120)"),
    P("eq121_tr_Xk", "tr(X^4)", lambda v: tr(mpow(v["X"], 4)), {"X": "4 (X^3)^T"}, eq="(121)"),
    P("eq122_tr_AXk", "tr(A X^3)", lambda v: tr(v["A"] @ mpow(v["X"], 3)),
      {"X": "(A X^2 + X A X + X^2 A)^T"}, eq="(122)"),
    P("eq123_tr_quartic", "tr(B^T X^T C X X^T C X B)",
      lambda v: tr(v["B"].T @ v["X"].T @ v["C"] @ v["X"] @ v["X"].T @ v["C"] @ v["X"] @ v["B"]),
      {"X": "C X X^T C X B B^T + C^T X B B^T X^T C^T X + C X B B^T X^T C X + C^T X X^T C^T X B B^T"},
      symbols={"X": "matrix(m,n)", "B": "matrix(n,p)"}, eq="(123)"),
    P("eq125_tr_XtCXinv_A", "tr((X^T C X)^-1 A)", lambda v: tr(inv(v["X"].T @ v["C"] @ v["X"]) @ v["A"]),
      {"X": "-C X (X^T C X)^-1 (A + A^T) (X^T C X)^-1"},
      symbols={"C": "symmetric", "X": "matrix(m,n)"}, values_as={"C": "spd"}, sizes={"m": 5, "n": 3},
      eq="(125)"),
    P("eq126_tr_ratio", "tr((X^T C X)^-1 (X^T B X))",
      lambda v: tr(inv(v["X"].T @ v["C"] @ v["X"]) @ (v["X"].T @ v["B"] @ v["X"])),
      {"X": "2 B X (X^T C X)^-1 - 2 C X (X^T C X)^-1 X^T B X (X^T C X)^-1"},
      symbols={"C": "symmetric", "B": "symmetric", "X": "matrix(m,n)"}, values_as={"C": "spd"},
      sizes={"m": 5, "n": 3}, eq="(126)"),
    P("eq127_tr_ratio_shift", "tr((A + X^T C X)^-1 (X^T B X))",
      lambda v: tr(inv(v["A"] + v["X"].T @ v["C"] @ v["X"]) @ (v["X"].T @ v["B"] @ v["X"])),
      {"X": "2 B X (A + X^T C X)^-1 - 2 C X (A + X^T C X)^-1 X^T B X (A + X^T C X)^-1"},
      symbols={"A": "symmetric", "C": "symmetric", "B": "symmetric", "X": "matrix(m,n)"},
      values_as={"A": "spd", "C": "spd"}, sizes={"m": 5, "n": 3}, eq="(127)"),
    P("eq128_tr_sin_elementwise", "tr(sin(X))", lambda v: tr(np.sin(v["X"])), {"X": "I .* cos(X)"},
      eq="elementwise analogue of (128)"),
    # ------------------------------------------------------------------ 2.6/2.7 norms
    P("eq129_norm_x_minus_a", "||x - a||", lambda v: np.linalg.norm(v["x"] - v["a"]),
      {"x": "(x - a) / ||x - a||", "a": "(a - x) / ||x - a||"}, eq="(129)"),
    P("eq129_norm2_x_minus_a", "norm(x - a)", lambda v: np.linalg.norm(v["x"] - v["a"]),
      {"x": "(x - a) / ||x - a||"}, eq="(129)"),
    P("eq131_norm_sq", "||x||^2", lambda v: v["x"] @ v["x"], {"x": "2 x"}, eq="(131)"),
    P("eq131_xtx", "x^T x", lambda v: v["x"] @ v["x"], {"x": "2 x"}, eq="(131)"),
    P("eq131_norm_sq_2", "||x||_2^2", lambda v: v["x"] @ v["x"], {"x": "2 x"}, eq="(131)"),
    P("eq132_fro_sq", "||X||_F^2", lambda v: np.sum(v["X"] ** 2), {"X": "2 X"},
      symbols={"X": "matrix(m,n)"}, eq="(132)"),
    P("eq132_norm_sq", "norm(X)^2", lambda v: np.sum(v["X"] ** 2), {"X": "2 X"},
      symbols={"X": "matrix(m,n)"}, eq="(132)"),
    P("eq132_fro", "||X||_F", lambda v: np.linalg.norm(v["X"]), {"X": "X / ||X||_F"},
      symbols={"X": "matrix(m,n)"}, eq="(132) chained"),
    P("norm_sq_Ax_b", "||A x - b||^2", lambda v: np.sum((v["A"] @ v["x"] - v["b"]) ** 2),
      {"x": "2 A^T (A x - b)", "A": "2 (A x - b) x^T", "b": "2 (b - A x)"}, eq="(131) chained"),
    P("norm_sq_sqrt_form", "(x^T x)^0.5", lambda v: np.sqrt(v["x"] @ v["x"]), {"x": "x / ||x||"},
      eq="(129), a = 0"),
    # ------------------------------------------------------------------ 2.8 structured matrices
    P("eq139_tr_AX_sym", "tr(A X)", lambda v: tr(v["A"] @ v["X"]), {"X": "(A + A^T) / 2"},
      symbols={"X": "symmetric"}, eq="(139), sym(G) convention"),
    P("eq139_tr_AX_sym_cookbook", "tr(A X)", lambda v: tr(v["A"] @ v["X"]), {"X": "A + A^T - A .* I"},
      symbols={"X": "symmetric"}, symmetric="cookbook", eq="(139)"),
    P("eq140_det_sym", "det(X)", lambda v: det(v["X"]), {"X": "det(X) X^-1"},
      symbols={"X": "symmetric"}, eq="(140), sym(G) convention"),
    P("eq140_det_sym_cookbook", "det(X)", lambda v: det(v["X"]), {"X": "det(X) (2 X^-1 - X^-1 .* I)"},
      symbols={"X": "symmetric"}, symmetric="cookbook", eq="(140)"),
    P("eq141_logdet_spd", "logdet(X)", lambda v: logdet(v["X"]), {"X": "X^-1"},
      symbols={"X": "spd"}, eq="(141), sym(G) convention"),
    P("eq141_logdet_spd_cookbook", "logdet(X)", lambda v: logdet(v["X"]), {"X": "2 X^-1 - X^-1 .* I"},
      symbols={"X": "spd"}, symmetric="cookbook", eq="(141)"),
    P("eq142_tr_AX_diag", "tr(A X)", lambda v: tr(v["A"] @ v["X"]), {"X": "A .* I"},
      symbols={"X": "diagonal"}, eq="(142)"),
    P("sym_xtXx", "x^T X x", lambda v: v["x"] @ v["X"] @ v["x"], {"X": "x x^T"},
      symbols={"X": "symmetric"}, eq="§2.8.2"),
    P("diag_logdet", "logdet(D)", lambda v: logdet(v["D"]), {"D": "D^-1"},
      symbols={"D": "diagonal"}, positive=("D",), eq="§2.8.3"),
    # ------------------------------------------------------------------ elementwise forms
    P("ew_sum_exp", "sum(exp(X))", lambda v: np.sum(np.exp(v["X"])), {"X": "exp(X)"},
      symbols={"X": "matrix(m,n)"}, eq="elementwise"),
    P("ew_hadamard_quadratic", "sum(A .* X .* X)", lambda v: np.sum(v["A"] * v["X"] * v["X"]),
      {"X": "2 A .* X", "A": "X .* X"}, symbols={"X": "matrix(m,n)"}, eq="elementwise"),
    P("ew_xt_a_hadamard_x", "x^T (a .* x)", lambda v: v["x"] @ (v["a"] * v["x"]),
      {"x": "2 a .* x", "a": "x .* x"}, eq="elementwise"),
    P("ew_sum_cube", "sum(X .^ 3)", lambda v: np.sum(v["X"] ** 3), {"X": "3 X .^ 2"},
      symbols={"X": "matrix(m,n)"}, eq="elementwise"),
    P("ew_a_sinX_b", "a^T sin(X) b", lambda v: v["a"] @ np.sin(v["X"]) @ v["b"],
      {"X": "a b^T .* cos(X)"}, symbols={"X": "matrix(m,n)"}, eq="elementwise"),
    P("ew_a_sinAXB_b", "a^T sin(A X B) b", lambda v: v["a"] @ np.sin(v["A"] @ v["X"] @ v["B"]) @ v["b"],
      {"X": "A^T (a b^T .* cos(A X B)) B^T"},
      symbols={"X": "matrix(m,n)", "A": "matrix(p,m)", "B": "matrix(n,q)"}, eq="elementwise"),
    P("ew_a_hadamard3_b", "a^T (A .* X .* B) b", lambda v: v["a"] @ (v["A"] * v["X"] * v["B"]) @ v["b"],
      {"X": "a b^T .* A .* B"}, symbols={"X": "matrix(m,n)"}, eq="elementwise"),
    P("ew_sqrt_aXb", "sqrt(a^T X b)", lambda v: np.sqrt(v["a"] @ v["X"] @ v["b"]),
      {"X": "a b^T / (2 sqrt(a^T X b))"}, symbols={"X": "matrix(m,n)"}, fix=_positive_aXb,
      eq="elementwise"),
    P("ew_sum_log", "sum(log(X))", lambda v: np.sum(np.log(v["X"])), {"X": "1 ./ X"},
      symbols={"X": "matrix(m,n)"}, positive=("X",), eq="elementwise"),
    P("ew_x_hadamard_sq_sum", "sum(x .^ 2 .* a)", lambda v: np.sum(v["x"] ** 2 * v["a"]),
      {"x": "2 a .* x"}, eq="elementwise"),
    P("ew_diag_quadratic", "diag(X)^T diag(X)", lambda v: np.diag(v["X"]) @ np.diag(v["X"]),
      {"X": "2 I .* X"}, eq="elementwise"),
    P("ew_tr_diag_x_A", "tr(diag(x) A)", lambda v: tr(np.diag(v["x"]) @ v["A"]),
      {"x": "diag(A)", "A": "diag(x)"}, eq="elementwise"),
    P("eq520_vec_quadratic", "vec(X)^T kron(B, A) vec(X)",
      lambda v: v["X"].flatten("F") @ np.kron(v["B"], v["A"]) @ v["X"].flatten("F"),
      {"X": "A X B^T + A^T X B"}, symbols={"X": "matrix(m,n)", "A": "matrix(m,m)", "B": "matrix(n,n)"},
      eq="(520) vec(AXB) = (B^T ⊗ A) vec(X)"),
    P("ew_sum_sq_shift", "sum((x - c) .^ 2)", lambda v: np.sum((v["x"] - v["c"]) ** 2),
      {"x": "2 (x - c)", "c": "2 sum(c - x)"}, symbols={"c": "scalar"}, eq="elementwise"),
    P("ew_tr_diag_cube", "tr(diag(x)^3)", lambda v: np.sum(v["x"] ** 3), {"x": "3 x .^ 2"}, eq="elementwise"),
    P("ew_vec_inner", "vec(X)^T vec(A)", lambda v: v["X"].flatten("F") @ v["A"].flatten("F"),
      {"X": "A"}, symbols={"X": "matrix(m,n)", "A": "matrix(m,n)"}, eq="§10.2.2 vec"),
]

CASES = params(PROBLEMS)


@pytest.mark.parametrize("case", CASES)
def test_cookbook(case):
    problem, wrt = case
    check(problem, wrt)


def test_count():
    assert len(PROBLEMS) >= 60


if __name__ == "__main__":
    print_report(PROBLEMS)
