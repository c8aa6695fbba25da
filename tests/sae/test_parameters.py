"""The SAE parameters declared once (skdict.sae._parameters): what scikit-learn sees is what was written by hand.

The pinned tables below were captured from the hand-written ``__init__`` signatures and
``_parameter_constraints`` of every SAE before they were generated from declarations.
"""

import inspect
import pickle
from numbers import Integral

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import Interval, StrOptions, make_constraint

from skdict import BatchTopKSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.sae._base import BaseSparseAutoencoder
from skdict.sae._parameters import DeclaredParameters, Parameter

CLASSES = (TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MPSAE)

#: (name, default) of the parameters every SAE shares, in signature order (n_components positional).
SHARED = [
    ("n_components", None), ("learning_rate", 1e-3), ("batch_size", 256), ("max_iter", None), ("max_steps", None),
    ("max_samples", None), ("early_stopping", True), ("tol", 1e-4), ("n_iter_no_change", 5), ("log_every", None),
    ("warmup_fraction", 0.05), ("decay_fraction", 0.2), ("max_grad_norm", 1.0), ("dead_after", 10_000),
    ("resample_dead", False), ("device", "auto"), ("warm_start", False), ("checkpoint_dir", None),
    ("checkpoint_every", 1000), ("verbose", 0), ("random_state", None), ("callback", None),
]  # fmt: skip

#: Each class's own parameters, in signature order (right after n_components).
OWN = {
    TopKSAE: [("k", None), ("k_aux", None), ("aux_coef", 1 / 32)],
    BatchTopKSAE: [("k", None), ("k_aux", None), ("aux_coef", 1 / 32)],
    ReLUSAE: [("alpha", 0.1), ("layer_sizes", None), ("target_l0", None)],
    JumpReLUSAE: [("alpha", 0.1), ("bandwidth", "auto"), ("threshold_init", "auto"), ("target_l0", None)],
    MPSAE: [("k", None), ("selection", "signed"), ("positive", False)],
}

_INT_1 = "an int in the range [1, inf)"
_FLOAT_0 = "a float in the range [0.0, inf)"
_FLOAT_POSITIVE = "a float in the range (0.0, inf)"
_BOOL = "an instance of 'bool' or an instance of 'numpy.bool'"
SHARED_CONSTRAINTS = {
    "n_components": [_INT_1, "None"], "learning_rate": ["a float in the range (0.0, inf)"], "batch_size": [_INT_1],
    "max_iter": [_INT_1, "None"], "max_steps": [_INT_1, "None"], "max_samples": [_INT_1, "None"],
    "early_stopping": [_BOOL], "tol": [_FLOAT_0], "n_iter_no_change": [_INT_1], "log_every": [_INT_1, "None"],
    "warmup_fraction": ["a float in the range [0.0, 1.0]"], "decay_fraction": ["a float in the range [0.0, 1.0]"],
    "max_grad_norm": ["a float in the range (0.0, inf)", "None"], "dead_after": [_INT_1], "resample_dead": [_BOOL],
    "device": [["auto", "cpu", "cuda"]], "warm_start": [_BOOL],
    "checkpoint_dir": ["an instance of 'str'", "an instance of 'os.PathLike'", "None"], "checkpoint_every": [_INT_1],
    "verbose": ["an int in the range [0, inf), an instance of 'bool' or an instance of 'numpy.bool'"],
    "random_state": ["an int in the range [0, 4294967295], an instance of 'numpy.random.mtrand.RandomState' or None"],
    "callback": ["a callable", "None"],
}  # fmt: skip
AUXK_CONSTRAINTS = {"k_aux": [_INT_1, "None"], "aux_coef": [_FLOAT_0]}
OWN_CONSTRAINTS = {
    TopKSAE: {"k": [_INT_1, "None"], **AUXK_CONSTRAINTS},
    BatchTopKSAE: {"k": ["a float in the range (0.0, inf)", "None"], **AUXK_CONSTRAINTS},
    ReLUSAE: {"alpha": [_FLOAT_0], "layer_sizes": ["an array-like", "None"], "target_l0": [_FLOAT_POSITIVE, "None"]},
    JumpReLUSAE: {
        "alpha": [_FLOAT_0],
        "bandwidth": ["a float in the range (0.0, inf)", ["auto"]],
        "threshold_init": [_FLOAT_0, ["auto"]],
        "target_l0": [_FLOAT_POSITIVE, "None"],
    },
    MPSAE: {"k": [_INT_1, "None"], "selection": [["absolute", "signed"]], "positive": [_BOOL]},
}


def _described(constraint):
    """A constraint as comparable text (a StrOptions as its sorted options: a set has no order)."""
    if isinstance(constraint, StrOptions):
        return sorted(constraint.options)
    return str(make_constraint(constraint))


