"""Every ``history_`` quantity equals the metric of the same name on the same parameters.

With a learning rate so small that the parameters do not move (1e-12) and one epoch
of one minibatch that is the whole data, the epoch's record describes the parameters
the fit returns, so each recorded value must equal what :mod:`skdict.metrics` (or the
objective written out) computes from ``transform``/``predict``:

- ``loss``: :math:`\\tfrac{1}{2n}\\sum\\|y - \\hat y\\|^2` plus the architecture's penalty
  (L1 for ReLU, :math:`\\alpha L_0` for JumpReLU; the AuxK term is 0, no latent is dead yet);
- ``explained_variance``: :func:`skdict.metrics.explained_variance` of the target;
- ``l0``: :func:`skdict.metrics.l0` of the codes (distinct active latents: an MPSAE
  atom chosen twice counts once);
- ``dead_fraction``: with ``dead_after = n_samples``, a latent is dead after the epoch iff
  it fired on no sample, which is :func:`skdict.metrics.dead_fraction` of the codes.

BatchTopK's history follows the training rule (the batch budget) and ``transform``
the inference threshold; the threshold is estimated on the same rows at the final
parameters, so on one batch that is the whole data both keep the same latents.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.metrics import dead_fraction, explained_variance, l0

N_SAMPLES, N_FEATURES = 512, 6

CASES = {
    "TopK": (TopKSAE, {"k": 3}, False),
    "BatchTopK": (BatchTopKSAE, {"k": 3}, False),
    "BatchTopK-fractional": (BatchTopKSAE, {"k": 1.5}, False),
    "ReLU": (ReLUSAE, {"alpha": 0.05}, False),
    "JumpReLU": (JumpReLUSAE, {"alpha": 0.05}, False),
    "MPSAE": (MPSAE, {"k": 8}, False),
    "MPSAE-absolute": (MPSAE, {"k": 8, "selection": "absolute"}, False),
    "MPSAE-positive": (MPSAE, {"k": 8, "positive": True}, False),
    "TopK-transcoder": (TopKSAE, {"k": 3}, True),
    "BatchTopK-transcoder": (BatchTopKSAE, {"k": 3}, True),
    "ReLU-transcoder": (ReLUSAE, {"alpha": 0.05}, True),
}


def penalty(est, codes):
    if isinstance(est, ReLUSAE):
        return est.alpha * codes.sum() / codes.shape[0]
    if isinstance(est, JumpReLUSAE):
        return est.alpha * np.count_nonzero(codes) / codes.shape[0]
    return 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_history_is_the_metric_of_the_same_name(case, dtype):
    cls, kwargs, transcoder = CASES[case]
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(N_SAMPLES, N_FEATURES)) + np.arange(N_FEATURES)).astype(dtype)
    Y = (X[:, :4] @ rng.normal(size=(4, 5)) + 0.1 * rng.normal(size=(N_SAMPLES, 5))).astype(dtype)
    est = cls(n_components=16, learning_rate=1e-12, max_iter=1, batch_size=N_SAMPLES, dead_after=N_SAMPLES,
              random_state=0, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch on purpose
        est.fit(X, Y) if transcoder else est.fit(X)
    target = Y if transcoder else X
    codes = est.transform(X).astype(np.float64)
    prediction = est.predict(X).astype(np.float64)
    residual = target.astype(np.float64) - prediction
    loss = 0.5 * np.sum(residual**2) / N_SAMPLES + penalty(est, codes)

    history = {key: values[-1] for key, values in est.history_.items()}
    rtol = 1e-9 if dtype == np.float64 else 2e-5
    assert history["loss"] == pytest.approx(loss, rel=rtol)
    assert history["explained_variance"] == pytest.approx(explained_variance(target, prediction), rel=rtol)
    assert history["l0"] == l0(codes)
    assert history["dead_fraction"] == dead_fraction(codes)
    assert 0 < history["l0"] < 16 and history["explained_variance"] != 0  # not a vacuous comparison


# ---------------------------------------------------------------- the other iterative families
# The same law for the dictionary learners (skdict._history): each record describes the parameters
# it was measured at. FISTA DL records its code step on the atoms before the update, so one
# alternation from unit atoms D0 is the lasso codes of X on D0 (sparse_encode, the same solver);
# LISTA and SoftplusAdam record at the weights before each step, which a learning rate of 1e-12
# leaves where they were.


def _dictionary_learner_cases(D0):
    from skdict import LISTA, FISTADictionaryLearning, SoftplusAdamDictionaryLearning

    return {
        "FISTA-DL": FISTADictionaryLearning(16, alpha=0.3, max_iter=1, dict_init=D0, random_state=0),
        "LISTA": LISTA(16, n_layers=3, dictionary=D0, alpha=0.3, learning_rate=1e-12, max_iter=1,
                       batch_size=N_SAMPLES, random_state=0),
        "SoftplusAdam": SoftplusAdamDictionaryLearning(16, alpha=0.3, learning_rate=1e-12, max_iter=1,
                                                       transform_max_iter=1, dict_init=D0, random_state=0),
    }


@pytest.mark.parametrize("case", ["FISTA-DL", "LISTA", "SoftplusAdam"])
def test_dictionary_learner_history_is_the_metric_of_the_same_name(case):
    from skdict import sparse_encode

    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) + np.arange(N_FEATURES)
    D0 = rng.normal(size=(16, N_FEATURES))
    D0 /= np.linalg.norm(D0, axis=1, keepdims=True)
    est = _dictionary_learner_cases(D0)[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one epoch on purpose
        est.fit(X)
        codes = sparse_encode(X, D0, alpha=0.3, tol=1e-4, max_iter=1000) if case == "FISTA-DL" else est.transform(X)
    atoms = D0 if case == "FISTA-DL" else est.components_
    history = {key: values[-1] for key, values in est.history_.items()}
    assert history["explained_variance"] == pytest.approx(explained_variance(X, codes @ atoms), rel=1e-6)
    assert history["l0"] == l0(codes)
    if case != "SoftplusAdam":  # softplus codes never die: no dead_fraction
        assert history["dead_fraction"] == dead_fraction(codes)
    if case == "FISTA-DL":
        objective = 0.5 * np.sum((X - codes @ D0) ** 2) / N_SAMPLES + 0.3 * np.abs(codes).sum() / N_SAMPLES
        assert history["loss"] == history["objective"] == pytest.approx(objective, rel=1e-6)
        assert 0 < history["dead_fraction"] < 1 or 0 < history["l0"] < 16  # not a vacuous comparison
