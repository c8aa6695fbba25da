"""resample_dead: dead latents restart along poorly reconstructed inputs (skdict.sae._resampling)."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import skdict.sae as sae
from skdict import MPSAE, TopKSAE
from skdict.ops.atoms import normalize_rows
from skdict.sae.anchored import AnchorPenalty
from skdict.sae._resampling import ENCODER_SCALE, derived_rng, is_due, resample_dead_latents, squared_errors
from skdict.sae._training import dead_fraction

#: Every SAE class skdict exports (AnchoredSAE wraps one of them).
CLASSES = [getattr(sae, name) for name in sae.__all__ if name != "AnchoredSAE"]
OWN = {"TopKSAE": {"k": 2}, "BatchTopKSAE": {"k": 2}, "MatryoshkaSAE": {"k": 2}, "MPSAE": {"k": 2},
       "ReLUSAE": {"alpha": 0.01}, "JumpReLUSAE": {"alpha": 0.01}, "GatedSAE": {"alpha": 0.01}}  # fmt: skip
DEAD_AFTER = 150


@pytest.fixture
def X():
    """600 non-negative combinations of 3 directions in 12 dims (rank 3: a 4th direction is orthogonal to all rows)."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(12, 4)))[0].T
    return (rng.exponential(size=(600, 3)) @ basis[:3]).astype(np.float64)


def _model(cls, **params):
    own = OWN.get(cls.__name__, {})
    return cls(n_components=16, batch_size=50, dead_after=DEAD_AFTER, learning_rate=3e-3, random_state=0,
               **own, **params)


def _kill_half(model, X):
    """Latents 8..15 can never fire: a very negative encoder bias, or (MPSAE, no encoder) atoms off the data's span."""
    if hasattr(model, "encoder_"):
        model.encoder_bias_[8:] = -1e6
    else:
        off_span = normalize_rows(np.linalg.svd(X - X.mean(0))[2][3:4])  # a direction orthogonal to every row
        model.components_[8:] = off_span


def _in_training(cls=TopKSAE, X=None, **params):
    """A model after one partial_fit epoch (Adam's moments set), its latents 8..15 dead on the clock."""
    model = _model(cls, **params).partial_fit(X)
    model._samples_since_fired[:] = 0
    model._samples_since_fired[8:] = DEAD_AFTER
    for name in model._adam.m:
        model._adam.m[name][...] = 1.0
        model._adam.v[name][...] = 2.0
    model.n_samples_seen_ = 2 * DEAD_AFTER  # the step that read the minibatch crossed a multiple of dead_after
    return model


def test_dead_latents_restart_along_high_error_inputs_and_alive_ones_are_untouched(X):
    model = _in_training(X=X, resample_dead=True)
    params = model._params()
    before = {name: value.copy() for name, value in params.items()}
    norms = np.linalg.norm(before["encoder_"], axis=1)
    batch = X[:50]
    errors = squared_errors(model, params, batch, batch)

    n = resample_dead_latents(model, params, batch, batch)

    assert n == 8
    dead, alive = slice(8, 16), slice(0, 8)
    directions = normalize_rows(batch - before["decoder_bias_"])
    # each new atom is the unit direction of a distinct minibatch row that was reconstructed with an error
    matches = np.abs(model.components_[dead] @ directions.T - 1) < 1e-12
    assert matches.sum(axis=1).tolist() == [1] * 8
    drawn = matches.argmax(axis=1)
    assert len(set(drawn.tolist())) == 8 and (errors[drawn] > 0).all()
    np.testing.assert_allclose(np.linalg.norm(model.components_[dead], axis=1), 1.0)
    # encoder rows along the same inputs, at ENCODER_SCALE x the mean alive norm; biases zero
    np.testing.assert_allclose(model.encoder_[dead], directions[drawn] * ENCODER_SCALE * norms[alive].mean())
    assert (model.encoder_bias_[dead] == 0).all()
    for name in ("encoder_", "encoder_bias_", "components_"):
        assert (model._adam.m[name][dead] == 0).all() and (model._adam.v[name][dead] == 0).all(), name
        np.testing.assert_array_equal(getattr(model, name)[alive], before[name][alive], err_msg=name)
        assert (model._adam.m[name][alive] == 1).all() and (model._adam.v[name][alive] == 2).all(), name
    np.testing.assert_array_equal(model.decoder_bias_, before["decoder_bias_"])
    assert (model._adam.m["decoder_bias_"] == 1).all()


def test_rows_are_drawn_in_proportion_to_their_squared_error(X):
    """One dead latent, one row 1000x off the data: the latent restarts along that row (and never a zero-error row)."""
    model = _in_training(X=X, resample_dead=True)
    model._samples_since_fired[9:] = 0  # only latent 8 is dead
    batch = X[:50].copy()
    batch[17] *= 1000.0
    errors = squared_errors(model, model._params(), batch, batch)
    assert errors[17] > 1e3 * np.delete(errors, 17).sum()  # drawn with probability > 0.999
    assert resample_dead_latents(model, model._params(), batch, batch) == 1
    np.testing.assert_allclose(model.components_[8], normalize_rows(batch[17:18] - model.decoder_bias_)[0])


def test_nothing_happens_between_two_multiples_of_dead_after(X):
    model = _in_training(X=X, resample_dead=True)
    model.n_samples_seen_ = 2 * DEAD_AFTER + 60  # this step read samples 2*dead_after+10 .. +60: no crossing
    assert not is_due(model, 50) and is_due(model, 61)
    before = model.components_.copy()
    assert resample_dead_latents(model, model._params(), X[:50], X[:50]) == 0
    np.testing.assert_array_equal(model.components_, before)
    model.set_params(resample_dead=False).n_samples_seen_ = 2 * DEAD_AFTER
    assert resample_dead_latents(model, model._params(), X[:50], X[:50]) == 0


