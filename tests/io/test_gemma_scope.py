"""Gemma Scope params.npz as a JumpReLUSAE: the Gemma Scope formula in NumPy is the oracle."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdict import JumpReLUSAE
from skdict.io import load_gemma_scope

D_IN, D_SAE = 10, 40


def gemma_scope_forward(params, X):
    """Gemma Scope's JumpReLU SAE: a = x W_enc + b_enc, z = ReLU(a) 1[a > threshold], x_hat = z W_dec + b_dec."""
    a = X @ params["W_enc"] + params["b_enc"]
    z = np.maximum(a, 0.0) * (a > params["threshold"])
    return z, z @ params["W_dec"] + params["b_dec"]


def _params(rng, *, decoder_norms=None, dtype=np.float32):
    atoms = rng.normal(size=(D_SAE, D_IN))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    if decoder_norms is not None:
        atoms *= decoder_norms[:, None]
    threshold = rng.uniform(0.0, 0.8, size=D_SAE)
    threshold[:5] = -0.3  # below 0: ReLU first, so they act as 0
    params = {
        "W_enc": rng.normal(size=(D_IN, D_SAE)) / np.sqrt(D_IN),
        "W_dec": atoms,
        "b_enc": 0.3 * rng.normal(size=D_SAE),
        "b_dec": rng.normal(size=D_IN),
        "threshold": threshold,
    }
    return {name: value.astype(dtype) for name, value in params.items()}


def _write(tmp_path, params):
    path = tmp_path / "params.npz"
    np.savez(path, **params)
    return path


def test_codes_and_reconstructions_are_gemma_scopes(tmp_path):
    rng = np.random.default_rng(0)
    params = _params(rng)
    X = rng.normal(size=(200, D_IN)).astype(np.float32)
    model = load_gemma_scope(_write(tmp_path, params))
    assert isinstance(model, JumpReLUSAE) and model.components_.dtype == np.float32
    codes, recon = gemma_scope_forward({k: v.astype(np.float64) for k, v in params.items()}, X.astype(np.float64))
    ours = model.transform(X)
    np.testing.assert_allclose(ours, codes, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours > 0, codes > 0)
    np.testing.assert_allclose(model.inverse_transform(ours), recon, rtol=1e-5, atol=1e-5)
    # b_dec is not subtracted from the input by Gemma Scope: skdict's b_enc carries b_dec W_enc
    np.testing.assert_allclose(model.encoder_bias_, params["b_enc"] + params["b_dec"] @ params["W_enc"], rtol=1e-5, atol=1e-6)
    assert model.threshold_.min() == 0.0


@given(seed=st.integers(0, 2**16))
@settings(max_examples=25, deadline=None)
def test_any_decoder_norms_keep_the_reconstruction(seed, tmp_path_factory):
    """Non-unit decoder rows are folded into the encoder: reconstructions unchanged, codes times the norms."""
    rng = np.random.default_rng(seed)
    norms = rng.uniform(0.2, 5.0, size=D_SAE)
    params = _params(rng, decoder_norms=norms, dtype=np.float64)
    X = rng.normal(size=(60, D_IN))
    model = load_gemma_scope(_write(tmp_path_factory.mktemp("gs"), params))
    codes, recon = gemma_scope_forward(params, X)
    np.testing.assert_allclose(model.transform(X), codes * norms, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.predict(X), recon, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.pop("threshold"), r"Gemma Scope params.npz tensor threshold is missing"),
        (lambda p: p.pop("W_enc"), r"W_enc is missing, expected a 2-D array"),
        (lambda p: p.update(b_dec=np.zeros(D_IN + 1, np.float32)), r"b_dec has shape \(11,\), expected \(10,\)"),
        (lambda p: p.update(W_dec=np.zeros((D_SAE, D_IN + 2), np.float32)), r"W_dec has shape \(40, 12\), expected \(40, 10\)"),
        (lambda p: p.update(extra=np.zeros(3, np.float32)), r"tensor\(s\) \['extra'\]"),
    ],
)
def test_bad_files_name_the_array_and_both_shapes(tmp_path, change, message):
    params = _params(np.random.default_rng(1))
    change(params)
    with pytest.raises(ValueError, match=message):
        load_gemma_scope(_write(tmp_path, params))


def test_pickled_arrays_are_not_loaded(tmp_path):
    """An object array would need pickle, which could run code: np.load refuses it."""
    params = _params(np.random.default_rng(2))
    params["threshold"] = np.array([object()] * D_SAE, dtype=object)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_gemma_scope(_write(tmp_path, params))
