"""The row-blocked forward pass of the training step against the whole-batch one.

A model that sets ``_rowwise_support = True`` has its (B x m) pre-activations
formed block by block; loss and every gradient must be those of the whole-batch
pass (itself checked against finite differences in test_gradients.py), with and
without the AuxK term, for a TopK SAE, a transcoder and an L1 crosscoder whose
penalty has parameter gradients; for JumpReLU, whose threshold window (probe
pairs) is collected block by block; and for BatchTopK, whose batch-wide budget is
selected from each row's candidates (rows that may hold more are encoded again).
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from skdict import MPSAE, BatchTopKSAE, JumpReLUSAE, ReLUSAE, TopKSAE
from skdict.sae import _step, batchtopk
from skdict.sae._step import loss_and_grads
from skdict.sae._data import InMemoryData

#: These fits are deliberately short (a few epochs, tiny data): running out of max_iter, or ending
#: below the mean's score, is expected here, not a finding (tests/sae/test_convergence_warning.py
#: checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_ROWS, D_IN, N_LATENTS = 23, 6, 40


def initialised(est, rng, Y=None):
    X = rng.normal(size=(N_ROWS, D_IN))
    est._initialize(InMemoryData(X, Y))
    for value in est._params().values():
        value += 0.3 * rng.normal(size=value.shape)
    return X, (X if Y is None else Y)


def both_passes(est, X, Y, monkeypatch, dead_mask=None):
    kwargs = dict(centre=est._centre(), tied=not est.is_transcoder_, dead_mask=dead_mask)
    monkeypatch.setattr(est, "_rowwise_support", False, raising=False)  # the whole-batch reference
    whole = loss_and_grads(est, est._params(), X, Y, **kwargs)
    monkeypatch.setattr(_step, "_FORWARD_BLOCK", 4 * N_LATENTS)  # blocks of 4 rows, the last one short
    monkeypatch.setattr(est, "_rowwise_support", True, raising=False)
    blocked = loss_and_grads(est, est._params(), X, Y, **kwargs)
    return whole, blocked


def assert_same(whole, blocked):
    assert blocked.loss == pytest.approx(whole.loss, rel=1e-12)
    assert blocked.squared_error == pytest.approx(whole.squared_error, rel=1e-12)
    assert blocked.n_active == whole.n_active
    np.testing.assert_array_equal(np.sort(blocked.active_columns), np.sort(whole.active_columns))
    assert blocked.grads.keys() == whole.grads.keys()
    for name in whole.grads:
        np.testing.assert_allclose(blocked.grads[name], whole.grads[name], rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
@pytest.mark.parametrize("with_aux", [False, True], ids=["no-aux", "auxk"])
def test_topk_rowwise_forward_equals_whole_batch(monkeypatch, transcoder, with_aux):
    rng = np.random.default_rng(0)
    est = TopKSAE(n_components=N_LATENTS, k=5, k_aux=4, random_state=0)
    Y = rng.normal(size=(N_ROWS, 3)) if transcoder else None
    X, Y = initialised(est, rng, Y)
    dead_mask = None
    if with_aux:
        dead_mask = np.zeros(N_LATENTS, bool)
        dead_mask[::3] = True
    whole, blocked = both_passes(est, X, Y, monkeypatch, dead_mask)
    if with_aux:
        no_aux = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=not transcoder)
        assert whole.loss > no_aux.loss  # the auxiliary term is really exercised
    assert_same(whole, blocked)


def test_crosscoder_penalty_with_parameter_gradients_adds_up_over_blocks(monkeypatch):
    rng = np.random.default_rng(1)
    est = ReLUSAE(n_components=N_LATENTS, alpha=0.2, layer_sizes=[2, 4], random_state=0)
    X, Y = initialised(est, rng)
    whole, blocked = both_passes(est, X, Y, monkeypatch)
    assert whole.n_active > 0
    assert_same(whole, blocked)


def aux_mask(every):
    dead_mask = np.zeros(N_LATENTS, bool)
    dead_mask[::every] = True
    return dead_mask


@pytest.mark.parametrize("transcoder", [False, True], ids=["sae", "transcoder"])
def test_jumprelu_rowwise_forward_with_its_threshold_window_equals_whole_batch(monkeypatch, transcoder):
    rng = np.random.default_rng(2)
    est = JumpReLUSAE(n_components=N_LATENTS, alpha=0.05, bandwidth=0.5, random_state=0)
    X, Y = initialised(est, rng, rng.normal(size=(N_ROWS, 3)) if transcoder else None)
    est.threshold_[...] = np.abs(rng.normal(size=N_LATENTS))
    whole, blocked = both_passes(est, X, Y, monkeypatch)
    window = np.abs((X - est._centre()) @ est.encoder_.T + est.encoder_bias_ - est.threshold_) < 0.25
    assert 0 < whole.n_active < N_ROWS * N_LATENTS and window.sum() >= 10  # support and window both exercised
    assert np.count_nonzero(whole.grads["threshold_"]) >= 5
    assert_same(whole, blocked)


def row_scaled(est, rng, spread):
    """Rows of very different norms: some rows hold far more than k of the batch's budget."""
    X, Y = initialised(est, rng)
    X = X * np.exp(spread * rng.normal(size=(N_ROWS, 1)))
    return X, X


