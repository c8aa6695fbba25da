"""The exact (SDP) solver: exact recovery from teaching sets, identifiability, labelled accuracy, oracles."""

import builtins

import numpy as np
import pytest

from skdict import TripletFeatureLearner
from skdict.datasets import make_eigendecomposition_teaching_set, make_sparse_teaching_set, make_triplet_feedback
from skdict.metrics import feature_matrix_pcc

cp = pytest.importorskip("cvxpy")


def _rank_r_phi(p, r, seed):
    D = np.random.default_rng(seed).standard_normal((r, p))
    Phi = D.T @ D
    return Phi / np.linalg.norm(Phi)


def _relative_error(Phi_hat, Phi):
    return np.linalg.norm(Phi_hat / np.linalg.norm(Phi_hat) - Phi / np.linalg.norm(Phi))


def _eigenpairs(Phi, r):
    eigenvalues, eigenvectors = np.linalg.eigh(Phi)
    return eigenvalues[::-1][:r], eigenvectors[:, ::-1]


def _distance_gaps(T, Phi):
    """d_Φ(x, y) - d_Φ(x, z) for every triplet, from the definition."""
    a, b = T[:, 0] - T[:, 1], T[:, 0] - T[:, 2]
    return np.einsum("ij,jk,ik->i", a, Phi, a) - np.einsum("ij,jk,ik->i", b, Phi, b)


def _witness(Phi, r, drop):
    """A PSD matrix not proportional to Φ that satisfies the eigendecomposition set without equality ``drop``.

    The set lists p - r null-space equalities, then u_2..u_r against u_1, then the pairs u_k + u_l.
    Dropping null vector v adds v v^T; dropping u_k moves the (k, k) entry in the eigenbasis by δ and
    the (i, k) entries by -δ/2, which keeps every pair u_i + u_k; dropping a pair moves its (k, l) entry.
    """
    p = Phi.shape[0]
    eigenvalues, V = _eigenpairs(Phi, r)
    U = V[:, :r]
    B = np.zeros((r, r))
    if drop < p - r:
        v = V[:, r + drop]
        return Phi + 0.1 * eigenvalues[0] * np.outer(v, v)
    delta = 0.5 * eigenvalues[-1]  # small enough for Λ + B to stay positive definite
    drop -= p - r
    if drop < r - 1:
        k = drop + 1
        B[k, :] = B[:, k] = -delta / 2
        B[k, k] = delta
    else:
        k, l = [pair for pair in zip(*np.triu_indices(r, k=1))][drop - (r - 1)]
        B[k, l] = B[l, k] = delta
    return Phi + U @ B @ U.T


@pytest.mark.parametrize(("p", "r"), [(10, 4), (10, 8), (16, 5)])
def test_exact_recovery_from_the_eigendecomposition_teaching_set(p, r):
    Phi = _rank_r_phi(p, r, seed=p + r)
    T = make_eigendecomposition_teaching_set(Phi)
    assert T.shape[0] == r * (r + 1) // 2 + (p - r) - 1
    est = TripletFeatureLearner(solver="cvxpy").fit(T)
    assert est.solver_ == "cvxpy"
    assert _relative_error(est.feature_matrix_, Phi) < 1e-3
    assert est.rank_ == r


@pytest.mark.parametrize(("p", "r"), [(10, 4), (10, 8), (16, 5)])
def test_one_equality_fewer_is_not_identifiable(p, r):
    Phi = _rank_r_phi(p, r, seed=p + r)
    T = make_eigendecomposition_teaching_set(Phi)
    # The full set: Φ ⪰ 0 and the null-space equalities confine Φ to U B U^T (U the eigenvectors);
    # the remaining equalities, restricted to such matrices, leave only the direction of Φ itself.
    U = _eigenpairs(Phi, r)[1][:, :r]
    a, b = T[:, 0] - T[:, 1], T[:, 0] - T[:, 2]
    rows = np.stack([(U.T @ np.outer(ai, ai) @ U - U.T @ np.outer(bi, bi) @ U).ravel() for ai, bi in zip(a, b)])
    assert np.linalg.matrix_rank(rows, tol=1e-9 * np.abs(rows).max()) == r * (r + 1) // 2 - 1
    # One equality fewer: another PSD matrix, not a multiple of Φ, satisfies everything that is left.
    for drop in range(T.shape[0]):
        reduced = np.delete(T, drop, axis=0)
        other = _witness(Phi, r, drop)
        assert np.linalg.eigvalsh(other)[0] > -1e-12
        assert _relative_error(other, Phi) > 1e-3  # farther than the recovery tolerance
        np.testing.assert_allclose(_distance_gaps(reduced, other), 0, atol=1e-12)
        assert abs(_distance_gaps(T[drop : drop + 1], other)[0]) > 1e-6  # the dropped one rules it out
    # And the SDP, given the reduced set, returns a matrix other than Φ.
    for drop in (0, p - r):  # the first null-space equality; the equality for u_2
        est = TripletFeatureLearner(solver="cvxpy").fit(np.delete(T, drop, axis=0))
        assert _relative_error(est.feature_matrix_, Phi) > 1e-3


