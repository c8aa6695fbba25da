"""matching_pursuit and its backward pass: hand-built examples, laws of MP, finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict.ops.matching_pursuit import matching_pursuit, matching_pursuit_backward

#: (selection, positive): classical MP, MP-SAE's Algorithm 1, and non-negative codes.
RULES = [("absolute", False), ("signed", False), ("signed", True)]


def unit_dictionary(rng, m, d):
    D = rng.standard_normal((m, d))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def reference_pursuit(r, D, k, positive, selection=None):
    """Textbook matching pursuit on one signal, residual updated explicitly."""
    selection = selection or ("signed" if positive else "absolute")
    r = r.copy()
    Dn = D / np.linalg.norm(D, axis=1, keepdims=True)
    z = np.zeros(D.shape[0])
    chosen = []
    for _ in range(k):
        c = Dn @ r
        j = int(np.argmax(c if selection == "signed" else np.abs(c)))
        value = max(c[j], 0.0) if positive else c[j]
        z[j] += value / np.linalg.norm(D[j])
        r = r - value * Dn[j]
        chosen.append(j)
    return z, r, chosen


def test_hand_built_example():
    # atoms e1, e2 and (e1 + e2)/sqrt(2); x = (3, 1): |corr| = 3, 1, 2.83 -> e1 first (z=3),
    # residual (0, 1): corr 0, 1, 0.707 -> e2 (z=1), residual 0.
    D = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0] / np.sqrt(2)])
    trace = matching_pursuit(np.array([[3.0, 1.0]]), D, 2)
    np.testing.assert_array_equal(trace.indices, [[0, 1]])
    np.testing.assert_allclose(trace.values, [[3.0, 1.0]])
    np.testing.assert_allclose(trace.residual, 0.0, atol=1e-15)
    np.testing.assert_allclose(trace.codes().to_dense(), [[3.0, 1.0, 0.0]])


@pytest.mark.parametrize("selection, positive", RULES)
@pytest.mark.parametrize("scaled", [False, True])
def test_matches_the_textbook_loop(selection, positive, scaled):
    rng = np.random.default_rng(0)
    D = unit_dictionary(rng, 12, 6)
    if scaled:
        D *= rng.uniform(0.3, 3.0, (12, 1))  # codes must refer to the atoms as given
    R = rng.standard_normal((9, 6))
    trace = matching_pursuit(R, D, 5, positive=positive, selection=selection)
    for n in range(9):
        z, r, chosen = reference_pursuit(R[n], D, 5, positive, selection)
        if positive:
            chosen = [j for j, v in zip(chosen, trace.unit_values[n]) if v > 0]
            assert list(trace.indices[n][trace.unit_values[n] > 0]) == chosen
        else:
            assert list(trace.indices[n]) == chosen
        np.testing.assert_allclose(trace.codes().to_dense()[n], z, atol=1e-12)
        np.testing.assert_allclose(trace.residual[n], r, atol=1e-12)
    np.testing.assert_allclose(trace.residual, R - trace.codes().to_dense() @ D, atol=1e-12)
    if positive:
        assert (trace.values >= 0).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), m=st.integers(2, 20), d=st.integers(1, 8), rule=st.sampled_from(RULES))
def test_residual_never_grows_and_is_orthogonal_to_the_last_atom(seed, m, d, rule):
    selection, positive = rule
    rng = np.random.default_rng(seed)
    D = unit_dictionary(rng, m, d)
    R = rng.standard_normal((4, d))
    previous = np.linalg.norm(R, axis=1)
    for k in range(1, 6):
        trace = matching_pursuit(R, D, k, positive=positive, selection=selection)
        norms = np.linalg.norm(trace.residual, axis=1)
        assert (norms <= previous + 1e-12).all()
        previous = norms
        last = D[trace.indices[:, -1]]
        moved = trace.unit_values[:, -1] != 0
        np.testing.assert_allclose(np.sum(last * trace.residual, axis=1)[moved], 0.0, atol=1e-10)


@pytest.mark.parametrize("selection", ["absolute", "signed"])
def test_zero_atom_is_never_chosen_and_float32_is_kept(selection):
    rng = np.random.default_rng(1)
    D = unit_dictionary(rng, 6, 4)
    D[:, 0] = np.abs(D[:, 0]) + 0.5  # every atom in the half-space x_0 > 0
    D = (D / np.linalg.norm(D, axis=1, keepdims=True)).astype(np.float32)
    D[2] = 0
    R = rng.standard_normal((20, 4)).astype(np.float32)
    R[0] = [-1, 0, 0, 0]  # every correlation negative but the zero atom's: signed MP must not take the 0
    trace = matching_pursuit(R, D, 3, selection=selection)
    assert not (trace.indices == 2).any()
    assert trace.values.dtype == np.float32 and trace.residual.dtype == np.float32


def test_signed_selection_takes_the_least_negative_atom_when_no_correlation_is_positive():
    # atoms e1, e2; r = (-1, -2): correlations -1, -2. Signed (Algorithm 1): e1, code -1.
    # Absolute (classical MP): e2, code -2. Positive: stop, code 0. The residual never grows.
    D = np.eye(2)
    R = np.array([[-1.0, -2.0]])
    signed = matching_pursuit(R, D, 1, selection="signed")
    absolute = matching_pursuit(R, D, 1, selection="absolute")
    positive = matching_pursuit(R, D, 1, positive=True)
    np.testing.assert_allclose(signed.codes().to_dense(), [[-1.0, 0.0]])
    np.testing.assert_allclose(absolute.codes().to_dense(), [[0.0, -2.0]])
    np.testing.assert_allclose(positive.codes().to_dense(), [[0.0, 0.0]])
    np.testing.assert_allclose(signed.residual, [[0.0, -2.0]])
    np.testing.assert_allclose(absolute.residual, [[-1.0, 0.0]])


def test_selection_is_validated_and_none_keeps_the_classical_default():
    D, R = np.eye(3), np.array([[1.0, -3.0, 2.0]])
    assert matching_pursuit(R, D, 1).indices[0, 0] == 1  # absolute: |-3|
    assert matching_pursuit(R, D, 1, positive=True).indices[0, 0] == 2  # signed with the stop
    with pytest.raises(ValueError, match="positive=True needs selection='signed'"):
        matching_pursuit(R, D, 1, positive=True, selection="absolute")
    with pytest.raises(ValueError, match="selection must be one of"):
        matching_pursuit(R, D, 1, selection="abs")


def test_active_pairs_count_each_atom_once():
    # a 2-D signal with 3 atoms, 6 steps: atoms repeat; the pairs are the nonzero entries of the codes
    rng = np.random.default_rng(5)
    D = unit_dictionary(rng, 3, 2)
    R = rng.standard_normal((50, 2))
    for selection, positive in RULES:
        trace = matching_pursuit(R, D, 6, positive=positive, selection=selection)
        rows, cols = trace.active_pairs()
        dense = trace.codes().to_dense()
        expected_rows, expected_cols = np.nonzero(dense)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(cols, expected_cols)
        assert rows.shape[0] < 50 * 6  # repeats were merged


def test_blocks_give_the_same_result(monkeypatch):
    import skdict.ops.matching_pursuit as mp

    rng = np.random.default_rng(2)
    D, R = unit_dictionary(rng, 10, 5), rng.standard_normal((23, 5))
    whole = matching_pursuit(R, D, 4)
    monkeypatch.setattr(mp, "_BLOCK_ELEMENTS", 30)  # 3 rows per block (GPU path)
    monkeypatch.setattr(mp, "_CPU_ROWS", 3)  # 3 rows per block (CPU path)
    blocked = matching_pursuit(R, D, 4)
    np.testing.assert_array_equal(whole.indices, blocked.indices)
    np.testing.assert_allclose(whole.residual, blocked.residual, atol=1e-14)


def loss(R, D, k, positive, weights, selection=None):
    residual = matching_pursuit(R, D, k, positive=positive, selection=selection).residual
    return 0.5 * np.sum(weights * residual**2)


@pytest.mark.parametrize("selection, positive", RULES)
@pytest.mark.parametrize("unit", [True, False])
def test_backward_matches_finite_differences(selection, positive, unit):
    rng = np.random.default_rng(3)
    D = unit_dictionary(rng, 7, 5)
    if not unit:
        D *= rng.uniform(0.5, 2.0, (7, 1))
    R = rng.standard_normal((6, 5))
    weights = rng.uniform(0.5, 1.5, (6, 5))  # a loss other than the plain squared norm
    k = 3
    trace = matching_pursuit(R, D, k, positive=positive, selection=selection)
    grad_D, grad_R = matching_pursuit_backward(trace, weights * trace.residual)
    eps = 1e-6
    numeric_D = np.zeros_like(D)
    for index in np.ndindex(D.shape):
        step = np.zeros_like(D)
        step[index] = eps
        # choices must not flip inside the stencil
        assert np.array_equal(matching_pursuit(R, D + step, k, positive=positive, selection=selection).indices,
                              trace.indices)
        numeric_D[index] = (loss(R, D + step, k, positive, weights, selection)
                            - loss(R, D - step, k, positive, weights, selection)) / (2 * eps)
    numeric_R = np.zeros_like(R)
    for index in np.ndindex(R.shape):
        step = np.zeros_like(R)
        step[index] = eps
        numeric_R[index] = (loss(R + step, D, k, positive, weights, selection)
                            - loss(R - step, D, k, positive, weights, selection)) / (2 * eps)
    np.testing.assert_allclose(grad_D, numeric_D, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_R, numeric_R, rtol=1e-6, atol=1e-8)


def test_backward_with_stopped_positive_steps():
    # every correlation of the second signal is negative: both of its steps stop, and
    # the first signal's two steps are strict maxima (no tie inside the stencil)
    D = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    R = np.array([[2.0, 0.5], [-1.0, -2.0]])
    trace = matching_pursuit(R, D, 2, positive=True)
    np.testing.assert_array_equal(trace.unit_values[1], 0.0)
    np.testing.assert_array_equal(trace.indices[0], [0, 1])
    grad_D, grad_R = matching_pursuit_backward(trace, trace.residual)
    eps = 1e-6
    numeric = np.zeros_like(D)
    for index in np.ndindex(D.shape):
        step = np.zeros_like(D)
        step[index] = eps
        numeric[index] = (loss(R, D + step, 2, True, 1.0) - loss(R, D - step, 2, True, 1.0)) / (2 * eps)
    np.testing.assert_allclose(grad_D, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("selection, positive", RULES)
def test_gram_and_direct_updates_agree(selection, positive):
    from skdict.ops.matching_pursuit import unit_gram

    rng = np.random.default_rng(4)
    D = unit_dictionary(rng, 40, 6) * rng.uniform(0.5, 2.0, (40, 1))
    R = rng.standard_normal((3, 6))  # 40 > k * n = 9: no Gram matrix unless given
    direct = matching_pursuit(R, D, 3, positive=positive, selection=selection)
    with_gram = matching_pursuit(R, D, 3, positive=positive, selection=selection, gram=unit_gram(D))
    np.testing.assert_array_equal(direct.indices, with_gram.indices)
    np.testing.assert_allclose(direct.values, with_gram.values, atol=1e-12)