@pytest.mark.parametrize("k", [3, 0.7, 6], ids=["k3", "k0.7", "k6"])
@pytest.mark.parametrize("with_aux", [False, True], ids=["no-aux", "auxk"])
def test_batchtopk_rowwise_forward_selects_the_same_budget(monkeypatch, k, with_aux):
    rng = np.random.default_rng(4)
    est = BatchTopKSAE(n_components=N_LATENTS, k=k, k_aux=3, random_state=0)
    X, Y = row_scaled(est, rng, spread=1.0)
    calls = []
    select = est._select_candidates
    monkeypatch.setattr(est, "_select_candidates", lambda *a: calls.append(a) or select(*a))
    whole, blocked = both_passes(est, X, Y, monkeypatch, aux_mask(3) if with_aux else None)
    assert whole.n_active == min(round(k * N_ROWS), np.count_nonzero(
        (X - est._centre()) @ est.encoder_.T + est.encoder_bias_ > 0))
    assert len(calls) == 2  # some rows held more than their candidates: encoded again, selected again
    assert_same(whole, blocked)


def test_batchtopk_rowwise_forward_without_revisits_and_with_few_positive_entries(monkeypatch):
    rng = np.random.default_rng(5)
    est = BatchTopKSAE(n_components=N_LATENTS, k=2, random_state=0)
    X, Y = initialised(est, rng)
    monkeypatch.setattr(batchtopk, "CANDIDATES_PER_K", N_LATENTS)  # every entry a candidate: nothing to revisit
    assert_same(*both_passes(est, X, Y, monkeypatch))
    est.encoder_bias_ -= 4.0  # fewer positive entries than the budget: every one of them is kept
    monkeypatch.undo()
    whole, blocked = both_passes(est, X, Y, monkeypatch)
    assert 0 < whole.n_active < 2 * N_ROWS
    assert_same(whole, blocked)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.sampled_from([0.3, 1, 2.5, 7]),
    spread=st.floats(0.0, 2.0),
    rows_per_block=st.integers(1, N_ROWS),
    per_k=st.sampled_from([1, 2, 4]),
    guess=st.one_of(st.none(), st.floats(0.0, 3.0)),
)
def test_batchtopk_rowwise_support_is_the_whole_batch_selection(seed, k, spread, rows_per_block, per_k, guess):
    """For any rows, budget, block size, candidates per row and guessed level: the dense selection, in its order."""
    rng = np.random.default_rng(seed)
    est = BatchTopKSAE(n_components=N_LATENTS, k=k, random_state=0)
    X, _ = row_scaled(est, rng, spread)
    X_centred = X - est._centre()
    est._level_guess = guess  # a previous step's guess, anywhere from far too low to far too high
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_step, "_FORWARD_BLOCK", rows_per_block * N_LATENTS)
        patch.setattr(batchtopk, "CANDIDATES_PER_K", per_k)
        blocked = _step._forward_in_blocks(est, est._params(), X_centred, None)
    whole = _step._forward_whole(est, est._params(), X_centred, None)
    np.testing.assert_array_equal(blocked.rows, whole.rows)
    np.testing.assert_array_equal(blocked.cols, whole.cols)  # the same pairs in the same (row-major) order
    np.testing.assert_allclose(blocked.values, whole.values, rtol=1e-12)


def test_batchtopk_guessed_level_spares_the_second_pass(monkeypatch):
    """After one step the guess (a level a little below this batch's) collects every row's share in pass 1."""
    rng = np.random.default_rng(7)
    est = BatchTopKSAE(n_components=N_LATENTS, k=3, random_state=0)
    X, Y = row_scaled(est, rng, spread=1.0)
    encoded = []
    spy = _step.encode_in_row_blocks
    monkeypatch.setattr(_step, "encode_in_row_blocks", lambda p, Xc, r: encoded.append(Xc.shape[0]) or spy(p, Xc, r))
    first = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True)
    assert len(encoded) == 2 and est._level_guess is not None  # no guess yet: rows with many entries encoded again
    second = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True)
    assert encoded[2:] == [N_ROWS]  # one pass
    assert_same(first, second)  # to rounding: the rows encoded again went through another product
    est._level_guess = 1e-9  # far too low: a block with too many entries above it ignores it (memory bound)
    monkeypatch.setattr(batchtopk, "GUESS_CAP", 1)  # 6 x 23 candidates may be added, about 460 entries are above
    third = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True)
    assert len(encoded) == 5
    assert_same(first, third)