def test_dropping_an_off_diagonal_equality_is_hidden_by_the_ridge_tie_break():
    # Without the equality for u_k + u_l the feasible set is a segment (see the test above), and the
    # ridge term picks its point of least Frobenius norm, which is Φ itself: documented behaviour.
    p, r = 10, 4
    Phi = _rank_r_phi(p, r, seed=p + r)
    T = make_eigendecomposition_teaching_set(Phi)
    est = TripletFeatureLearner(solver="cvxpy").fit(T[:-1])
    assert _relative_error(est.feature_matrix_, Phi) < 1e-6


@pytest.mark.parametrize("p", [4, 9])
def test_exact_recovery_from_the_sparse_teaching_set(p):
    Phi = _rank_r_phi(p, p, seed=p)
    T = make_sparse_teaching_set(Phi)
    assert T.shape[0] == p * (p + 1) // 2 - 1
    est = TripletFeatureLearner(solver="cvxpy").fit(T)
    assert _relative_error(est.feature_matrix_, Phi) < 1e-6


@pytest.mark.parametrize("solver", ["cvxpy", "lowrank"])
def test_labelled_random_triplets_generalise(solver):
    # The "must show": 2,000 labelled triplets, p = 10, rank 3: held-out accuracy >= 0.95.
    p, r = 10, 3
    D = np.random.default_rng(1).standard_normal((r, p))
    Phi = D.T @ D
    T, y = make_triplet_feedback(Phi, 4000, kind="comparison", random_state=0)
    est = TripletFeatureLearner(solver=solver, rank=None if solver == "cvxpy" else r, random_state=5)
    est.fit(T[:2000], y[:2000])
    assert est.score(T[2000:], y[2000:]) >= 0.95
    assert feature_matrix_pcc(Phi, est.feature_matrix_) > 0.99


def test_sdp_matches_a_formulation_written_from_the_definition():
    # Mixed equalities and labels; the oracle states every constraint and hinge per triplet with quad_form.
    rng = np.random.default_rng(3)
    p, alpha, margin = 4, 0.05, 0.05
    D = rng.standard_normal((2, p))
    Phi_true = D.T @ D
    T_eq, _ = make_triplet_feedback(Phi_true, 3, kind="equality", random_state=1)
    T_lab, y_lab = make_triplet_feedback(Phi_true, 30, kind="comparison", random_state=2)
    y_lab[:4] *= -1  # some wrong labels, so slack is needed
    T = np.concatenate([T_eq, T_lab])
    y = np.concatenate([np.zeros(3, dtype=int), y_lab])
    est = TripletFeatureLearner(solver="cvxpy", alpha=alpha, margin=margin).fit(T, y)

    Phi = cp.Variable((p, p), PSD=True)
    constraints, hinges = [cp.trace(Phi) == p], []
    for (x, u, v), label in zip(T, y):
        a, b = x - u, x - v
        s = (cp.quad_form(b, Phi, assume_PSD=True) - cp.quad_form(a, Phi, assume_PSD=True)) / (a @ a + b @ b)
        if label == 0:
            constraints.append(s == 0)
        else:
            hinges.append(cp.pos(margin - label * s))
    objective = cp.sum(cp.hstack(hinges)) / len(T) + alpha / p * cp.sum_squares(Phi)
    cp.Problem(cp.Minimize(objective), constraints).solve(solver=cp.CLARABEL)
    expected = Phi.value / np.linalg.norm(Phi.value)
    np.testing.assert_allclose(est.feature_matrix_, expected, atol=1e-5)


def test_inconsistent_equalities_raise_a_clear_error():
    rng = np.random.default_rng(0)
    T = rng.standard_normal((40, 3, 3))  # generic "equalities" that no nonzero Φ satisfies
    with pytest.raises(ValueError, match="solver='lowrank'"):
        TripletFeatureLearner(solver="cvxpy").fit(T)


def test_missing_cvxpy_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_cvxpy(name, *args, **kwargs):
        if name == "cvxpy" or name.startswith("cvxpy."):
            raise ImportError("No module named 'cvxpy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cvxpy)
    T = make_sparse_teaching_set(np.eye(3))
    with pytest.raises(ImportError, match=r"pip install \"skdict\[exact\]\".*or use solver='lowrank'"):
        TripletFeatureLearner(solver="cvxpy").fit(T)
    est = TripletFeatureLearner(solver="auto", max_iter=2, random_state=0).fit(T)
    assert est.solver_ == "lowrank"


def test_rank_truncates_the_sdp_solution():
    Phi = _rank_r_phi(6, 3, seed=0)
    est = TripletFeatureLearner(solver="cvxpy", rank=2).fit(make_eigendecomposition_teaching_set(Phi))
    assert est.rank_ == 2 and est.components_.shape == (2, 6)
    eigenvalues = np.linalg.eigvalsh(Phi)[::-1]
    truncated = eigenvalues[:2] / np.linalg.norm(eigenvalues[:2])
    np.testing.assert_allclose(np.linalg.eigvalsh(est.feature_matrix_)[::-1][:2], truncated, atol=1e-6)
