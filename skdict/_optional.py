"""Optional dependencies: imported on first use, and named with the extra that installs them.

skdict's extras (``pyproject.toml``) bring libraries only some features need: ``plot``
(matplotlib), ``exact`` (cvxpy), ``progress`` (tqdm), ``hdf5`` (h5py), ``zarr``, ``dask``,
``gpu`` (cupy). A feature imports its library when it runs, through :func:`import_optional`
(which raises, naming the extra and the install command) or :func:`optional_module` (which returns
``None``, for features that fall back to something plainer, as progress lines without tqdm).
"""

from __future__ import annotations


def install_hint(extra):
    """The install command of ``extra``, for a released skdict and for a checkout."""
    return f'pip install "skdict[{extra}]", or from a checkout: pip install -e ".[{extra}]"'


def optional_module(name):
    """The module ``name`` (dotted names give the submodule), or ``None`` when it cannot be imported.

    Imported through the builtin ``__import__`` (what an ``import`` statement calls), so a test that
    hides a package by patching it sees the same answer as an ``import`` statement would.
    """
    try:
        return __import__(name, fromlist=["__name__"])
    except ImportError:
        return None


def import_optional(name, *, extra, needed_for, alternative=None, error=ImportError):
    """The module ``name``, or ``error`` saying what needs it and how to install it.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"matplotlib.figure"``; its top-level package is named in the message.
    extra : str
        The skdict extra that installs it (``"plot"``, ``"exact"``, ...).
    needed_for : str
        What needs it, as the message's subject: ``"skdict.plotting"``, ``"solver='cvxpy'"``.
    alternative : str, optional
        A way to go on without it, appended to the message (``"or use solver='lowrank'"``).
    error : type of Exception, default=ImportError
        The exception raised (the CLI's data reader raises its own usage error).

    Raises
    ------
    error
        The module cannot be imported.
    """
    module = optional_module(name)
    if module is None:
        package = name.split(".")[0]
        message = f"{needed_for} needs {package}, which is not installed: {install_hint(extra)}"
        raise error(message + (f"; {alternative}." if alternative else "."))
    return module