def test_batch_selection_with_a_penalty_is_refused(monkeypatch):
    class PenalisedBatchTopK(BatchTopKSAE):
        def _sparsity_penalty(self, A, rows, cols, n_rows, params):
            return 0.1 * rows.shape[0] / n_rows, 0.0, {}

    rng = np.random.default_rng(6)
    est = PenalisedBatchTopK(n_components=N_LATENTS, k=2, random_state=0)
    X, Y = initialised(est, rng)
    with pytest.raises(ValueError, match="_rowwise_support = False"):
        loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE, JumpReLUSAE])
def test_rowwise_forward_on_gpu_equals_numpy(monkeypatch, cls):
    import cupy

    rng = np.random.default_rng(3)
    est = cls(n_components=N_LATENTS, **({"bandwidth": 0.5} if cls is JumpReLUSAE else {"k": 5}), random_state=0)
    X, Y = initialised(est, rng) if cls is not BatchTopKSAE else row_scaled(est, rng, 1.0)  # BatchTopK: revisits
    if cls is JumpReLUSAE:
        est.threshold_[...] = np.abs(rng.normal(size=N_LATENTS))
    dead_mask = np.zeros(N_LATENTS, bool)
    dead_mask[::4] = True
    monkeypatch.setattr(_step, "_FORWARD_BLOCK", 4 * N_LATENTS)
    monkeypatch.setattr(est, "_rowwise_support", True, raising=False)
    cpu = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True, dead_mask=dead_mask)
    gpu_params = {name: cupy.asarray(value) for name, value in est._params().items()}
    if cls is JumpReLUSAE:  # the hooks read the model's thresholds: on the GPU, as a fit there would have them
        monkeypatch.setattr(est, "threshold_", gpu_params["threshold_"])
    Xg = cupy.asarray(X)
    gpu = loss_and_grads(
        est, gpu_params, Xg, Xg, centre=gpu_params["decoder_bias_"], tied=True, dead_mask=cupy.asarray(dead_mask)
    )
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-10)
    for name in cpu.grads:
        np.testing.assert_allclose(cupy.asnumpy(gpu.grads[name]), cpu.grads[name], rtol=1e-9, atol=1e-12)


def test_row_blocked_models_train_with_blas_pinned_and_restore_it(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from skdict.ops import _threads

    monkeypatch.setenv("SKDICT_NUM_THREADS", "2")

    def blas_counts():
        return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}

    seen = []

    def callback(model, record):
        seen.append((_threads.blas_pinned(), blas_counts()))

    X = np.random.default_rng(0).normal(size=(64, 6))
    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # observable even where the tests pin BLAS to 1
        before = blas_counts()
        for cls, pinned in ((TopKSAE, True), (BatchTopKSAE, True), (JumpReLUSAE, True), (MPSAE, False)):
            seen.clear()
            est = cls(n_components=16, max_iter=2, random_state=0, callback=callback)
            est.fit(X)
            assert [flag for flag, _ in seen] == [pinned, pinned]
            if before:
                assert all(counts == ({1} if pinned else before) for _, counts in seen)
            assert blas_counts() == before


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE, JumpReLUSAE])
def test_row_blocked_buffers_are_sized_by_the_blocks_handed_out(monkeypatch, cls):
    # under the pin a small batch is cut into one block per thread: each thread's buffer holds its block, not B rows
    import tracemalloc

    from skdict.ops import _threads

    monkeypatch.setenv("SKDICT_NUM_THREADS", "4")
    est = cls(n_components=2048, **({} if cls is JumpReLUSAE else {"k": 4}), random_state=0)
    rng = np.random.default_rng(0)
    X, _ = initialised(est, rng)
    X = rng.normal(size=(512, D_IN))
    if cls is JumpReLUSAE:  # about 4 latents per row fire, a few more in the window
        A = (X - est._centre()) @ est.encoder_.T + est.encoder_bias_
        est.threshold_[...] = np.quantile(A, 1 - 4 / 2048, axis=0)
    matrix_bytes = X.shape[0] * 2048 * 8  # the whole (B x m) float64 pre-activation matrix
    with _threads.single_threaded_blas():
        tracemalloc.start()
        loss_and_grads(est, est._params(), X, X, centre=est._centre(), tied=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 1.5 * matrix_bytes  # four full-size buffers would be 4x
