"""skdict._optional: one way to import an optional dependency and to name the extra that installs it."""

import builtins
import json.decoder

import pytest

from skdict._optional import import_optional, install_hint, optional_module


def test_optional_module_returns_the_submodule_or_none():
    assert optional_module("json.decoder") is json.decoder
    assert optional_module("skdict_no_such_package.sub") is None


def test_import_optional_names_what_needs_it_the_package_and_the_extra():
    with pytest.raises(ImportError) as info:
        import_optional("skdict_no_such_package.figure", extra="plot", needed_for="skdict.plotting")
    message = str(info.value)
    assert message.startswith("skdict.plotting needs skdict_no_such_package, which is not installed")
    assert install_hint("plot") in message
    assert 'pip install "skdict[plot]"' in message and 'pip install -e ".[plot]"' in message


def test_import_optional_raises_the_callers_error_with_the_alternative():
    class UsageError(ValueError):
        pass

    with pytest.raises(UsageError, match=r"; or use solver='lowrank'\.$"):
        import_optional("skdict_no_such_package", extra="exact", needed_for="solver='cvxpy'",
                        alternative="or use solver='lowrank'", error=UsageError)


def test_a_package_hidden_from_import_statements_is_hidden_here_too(monkeypatch):
    real_import = builtins.__import__

    def without_json(name, *args, **kwargs):
        if name.startswith("json"):
            raise ImportError(f"hidden: {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_json)
    assert optional_module("json.decoder") is None
    with pytest.raises(ImportError, match="needs json"):
        import_optional("json.decoder", extra="x", needed_for="this test")


def test_every_feature_names_its_extra_when_its_library_is_hidden(monkeypatch):
    """matplotlib (plot), cvxpy (exact), h5py/zarr (CLI data): each message names the extra."""
    from skdict.cli._data import DataError, _open_hdf5, _open_zarr
    from skdict.plotting._matplotlib import figure_class, matplotlib_installed
    from skdict.triplets._cvxpy_solver import cvxpy_available, import_cvxpy

    real_import = builtins.__import__
    hidden = ("matplotlib", "cvxpy", "h5py", "zarr")

    def without(name, *args, **kwargs):
        if name.split(".")[0] in hidden:
            raise ImportError(f"hidden: {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    assert not matplotlib_installed() and not cvxpy_available()
    with pytest.raises(ImportError, match=r"skdict\.plotting needs matplotlib.*skdict\[plot\]"):
        figure_class()
    with pytest.raises(ImportError, match=r"solver='cvxpy' needs cvxpy.*skdict\[exact\].*solver='lowrank'"):
        import_cvxpy()
    with pytest.raises(DataError, match=r"reading an HDF5 file needs h5py.*skdict\[hdf5\]"):
        _open_hdf5("x.h5", None, None)
    with pytest.raises(DataError, match=r"reading a Zarr store needs zarr.*skdict\[zarr\]"):
        _open_zarr("x.zarr", None)
