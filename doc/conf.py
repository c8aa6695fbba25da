"""Sphinx configuration for skdict's documentation (extra: pip install skdict[docs])."""

project = "skdict"
author = "skdict developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx_gallery.gen_gallery"]
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "inherited-members": True}
sphinx_gallery_conf = {"examples_dirs": "../examples", "gallery_dirs": "auto_examples"}
html_theme = "alabaster"
