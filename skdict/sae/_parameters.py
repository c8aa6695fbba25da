"""Hyper-parameters declared once: each :class:`Parameter` gives a name, default, constraint and doc line.

A class that inherits :class:`DeclaredParameters` lists its own parameters in ``_parameters``
(a tuple of :class:`Parameter`, in the class body; a mixin may list some too). When the class
is created, :meth:`DeclaredParameters.__init_subclass__` collects the declarations along the
MRO and builds from them what scikit-learn reads:

- ``__init__``: a real function with an explicit signature (the positional parameters first,
  then the rest keyword-only: the class's own, its mixins', its bases', in MRO order), whose
  body only stores each argument unchanged, generated as :mod:`dataclasses` generates one, so
  ``inspect.signature``, ``get_params``, ``clone``, ``set_params`` and ``help`` see it as written
  by hand;
- ``_parameter_constraints``: ``{name: constraints}`` of every declared parameter;
- the docstring: the line ``    {parameters}`` becomes the numpydoc Parameters section (heading and
  the entries of all parameters in signature order), and each line named by ``_docstring_blocks()``
  becomes its shared text.

A subclass that declares a name again replaces the inherited declaration (in its own position).
"""

from __future__ import annotations

import keyword
import textwrap
from dataclasses import dataclass

#: Width of the generated docstring lines (the project's line length).
_DOC_WIDTH = 110


@dataclass(frozen=True)
class Parameter:
    """One hyper-parameter of an estimator: its default, constraint and documentation.

    Parameters
    ----------
    name : str
        The keyword of ``__init__`` and the attribute it is stored in.
    default : object
        The default value (immutable: it is shared by every instance).
    constraints : list
        scikit-learn's constraint list (``Interval``, ``StrOptions``, ``"boolean"``, ``None``, ...).
    type : str
        The numpydoc type, e.g. ``"int or None"``.
    doc : str, default=""
        What the parameter means (wrapped into the docstring); empty: the header line only.
    shown_default : str or None, default=None
        How the docstring writes the default (e.g. ``"1/32"``); ``None``: the value's repr.
    positional : bool, default=False
        Positional-or-keyword (before the ``*``); the others are keyword-only.
    """

    name: str
    default: object
    constraints: list
    type: str
    doc: str = ""
    shown_default: str | None = None
    positional: bool = False

    def __post_init__(self):
        if not self.name.isidentifier() or keyword.iskeyword(self.name) or self.name.startswith("_"):
            raise ValueError(f"Parameter name {self.name!r} must be a public Python identifier.")

    def doc_entry(self):
        """The numpydoc entry: ``name : type, default=...`` and the wrapped description, indented as in a class docstring."""
        shown = self.shown_default
        if shown is None:
            shown = f'"{self.default}"' if isinstance(self.default, str) else repr(self.default)
        header = f"    {self.name} : {self.type}, default={shown}\n"
        if not self.doc:
            return header
        body = textwrap.fill(
            self.doc,
            width=_DOC_WIDTH,
            initial_indent=" " * 8,
            subsequent_indent=" " * 8,
            break_long_words=False,
            break_on_hyphens=False,
        )
        return header + body + "\n"


def collect_parameters(cls):
    """The parameters of ``cls`` in signature order: positional ones first, then keyword-only, along the MRO.

    Returns
    -------
    parameters : tuple of Parameter
    """
    found = {}
    for klass in cls.__mro__:  # most derived first: its declaration of a name wins
        for parameter in klass.__dict__.get("_parameters", ()):
            found.setdefault(parameter.name, parameter)
    ordered = list(found.values())
    return tuple([p for p in ordered if p.positional] + [p for p in ordered if not p.positional])


def make_init(cls, parameters):
    """An ``__init__`` for ``cls`` with the explicit signature of ``parameters`` that only stores them.

    Built from source text, as :mod:`dataclasses` builds its ``__init__``: the defaults are bound
    by name, so any value (not only literals) can be a default.
    """
    arguments = [f"{p.name}=_default_{p.name}" for p in parameters if p.positional]
    keyword_only = [f"{p.name}=_default_{p.name}" for p in parameters if not p.positional]
    if keyword_only:
        arguments += ["*"] + keyword_only
    body = "".join(f"    self.{p.name} = {p.name}\n" for p in parameters) or "    pass\n"
    source = f"def __init__(self, {', '.join(arguments)}):\n{body}"
    namespace = {}
    exec(source, {f"_default_{p.name}": p.default for p in parameters}, namespace)  # noqa: S102 (no user text)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def fill_docstring(cls, parameters, blocks):
    """Put the Parameters section where ``cls``'s docstring says ``{parameters}``, and each of ``blocks`` at its marker.

    ``blocks`` (``{name: text}``) are replaced where their line ``    {name}`` stands.

    Raises
    ------
    ValueError
        ``cls`` declares parameters of its own but its docstring has no ``    {parameters}``
        line (they would go undocumented).
    """
    doc = cls.__dict__.get("__doc__") or ""
    if "    {parameters}\n" not in doc:
        if "_parameters" in cls.__dict__:
            raise ValueError(
                f"{cls.__name__} declares parameters but its docstring has no '    {{parameters}}' line: "
                "add it to the Parameters section."
            )
        return
    section = "    Parameters\n    ----------\n" + "".join(p.doc_entry() for p in parameters)
    for name, text in {"parameters": section, **blocks}.items():
        doc = doc.replace("    {" + name + "}\n", text)
    cls.__doc__ = doc


class DeclaredParameters:
    """Base of classes whose hyper-parameters are :class:`Parameter` declarations (see the module docstring).

    Class attributes a subclass sets: ``_parameters`` (its own declarations) and, on the
    family's base, the classmethod ``_docstring_blocks()`` (``{marker: text}`` of shared docstring text).
    A class that writes its own ``__init__`` is left as written.
    """

    _parameters: tuple = ()
    @classmethod
    def _docstring_blocks(cls):
        """Shared docstring text of ``cls``: each ``"    {name}\\n"`` line of its docstring becomes ``text``."""
        return {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            return
        parameters = collect_parameters(cls)
        cls.__init__ = make_init(cls, parameters)
        cls._parameter_constraints = {p.name: list(p.constraints) for p in parameters}
        fill_docstring(cls, parameters, cls._docstring_blocks())