def test_more_dead_latents_than_rows_resamples_as_many_as_rows_with_an_error(X):
    model = _in_training(X=X, resample_dead=True)
    model._samples_since_fired[:] = DEAD_AFTER  # all 16 dead, 5 rows
    assert resample_dead_latents(model, model._params(), X[:5], X[:5]) == 5
    assert int((model._adam.v["components_"] == 0).all(axis=1).sum()) == 5


def test_mpsae_resamples_its_atoms(X):
    model = _in_training(MPSAE, X=X, resample_dead=True)
    before = model.components_.copy()
    assert resample_dead_latents(model, model._params(), X[:50], X[:50]) == 8
    assert not np.allclose(model.components_[8:], before[8:])
    np.testing.assert_array_equal(model.components_[:8], before[:8])
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0)
    assert (model._adam.m["components_"][8:] == 0).all() and (model._adam.m["components_"][:8] == 1).all()


def test_a_transcoder_takes_the_encoder_row_from_x_and_the_atom_from_y(X):
    Y = X @ np.random.default_rng(1).normal(size=(12, 5))
    model = _model(TopKSAE, resample_dead=True).partial_fit(X, Y)
    model._samples_since_fired[:8] = 0
    model._samples_since_fired[8:] = DEAD_AFTER
    model.n_samples_seen_ = DEAD_AFTER
    assert resample_dead_latents(model, model._params(), X[:50], Y[:50]) == 8
    atoms = np.abs(model.components_[8:] @ normalize_rows(Y[:50] - model.decoder_bias_).T - 1) < 1e-12
    inputs = np.abs(normalize_rows(model.encoder_[8:]) @ normalize_rows(X[:50] - model.input_center_).T - 1) < 1e-12
    np.testing.assert_array_equal(atoms, inputs)  # the same drawn row for both
    assert atoms.sum() == 8


def test_anchored_latents_are_never_resampled(X):
    """AnchoredSAE's regulariser pins latents 0..2 to its anchors: they stay, dead or not."""
    model = _in_training(X=X, resample_dead=True)
    anchors = normalize_rows(X[:3])
    model._regularizer = AnchorPenalty(0.1, anchors, anchors)
    model._samples_since_fired[:] = DEAD_AFTER
    before = model.components_.copy()
    assert resample_dead_latents(model, model._params(), X[:50], X[:50]) == 13
    np.testing.assert_array_equal(model.components_[:3], before[:3])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_sae_resamples_and_ends_with_fewer_dead_latents(cls, X):
    """Half the latents killed after one epoch: with resample_dead the dead fraction falls, without it stays."""
    fits = {}
    for resample in (False, True):
        model = _model(cls, resample_dead=resample).partial_fit(X)
        _kill_half(model, X)
        for _ in range(4):
            model.partial_fit(X)
        fits[resample] = model
    assert "n_resampled" not in fits[False].history_
    resampled = fits[True].history_["n_resampled"]
    assert len(resampled) == 5 and sum(resampled[1:]) >= 8
    assert dead_fraction(fits[False]) >= 0.5
    assert dead_fraction(fits[True]) < dead_fraction(fits[False])
    assert np.isfinite(fits[True].score(X))


def test_the_same_seed_gives_the_same_model_and_history(X):
    def fit():
        model = _model(TopKSAE, resample_dead=True, aux_coef=0.0).partial_fit(X)
        _kill_half(model, X)
        return model.set_params(max_iter=3, warm_start=True, early_stopping=False).fit(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first, second = fit(), fit()
    assert sum(first.history_["n_resampled"]) > 0
    assert first.history_ == second.history_
    for name in first._params():
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_switched_on_in_a_warm_start_the_history_counts_zero_for_the_epochs_before(X):
    model = _model(TopKSAE, max_iter=2, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
        _kill_half(model, X)
        model.set_params(resample_dead=True, warm_start=True).fit(X)
    assert model.history_["n_resampled"][:2] == [0, 0] and sum(model.history_["n_resampled"][2:]) > 0
    assert len(model.history_["n_resampled"]) == len(model.history_["loss"]) == 4


def test_the_resampling_rng_leaves_the_training_rng_as_it_is():
    rng = np.random.RandomState(3)
    state = rng.get_state()
    first, second = derived_rng(rng), derived_rng(rng)
    np.testing.assert_equal(rng.get_state(), state)
    assert first.randint(1 << 30) == second.randint(1 << 30) != np.random.RandomState(3).randint(1 << 30)


def test_resample_dead_is_a_parameter_of_every_sae():
    for cls in CLASSES:
        model = cls()
        assert model.get_params()["resample_dead"] is False
        assert clone(model.set_params(resample_dead=True)).resample_dead is True
        assert "resample_dead : bool" in cls.__doc__


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [TopKSAE, MPSAE], ids=lambda cls: cls.__name__)
def test_a_model_on_the_gpu_resamples_the_latents_the_cpu_does(cls, X):
    import cupy

    from skdict._array import to_numpy

    models = [_in_training(cls, X=data, resample_dead=True) for data in (X, cupy.asarray(X))]
    for model, data in zip(models, (X, cupy.asarray(X))):
        assert resample_dead_latents(model, model._params(), data[:50], data[:50]) == 8
    cpu, gpu = models
    assert isinstance(gpu.components_, cupy.ndarray)
    np.testing.assert_allclose(to_numpy(gpu.components_), cpu.components_, atol=1e-8)
    assert (to_numpy(gpu._adam.m["components_"])[8:] == 0).all()
