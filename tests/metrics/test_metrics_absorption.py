import numpy as np
import pytest

from skdict.datasets import make_hierarchical_features
from skdict.metrics import absorption_score


@pytest.fixture(scope="module")
def data():
    # Orthonormal features, unit magnitudes: 2 parents with 2 children each.
    return make_hierarchical_features(400, 2, 2, 8, parent_rate=0.5, child_rate=0.6, random_state=0)


def _absorbing_model(data, parents=(0, 1), child_share=1.0):
    """The SAE that absorption produces: child atoms f_c + s f_p, parent silent whenever a child fires."""
    atoms = data.features.copy()
    codes = data.codes.copy()
    for p in parents:
        for c in data.children[p]:
            atoms[c] = data.features[c] + child_share * data.features[p]
            codes[codes[:, c] > 0, p] = 0.0
    return codes, atoms


def _score(data, codes, atoms, **kwargs):
    return absorption_score(data.codes, codes, data.features, atoms, data.parent_of, **kwargs)


def test_true_model_absorbs_nothing(data):
    assert _score(data, data.codes, data.features) == 0.0


def test_fully_absorbed_parents(data):
    codes, atoms = _absorbing_model(data)
    # The absorbing model still reconstructs the data exactly.
    np.testing.assert_allclose(codes @ atoms, data.X, atol=1e-12)
    assert _score(data, codes, atoms) == 1.0


def test_rate_is_averaged_over_parents(data):
    codes, atoms = _absorbing_model(data, parents=(0,))
    assert _score(data, codes, atoms) == pytest.approx(0.5)


def test_per_sample_fraction(data):
    codes, atoms = _absorbing_model(data)
    tested = [(data.codes[:, p] > 0) & (data.codes[:, data.children[p]] > 0).any(axis=1) for p in (0, 1)]
    # Restore the parent latent on the first 5 tested samples of parent 0: those are not absorbed.
    restored = np.flatnonzero(tested[0])[:5]
    codes[restored, 0] = 1.0
    expected = ((tested[0].sum() - 5) / tested[0].sum() + 1.0) / 2
    assert _score(data, codes, atoms) == pytest.approx(expected, rel=1e-12)


def test_silent_parent_without_a_carrier_is_a_miss_not_absorption(data):
    codes = data.codes.copy()
    for p in (0, 1):
        codes[(data.codes[:, data.children[p]] > 0).any(axis=1), p] = 0.0
    assert _score(data, codes, data.features) == 0.0


def test_projection_threshold(data):
    codes, atoms = _absorbing_model(data, child_share=0.3)
    assert _score(data, codes, atoms) == 0.0  # children carry 0.3 < 0.5 of the parent
    assert _score(data, codes, atoms, projection_threshold=0.25) == 1.0


def test_tol_makes_a_weak_parent_latent_silent(data):
    codes, atoms = _absorbing_model(data)
    weak = (codes[:, :2] == 0) & (data.codes[:, :2] > 0)
    codes[:, :2][weak] = 0.01
    assert _score(data, codes, atoms) == 0.0
    assert _score(data, codes, atoms, tol=0.05) == 1.0


def test_parent_latent_is_found_by_signed_cosine(data):
    # Never-active antipodal copies -f_p listed first: with |cos| they would tie with f_p, be taken
    # as the parent latents and (silent, while f_p carries the parent) make every sample "absorbed".
    atoms = np.vstack([-data.features[:2], data.features])
    codes = np.hstack([np.zeros((data.codes.shape[0], 2)), data.codes])
    assert _score(data, codes, atoms) == 0.0


def test_scaled_parent_latent_among_extra_latents(data):
    codes, atoms = _absorbing_model(data)
    # A scaled copy of parent 1 stands in for latent 1, which is now dead.
    atoms = np.vstack([3.0 * data.features[1], atoms])
    codes = np.hstack([codes[:, [1]] / 3.0, codes])
    codes[:, 2] = 0.0
    assert _score(data, codes, atoms) == 1.0


def test_errors(data):
    with pytest.raises(ValueError, match="parent_of must be a 1-D integer array"):
        absorption_score(data.codes, data.codes, data.features, data.features, data.parent_of[:-1])
    bad = data.parent_of.copy()
    bad[0] = 0
    with pytest.raises(ValueError, match="parent_of entries must be -1 or the index of another"):
        absorption_score(data.codes, data.codes, data.features, data.features, bad)
    with pytest.raises(ValueError, match="one column per atom"):
        absorption_score(data.codes, data.codes[:, :-1], data.features, data.features, data.parent_of)
    with pytest.raises(ValueError, match="projection_threshold"):
        absorption_score(data.codes, data.codes, data.features, data.features, data.parent_of, projection_threshold=0)
    with pytest.raises(ValueError, match="No sample has a parent feature active together"):
        absorption_score(data.codes[:1] * 0, data.codes[:1], data.features, data.features, data.parent_of)


@pytest.mark.gpu
def test_cupy_matches_numpy(data):
    import cupy

    codes, atoms = _absorbing_model(data, parents=(0,))
    codes[:7] = 0.0
    gpu = absorption_score(*(cupy.asarray(a) for a in (data.codes, codes, data.features, atoms)), data.parent_of)
    assert gpu == pytest.approx(_score(data, codes, atoms), rel=1e-12)
