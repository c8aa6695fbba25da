"""The row-blocked forward pass of the training step against the whole-batch one.

A model that sets ``_rowwise_support = True`` has its (B x m) pre-activations
formed block by block; loss and every gradient must be those of the whole-batch
pass (itself checked against finite differences in test_gradients.py), with and
without the AuxK term, for a TopK SAE, a transcoder and an L1 crosscoder whose
penalty has parameter gradients. A model that probes extra pairs is refused.
"""

import numpy as np
import pytest

from skdict import JumpReLUSAE, ReLUSAE, TopKSAE
from skdict.sae import _step
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


def test_rowwise_forward_refuses_probe_pairs(monkeypatch):
    rng = np.random.default_rng(2)
    est = JumpReLUSAE(n_components=N_LATENTS, bandwidth=10.0, random_state=0)  # a wide window: pairs to probe
    X, Y = initialised(est, rng)
    monkeypatch.setattr(est, "_rowwise_support", True, raising=False)
    with pytest.raises(ValueError, match="_rowwise_support"):
        loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True)


@pytest.mark.gpu
def test_rowwise_forward_on_gpu_equals_numpy(monkeypatch):
    import cupy

    rng = np.random.default_rng(3)
    est = TopKSAE(n_components=N_LATENTS, k=5, random_state=0)
    X, Y = initialised(est, rng)
    dead_mask = np.zeros(N_LATENTS, bool)
    dead_mask[::4] = True
    monkeypatch.setattr(_step, "_FORWARD_BLOCK", 4 * N_LATENTS)
    monkeypatch.setattr(est, "_rowwise_support", True, raising=False)
    cpu = loss_and_grads(est, est._params(), X, Y, centre=est._centre(), tied=True, dead_mask=dead_mask)
    gpu_params = {name: cupy.asarray(value) for name, value in est._params().items()}
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
        for cls, pinned in ((TopKSAE, True), (JumpReLUSAE, False)):
            seen.clear()
            est = cls(n_components=16, max_iter=2, random_state=0, callback=callback)
            est.fit(X)
            assert [flag for flag, _ in seen] == [pinned, pinned]
            if before:
                assert all(counts == ({1} if pinned else before) for _, counts in seen)
            assert blas_counts() == before


def test_row_blocked_buffers_are_sized_by_the_blocks_handed_out(monkeypatch):
    # under the pin a small batch is cut into one block per thread: each thread's buffer holds its block, not B rows
    import tracemalloc

    from skdict.ops import _threads

    monkeypatch.setenv("SKDICT_NUM_THREADS", "4")
    est = TopKSAE(n_components=2048, k=4, random_state=0)
    rng = np.random.default_rng(0)
    X, _ = initialised(est, rng)
    X = rng.normal(size=(512, D_IN))
    matrix_bytes = X.shape[0] * 2048 * 8  # the whole (B x m) float64 pre-activation matrix
    with _threads.single_threaded_blas():
        tracemalloc.start()
        loss_and_grads(est, est._params(), X, X, centre=est._centre(), tied=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 1.5 * matrix_bytes  # four full-size buffers would be 4x
