"""MatryoshkaSAE: nested prefixes, its equivalences with BatchTopK/TopK, absorption, and the ecosystem around it.

The gradients (every prefix's reconstruction, both activations, SAE and transcoder, with AuxK)
are checked against finite differences in tests/sae/test_gradients.py.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import AnchoredSAE, BatchTopKSAE, MatryoshkaSAE, TopKSAE
from skdict.datasets import make_hierarchical_features
from skdict.io import export_saelens, load_saelens
from skdict.metrics import absorption_score, explained_variance
from skdict.sae.matryoshka import resolve_widths

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(400, 12)) @ RNG.normal(size=(12, 12))).astype(np.float64)
Y = X @ RNG.normal(size=(12, 5))
SHORT = {"max_steps": 40, "batch_size": 64, "random_state": 0}


def quiet_fit(model, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args)


@pytest.mark.parametrize(
    ("m", "expected"), [(64, (4, 16, 64)), (16_000, (1000, 4000, 16_000)), (7, (1, 2, 7)), (4, (1, 4)), (1, (1,))]
)
def test_default_widths_are_m_16_m_4_m(m, expected):
    assert resolve_widths(None, m) == expected


@pytest.mark.parametrize("widths", [[8, 4, 32], [4, 16, 30], [0, 32], [4, 4, 32], [4.5, 32], [], [True, 32]])
def test_bad_widths_are_refused_by_name_with_the_fix(widths):
    with pytest.raises(ValueError, match=r"matryoshka_widths=.*ending at n_components=32.*or None"):
        MatryoshkaSAE(32, k=2, matryoshka_widths=widths, max_steps=1).fit(X)


def test_fractional_k_needs_batchtopk():
    with pytest.raises(ValueError, match="k=1.5 must be a whole number with activation='topk'"):
        MatryoshkaSAE(32, k=1.5, activation="topk", max_steps=1).fit(X)


@pytest.mark.parametrize(("activation", "plain"), [("batchtopk", BatchTopKSAE), ("topk", TopKSAE)])
def test_one_prefix_is_the_plain_sae(activation, plain):
    """With the whole dictionary as its only prefix the loss is BatchTopK's (TopK's): the same model, bit for bit."""
    nested = quiet_fit(MatryoshkaSAE(24, k=3, matryoshka_widths=[24], activation=activation, **SHORT), X)
    reference = quiet_fit(plain(24, k=3, **SHORT), X)
    np.testing.assert_array_equal(nested.components_, reference.components_)
    np.testing.assert_array_equal(nested.transform(X), reference.transform(X))
    assert nested.history_["loss"] == reference.history_["loss"]


@pytest.mark.parametrize("activation", ["batchtopk", "topk"])
def test_inner_prefixes_reconstruct_on_their_own(activation):
    """The first m/4 latents of a Matryoshka SAE are an SAE by themselves; BatchTopK's first m/4 are not trained to be."""
    fast = {**SHORT, "learning_rate": 1e-2}
    models = [MatryoshkaSAE(48, k=4, activation=activation, **fast), BatchTopKSAE(48, k=4, **fast)]

    def prefix_ev(model, width):
        codes = model.transform(X)
        return explained_variance(X, codes[:, :width] @ model.components_[:width] + model.decoder_bias_)

    nested, plain = (quiet_fit(model, X) for model in models)
    assert nested.matryoshka_widths_ == (3, 12, 48)
    assert prefix_ev(nested, 12) > prefix_ev(plain, 12) + 0.1
    l0 = (nested.transform(X) != 0).sum(axis=1)
    if activation == "topk":
        assert l0.max() <= 4 and nested.threshold_ is None
    else:
        assert l0.mean() == pytest.approx(4.0)  # BatchTopK's threshold_ keeps k per row on the training rows


def test_absorbs_less_than_topk_and_batchtopk_at_equal_l0():
    """Hierarchical features (Chanin et al.'s setting), equal width, k and steps: the parents' latents stay on.

    Matryoshka absorbed least at this tiny scale for each of seeds 0-9 (median 0.02 against BatchTopK's 0.28
    and TopK's 0.46); benchmarks/matryoshka_absorption.py has the larger comparison.
    """
    data = make_hierarchical_features(2000, 6, 3, 32, parent_rate=0.15, child_rate=0.8, random_state=1)
    common = {"n_components": 24, "k": 2, "max_steps": 300, "batch_size": 128, "learning_rate": 3e-3,
              "early_stopping": False, "random_state": 1}
    scores = {}
    for model in (TopKSAE(**common), BatchTopKSAE(**common), MatryoshkaSAE(matryoshka_widths=[6, 24], **common)):
        quiet_fit(model, data.X)
        codes = model.transform(data.X)
        scores[type(model).__name__] = absorption_score(data.codes, codes, data.features, model.components_, data.parent_of)
    assert scores["MatryoshkaSAE"] < 0.5 * min(scores["TopKSAE"], scores["BatchTopKSAE"]), scores


def test_transcoder_reconstructs_the_target():
    model = quiet_fit(MatryoshkaSAE(24, k=3, **SHORT), X, Y)
    assert model.is_transcoder_ and model.components_.shape == (24, 5)
    assert model.predict(X).shape == Y.shape and np.isfinite(model.score(X, Y))


def test_anchored_matryoshka_keeps_its_atoms_near_the_anchors():
    anchors = np.linalg.qr(RNG.normal(size=(12, 2)))[0].T  # two unit directions
    inner = MatryoshkaSAE(24, k=3, **SHORT)
    model = quiet_fit(AnchoredSAE(inner, anchors=anchors, anchor_weight=10.0), X)
    atoms = model.estimator_.components_
    cosines = np.abs(atoms @ anchors.T).max(axis=0)
    assert type(model.estimator_) is MatryoshkaSAE and np.all(cosines > 0.9)


@pytest.mark.parametrize(("activation", "loaded_as"), [("batchtopk", MatryoshkaSAE), ("topk", TopKSAE)])
def test_saelens_export_computes_the_same_codes(tmp_path, activation, loaded_as):
    """SAELens saves a Matryoshka BatchTopK SAE as jumprelu with a constant threshold and its widths in the
    metadata (so it loads back as itself); a TopK one is a topk SAE (SAELens has no Matryoshka TopK)."""
    model = quiet_fit(MatryoshkaSAE(24, k=3, activation=activation, **SHORT), X)
    back = load_saelens(export_saelens(model, tmp_path / "sae"))
    assert type(back) is loaded_as
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