@pytest.mark.parametrize("cls", CLASSES)
def test_signature_is_pinned(cls):
    """n_components positional-or-keyword first, then the class's own, then the shared ones, all keyword-only."""
    parameters = list(inspect.signature(cls).parameters.values())
    expected = SHARED[:1] + OWN[cls] + SHARED[1:]
    assert [(p.name, p.default) for p in parameters] == expected
    assert [type(p.default) for p in parameters] == [type(default) for _, default in expected]
    assert parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert {p.kind for p in parameters[1:]} == {inspect.Parameter.KEYWORD_ONLY}
    assert cls().get_params() == dict(expected)


@pytest.mark.parametrize("cls", CLASSES)
def test_constraints_are_shared_plus_own(cls):
    described = {name: [_described(c) for c in constraints] for name, constraints in cls._parameter_constraints.items()}
    assert described == {**SHARED_CONSTRAINTS, **OWN_CONSTRAINTS[cls]}


@pytest.mark.parametrize("cls", CLASSES)
def test_docstring_documents_every_parameter_once(cls):
    doc = cls.__doc__
    for name in inspect.signature(cls).parameters:
        assert doc.count(f"\n    {name} : ") == 1, name
    assert doc.count("\n    Parameters\n    ----------\n") == 1
    assert "    {" not in doc  # no marker left
    assert "\n    history_ : " in doc and "\n    n_features_in_ : " in doc
    assert ("\n    encoder_ : " in doc) == ("encoder_" in cls._parameter_names)


@pytest.mark.parametrize("cls", CLASSES)
def test_init_stores_arguments_unchanged_and_rejects_others(cls):
    sentinels = {name: object() for name in inspect.signature(cls).parameters}
    model = cls(**sentinels)
    assert all(getattr(model, name) is value for name, value in sentinels.items())
    assert set(vars(model)) == set(sentinels)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        cls(nonsense=1)
    with pytest.raises(TypeError):
        cls(16, 4)  # only n_components is positional


@settings(max_examples=25, deadline=None)
@given(
    cls=st.sampled_from(CLASSES),
    values=st.dictionaries(
        st.sampled_from([name for name, _ in SHARED]),
        st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False), st.text(max_size=5)),
    ),
)
def test_get_params_clone_and_pickle_round_trip_any_values(cls, values):
    """Whatever is passed comes back from get_params, clone and pickle (validation waits for fit)."""
    model = cls(**values)
    assert {name: model.get_params()[name] for name in values} == values
    assert clone(model).get_params() == model.get_params()
    assert pickle.loads(pickle.dumps(model)).get_params() == model.get_params()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_sets_own_and_shared_parameters():
    X = np.random.default_rng(0).normal(size=(60, 6))
    search = GridSearchCV(TopKSAE(n_components=12, max_steps=3, random_state=0), {"k": [2, 3], "batch_size": [16, 32]}, cv=2)
    search.fit(X)
    assert search.best_estimator_.k in (2, 3) and search.best_estimator_.batch_size in (16, 32)
    assert search.best_estimator_.k_ == search.best_estimator_.k


def _declared_class(**body):
    """A minimal SAE subclass built as an architecture module would write it."""
    return type("ProbeSAE", (BaseSparseAutoencoder,), {"__module__": __name__, **body})


def test_a_new_architecture_declares_only_its_own_parameters():
    width = Parameter("width", 3, [Interval(Integral, 1, None, closed="left")], "int", "How wide the probe is.")
    doc = "Probe.\n\n    {parameters}\n\n    Attributes\n    ----------\n    {shared_attributes}\n"
    cls = _declared_class(__doc__=doc, _parameters=(width,))
    names = list(inspect.signature(cls).parameters)
    assert names == ["n_components", "width"] + [name for name, _ in SHARED[1:]]
    assert cls(width=5).width == 5 and cls().get_params()["width"] == 3
    assert str(make_constraint(cls._parameter_constraints["width"][0])) == _INT_1
    assert "\n    width : int, default=3\n        How wide the probe is.\n" in cls.__doc__
    assert cls.__init__.__qualname__ == "ProbeSAE.__init__"
    # a subclass that declares a name again replaces it, in its own position
    narrow = type("NarrowSAE", (cls,), {"__doc__": "Narrow.\n\n    {parameters}\n", "_parameters": (Parameter("width", 1, [], "int"),)})
    assert inspect.signature(narrow).parameters["width"].default == 1
    assert list(inspect.signature(narrow).parameters).count("width") == 1


def test_undocumented_declarations_and_bad_names_raise():
    with pytest.raises(ValueError, match=r"no '    \{parameters\}' line"):
        _declared_class(__doc__="No parameters section.", _parameters=(Parameter("width", 3, [], "int"),))
    with pytest.raises(ValueError, match="public Python identifier"):
        Parameter("class", 0, [], "int")
    with pytest.raises(ValueError, match="public Python identifier"):
        Parameter("_hidden", 0, [], "int")


def test_a_class_that_writes_its_own_init_is_left_as_written():
    class Handwritten(DeclaredParameters):
        _parameters = (Parameter("a", 1, [], "int"),)

        def __init__(self, b=2):
            self.b = b

    assert list(inspect.signature(Handwritten).parameters) == ["b"]
    assert not hasattr(Handwritten, "_parameter_constraints")
