"""Crosscoders: stacking layers, per-layer decoder blocks and the layer-norm-weighted L1 penalty."""

import numpy as np
import pytest

from skdict import ReLUSAE, TopKSAE
from skdict.datasets import make_linear_representation_bench
from skdict.sae.crosscoder import decoder_layer_norms, split_layers, stack_layers

#: These fits are deliberately short (a few epochs, tiny data): running out of max_iter, or ending
#: below the mean's score, is expected here, not a finding (tests/sae/test_convergence_warning.py
#: checks the warnings themselves).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def two_layers():
    # the bench's target mode: one sparse code written into two "layers" of different widths
    X, Y, features, target_features, codes = make_linear_representation_bench(
        3000, n_features=24, n_dims=20, target_dims=12, max_coherence=0.3, random_state=0
    )
    return X, Y


def test_stack_and_split_are_inverse(two_layers):
    X, Y = two_layers
    stacked, sizes = stack_layers([X, Y])
    assert sizes == (20, 12) and stacked.shape == (3000, 32)
    first, second = split_layers(stacked, sizes)
    np.testing.assert_array_equal(first, X)
    np.testing.assert_array_equal(second, Y)


def test_crosscoder_reconstructs_every_layer(two_layers):
    X, Y = two_layers
    stacked, sizes = stack_layers([X, Y])
    model = ReLUSAE(n_components=96, alpha=0.05, layer_sizes=sizes, max_iter=8, learning_rate=4e-3,
                    batch_size=128, random_state=0).fit(stacked)
    assert model.layer_sizes_ == sizes
    for block, layer in zip(split_layers(model.predict(stacked), sizes), (X, Y)):
        ev = 1 - np.sum((layer - block) ** 2) / np.sum((layer - layer.mean(axis=0)) ** 2)
        assert ev > 0.8
    norms = decoder_layer_norms(model.components_, sizes)
    assert norms.shape == (96, 2)
    np.testing.assert_allclose(np.sum(norms**2, axis=1), 1.0, rtol=1e-6)  # unit atoms overall


def test_layer_weighting_penalises_more_than_plain_l1(two_layers):
    # with unit atoms split over two layers, sum_l ||d^(l)|| >= 1: at equal alpha the
    # crosscoder's penalty is the larger one, so its codes are sparser
    X, Y = two_layers
    stacked, sizes = stack_layers([X, Y])
    common = dict(n_components=96, alpha=0.1, max_iter=5, learning_rate=4e-3, batch_size=128, random_state=0)
    plain = ReLUSAE(**common).fit(stacked)
    cross = ReLUSAE(layer_sizes=sizes, **common).fit(stacked)
    assert np.count_nonzero(cross.transform(stacked)) < np.count_nonzero(plain.transform(stacked))


def test_transcoder_crosscoder_weights_the_target_layers(two_layers):
    X, Y = two_layers
    target, sizes = stack_layers([Y[:, :5], Y[:, 5:]])
    model = ReLUSAE(n_components=48, alpha=0.05, layer_sizes=sizes, max_iter=3, random_state=0).fit(X, target)
    assert decoder_layer_norms(model.components_, sizes).shape == (48, 2)
    with pytest.raises(ValueError, match=r"adds up to 20, but the stacked layers have 12 columns"):
        ReLUSAE(layer_sizes=(10, 10), max_iter=1).fit(X, target)


def test_bad_layers_are_rejected(two_layers):
    X, Y = two_layers
    with pytest.raises(ValueError, match="every layer needs the activations of the same samples"):
        stack_layers([X, Y[:10]])
    with pytest.raises(ValueError, match="must be 2-D"):
        stack_layers([X, Y[:, 0]])
    with pytest.raises(ValueError, match="layers is empty"):
        stack_layers([])
    with pytest.raises(ValueError, match="positive integers"):
        ReLUSAE(layer_sizes=(20, 0, 12), max_iter=1).fit(np.hstack([X, Y]))
    with pytest.raises(ValueError, match="adds up to 30"):
        ReLUSAE(layer_sizes=(20, 10), max_iter=1).fit(np.hstack([X, Y]))
    with pytest.raises(ValueError, match="adds up to"):
        split_layers(np.hstack([X, Y]), (20, 20))


def test_topk_crosscoder_is_a_topk_sae_on_stacked_layers(two_layers):
    X, Y = two_layers
    stacked, sizes = stack_layers([X, Y])
    model = TopKSAE(n_components=64, k=3, max_iter=5, learning_rate=4e-3, random_state=0).fit(stacked)
    assert [block.shape for block in split_layers(model.components_, sizes)] == [(64, 20), (64, 12)]
    assert model.score(stacked) > 0.7
