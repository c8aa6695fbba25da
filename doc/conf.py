"""Sphinx configuration for skdict's documentation (extra: pip install skdict[docs]).

Build with ``python -m sphinx -b html -W --keep-going doc doc/_build/html`` from the
repository root (``-D plot_gallery=0`` skips running the examples).
"""

project = "skdict"
author = "skdict developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx_gallery.gen_gallery"]
napoleon_numpy_docstring = True
# Members skdict's own base classes define (fit, transform, ...) are documented on every
# estimator; those inherited from scikit-learn are left out by skip_scikit_learn_member.
autodoc_default_options = {"members": True, "inherited-members": True}
sphinx_gallery_conf = {"examples_dirs": "../examples", "gallery_dirs": "auto_examples"}
exclude_patterns = ["_build"]
html_theme = "alabaster"


def skip_scikit_learn_member(app, what, name, obj, skip, options):
    """Leave out methods a class inherits from scikit-learn (get_params, set_output, set_*_request, ...).

    They are scikit-learn's API, documented there; their docstrings also refer to labels
    of scikit-learn's own documentation that do not exist here.
    """
    if what != "class":
        return None
    function = getattr(obj, "__func__", obj)
    module = getattr(function, "__module__", None) or ""
    if module == "sklearn" or module.startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_scikit_learn_member)
