"""The scikit-learn face shared by every sparse autoencoder of skdict.

:class:`BaseSparseAutoencoder` holds the parameters common to the family
(:data:`SHARED_PARAMETERS`), the initialisation, ``fit``/``partial_fit``/
``transform``/``inverse_transform``/``predict``/``score``, and the device rules;
:mod:`skdict.sae._step` trains any linear-encoder SAE from the few hooks below.

Adding an architecture: one short module
----------------------------------------
A new SAE subclasses :class:`BaseSparseAutoencoder` (and a mixin it shares, such as
:class:`~skdict.sae._topk_common.AuxKMixin`) and writes only what is its own:

1. **Its parameters**: ``_parameters = (Parameter(name, default, constraints, type, doc), ...)``
   (:class:`~skdict.sae._parameters.Parameter`). ``__init__`` (explicit signature:
   ``n_components``, then these, then the shared ones), ``_parameter_constraints`` and the
   docstring's Parameters section are generated from the declarations; write no ``__init__``.
   Hyper-parameters resolved against the data (``k_``, ``layer_sizes_``) go in
   ``_check_hyperparameters(n_components)``.
2. **Its docstring**: the model and its maths in the paper's symbols, then the lines
   ``    {parameters}`` and, under an Attributes heading after its own fitted attributes,
   ``    {shared_attributes}``; a See Also and an example of what is its own.
3. **Its activation / support**: ``_support(A, training)`` gives the active ``(rows, cols)`` of
   the pre-activations ``A`` (set ``_rowwise_support = True`` when a row's support depends on that
   row only: the step then works in row blocks; a batch-wide selection can too, through
   ``_support_candidates``/``_select_candidates``); optionally ``_keep_support`` for inference in place.
4. **Its extra loss**: ``_sparsity_penalty`` (value, gradient on the support, parameter
   gradients), ``_reconstruction`` for another reconstruction term (Matryoshka's nested prefixes),
   ``_aux_support`` for a loss on dead latents, ``_probe_pairs``/``_probe_grads``
   for learnable thresholds reached by a straight-through estimator.
5. **Its extra parameters**: their names in ``_extra_parameters``, initial values from
   ``_init_extra_parameters``, those in pre-activation units in ``_preactivation_unit_parameters``,
   a projection after each step in ``_after_step``, statistics at the final parameters in ``_after_fit``.

An architecture with another encoder (matching pursuit) names its trained parameters
(``_parameter_names``) and overrides ``_init_encoder``, ``_loss_and_grads`` and ``_encode``;
the training engine and the scikit-learn face stay the same. Each hook has a
finite-difference test in ``tests/sae/test_gradients.py`` and the class joins
``tests/sae/test_estimator_checks.py``.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skdict._guards import keeps_state_on_failure
from skdict._array import (
    DEVICES,
    device_of,
    get_namespace,
    is_cupy_array,
    like_input,
    resolve_device,
    sparse_namespace,
    to_device,
    to_numpy,
)
from skdict._validation import check_codes, check_input, check_target, is_matrix_target
from skdict.exceptions import TrainingDivergedError
from skdict.ops.adam import Adam
from skdict.ops.atoms import normalize_rows
from skdict.ops._threads import run_row_blocks
from skdict.ops.geometric_median import geometric_median
from skdict.sae._step import add_bias, gather_codes, loss_and_grads, preactivations, root_mean_square, sum_of_squares
from skdict.sae._parameter_values import check_parameter_values
from skdict.sae._reconstruction import reconstruction
from skdict.sae._data import InMemoryData, StreamedData, is_target
from skdict.ops.moments import RunningMoments
from skdict.sources import PairedSource, RowRangeSource, as_source, is_out_of_core, prefetched
from skdict.sae._training import Budget, new_history, run_epochs, warn_if_unfinished
from skdict.sae._checkpoint import resume_from_checkpoint
from skdict.sae._parameters import DeclaredParameters, Parameter

#: Data spreads (RMS) the engine trains at: the loss, a sum of squares, stays a normal float64 number.
_TRAINABLE_SCALES = (2.0**-480, 2.0**480)
#: Rows of a random sample used for the geometric-median initialisation of b_dec.
_MEDIAN_SAMPLE = 4096
#: Upper bound on the elements of one (rows x n_components) block of codes at inference.
_TRANSFORM_BLOCK = 1 << 24


#: The parameters every SAE shares, declared once (name, default, constraint, doc); each class's
#: ``__init__``, ``_parameter_constraints`` and docstring entries are built from them
#: (:mod:`skdict.sae._parameters`). ``n_components`` is the one positional parameter.
SHARED_PARAMETERS = (
    Parameter(
        "n_components", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
        "Number of latents :math:`m` (dictionary atoms); ``None`` means ``8 * n_features``.",
        positional=True,
    ),
    Parameter(
        "learning_rate", 1e-3, [Interval(Real, 0, None, closed="neither")], "float",
        "Adam's step size :math:`\\eta`; biases move :math:`\\eta` times the data's RMS scale.",
    ),
    Parameter("batch_size", 256, [Interval(Integral, 1, None, closed="left")], "int", "Minibatch size :math:`B`."),
    Parameter(
        "max_iter", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
        "Epochs (passes over the data); ``None``: no limit in epochs. ``max_iter``, ``max_steps`` and "
        "``max_samples`` are per ``fit`` call, and the learning-rate schedule's horizon is the first of them reached.",
    ),
    Parameter(
        "max_steps", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
        "Optimizer steps (minibatches); ``None``: no limit in steps.",
    ),
    Parameter(
        "max_samples", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
        "Training samples (tokens) read, over as many epochs as that takes; ``None``: no limit. "
        "Training ends at the first of ``max_iter``, ``max_steps``, ``max_samples`` reached.",
    ),
    Parameter(
        "early_stopping", True, ["boolean"], "bool",
        "End training once the training loss, averaged over windows of ``log_every`` steps, has not improved "
        "by a relative ``tol`` for ``n_iter_no_change`` windows: the learning rate then decays to zero over "
        "``decay_fraction`` of the run and training ends. With all of ``max_iter``, ``max_steps``, "
        "``max_samples`` left at ``None``, a fit runs until early stopping, at most 20 000 steps.",
    ),
    Parameter(
        "tol", 1e-4, [Interval(Real, 0, None, closed="left")], "float",
        "Early stopping: relative improvement of the windowed loss counted as progress.",
    ),
    Parameter(
        "n_iter_no_change", 5, [Interval(Integral, 1, None, closed="left")], "int",
        "Windows without progress before stopping.",
    ),
    Parameter(
        "log_every", None, [Interval(Integral, 1, None, closed="left"), None], "int or None",
        "Steps per window: one entry of ``step_history_``, one verbose log line, one early-stopping check. "
        "``None``: about one epoch of small data, ``ceil(min(n_samples, 32768) / batch_size)``.",
    ),
    Parameter(
        "warmup_fraction", 0.05, [Interval(Real, 0, 1, closed="both")], "float",
        "Fraction of the steps over which the learning rate rises linearly from 0.",
    ),
    Parameter(
        "decay_fraction", 0.2, [Interval(Real, 0, 1, closed="both")], "float",
        "Fraction of the steps, at the end, over which the learning rate decays linearly to 0.",
    ),
    Parameter(
        "max_grad_norm", 1.0, [Interval(Real, 0, None, closed="neither"), None], "float or None",
        "Clip the global gradient norm (``None``: no clipping).",
    ),
    Parameter(
        "dead_after", 10_000, [Interval(Integral, 1, None, closed="left")], "int",
        "A latent that has not fired for this many training samples is dead.", shown_default="10_000",
    ),
    Parameter(
        "resample_dead", False, ["boolean"], "bool",
        "Re-initialise dead latents, at most once per ``dead_after`` samples, along inputs of the current "
        "minibatch drawn in proportion to their squared reconstruction error (Bricken et al., 2023): unit decoder "
        "atom, encoder row at 0.2x the mean alive norm, zero bias and Adam state; counted in "
        "``history_[\"n_resampled\"]`` (:mod:`skdict.sae._resampling`). A remedy for dead latents beside AuxK.",
    ),
    Parameter(
        "device", "auto", [StrOptions(set(DEVICES))], '{"auto", "cpu", "cuda"}',
        '``"auto"`` trains where the input lives; ``"cuda"`` moves NumPy input to the GPU.',
    ),
    Parameter(
        "warm_start", False, ["boolean"], "bool",
        "Continue from the current parameters and optimizer state on ``fit``.",
    ),
    Parameter(
        "checkpoint_dir", None, [str, os.PathLike, None], "str, path-like or None",
        "Folder of the fit's checkpoints (parameters, optimizer state, RNG, data position), written atomically "
        "every ``checkpoint_every`` steps; a fit that finds one there resumes from it. ``None``: no checkpoints.",
    ),
    Parameter(
        "checkpoint_every", 1000, [Interval(Integral, 1, None, closed="left")], "int",
        "Optimizer steps between two checkpoints (with ``checkpoint_dir``).",
    ),
    Parameter(
        "verbose", 0, ["verbose"], "int",
        "Print a progress bar (tqdm if installed) with loss, explained variance, L0 and dead fraction.",
    ),
    Parameter(
        "random_state", None, ["random_state"], "int, RandomState or None",
        "Seed of the initialisation and of the minibatch order (the same seed gives the same model on the same backend).",
    ),
    Parameter(
        "callback", None, [callable, None], "callable or None",
        "Called after every epoch as ``callback(estimator, record)``, ``record`` the dict just appended to "
        "``history_`` (``loss``, ``explained_variance``, ``l0``, ``dead_fraction``) plus ``epoch`` (1-based "
        "since initialisation). Returning ``True`` ends the fit after that epoch, as early stopping does (no "
        "ConvergenceWarning for the budget left). For monitoring, logging, or stopping on a metric of one's "
        "own (see :mod:`skdict._history`).",
    ),
)


#: The fitted attributes of training every SAE shares, the end of what a docstring's ``{shared_attributes}`` becomes.
TRAINING_ATTRIBUTES_DOC = """\
    is_transcoder_ : bool
        Whether the model was fitted as a transcoder (``fit(X, Y)`` with a 2-D ``Y``).
    n_targets_ : int
        Width of the reconstruction target (``n_features_in_`` for an SAE).
    history_ : dict of lists
        Per epoch: ``loss``, ``explained_variance``, ``l0``, ``dead_fraction`` (NaN until
        ``dead_after`` samples were seen), and ``n_resampled`` (latents resampled) with
        ``resample_dead``; the last epoch of a fit may be partial. The schema
        every iterative skdict learner shares (:mod:`skdict._history`).
    step_history_ : dict of lists
        Per window of ``log_every`` steps: ``step`` (of the call), ``samples`` (seen since
        initialisation) and the same four statistics over the window.
    n_steps_ : int
        Optimizer steps since initialisation.
    n_samples_seen_ : int
        Training samples read since initialisation.
    n_iter_ : int
        Epochs since initialisation, one per ``history_`` record (a warm-start ``fit`` and ``partial_fit`` add to
        it); the last epoch of a fit may be partial, and an epoch that diverged is not counted.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.
"""

#: The parameters of a linear encoder-decoder SAE, the start of ``{shared_attributes}`` where there is an ``encoder_``.
LINEAR_ATTRIBUTES_DOC = """\
    components_ : array of shape (n_components, n_targets)
        Decoder atoms :math:`W_{dec}` as unit rows.
    encoder_ : array of shape (n_components, n_features)
        Encoder rows :math:`W_{enc}`.
    encoder_bias_ : array of shape (n_components,)
    decoder_bias_ : array of shape (n_targets,)
        :math:`b_{dec}` (the pre-bias :math:`b_{pre}` of an SAE), initialised at the geometric median.
    input_center_ : array of shape (n_features,) or None
        Fixed centre subtracted from ``X`` by a transcoder (``None`` for an SAE).
"""


def _stack_rows(blocks):
    """One CSR matrix from row blocks of CSR matrices (SciPy or CuPy)."""
    if isinstance(blocks[0], scipy.sparse.sparray):
        return scipy.sparse.vstack(blocks, format="csr")
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse.vstack(blocks, format="csr")


class EncodeDecodeMixin:
    """``encode``/``decode``: the names SAELens, SAEBench's custom-SAE protocol and nnsight code call.

    ``sae.encode(x)`` is :meth:`transform` and ``sae.decode(z)`` is :meth:`inverse_transform`,
    so code written for a SAELens ``SAE`` runs on a skdict estimator unchanged.
    """

    def encode(self, X):
        """Sparse codes of ``X`` (n_samples, n_features) -> (n_samples, n_components): :meth:`transform`."""
        return self.transform(X)

    def decode(self, Z):
        """Reconstruction from codes ``Z`` (n_samples, n_components) -> (n_samples, n_targets): :meth:`inverse_transform`."""
        return self.inverse_transform(Z)


class BaseSparseAutoencoder(
    DeclaredParameters, EncodeDecodeMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of the SAE family (not an estimator by itself).

    Each concrete class's Parameters section lists these, after its own.

    {parameters}
    """

    _parameters = SHARED_PARAMETERS

    @classmethod
    def _docstring_blocks(cls):
        """``{shared_attributes}``: the linear encoder-decoder's parameters (where it has an encoder) and training's."""
        linear = LINEAR_ATTRIBUTES_DOC if "encoder_" in cls._parameter_names else ""
        return {"shared_attributes": linear + TRAINING_ATTRIBUTES_DOC}

    #: Trained parameters of the architecture (a tied MPSAE has no encoder).
    _parameter_names: tuple = ("encoder_", "encoder_bias_", "components_", "decoder_bias_")
    #: Names of activation parameters beyond the linear ones (e.g. JumpReLU's threshold_).
    _extra_parameters: tuple = ()
    #: Whether ``fit(X, Y)`` with a 2-D ``Y`` (a transcoder) makes sense for the architecture.
    _supports_transcoder: bool = True
    #: A penalty on the parameters added to the training loss by a wrapper (e.g.
    #: :class:`~skdict.AnchoredSAE`): an object with ``initialize(model)`` and
    #: ``add_to(params, grads) -> value``; set on a private clone, never by users.
    _regularizer = None
    #: Which extra parameters live in pre-activation units (their Adam step is scaled by the data scale).
    _preactivation_unit_parameters: tuple = ("encoder_bias_",)
    #: Whether the step may form the pre-activations in row blocks: the support depends on each row
    #: alone, or is selected over the batch from row-local candidates (``_support_candidates``).
    _rowwise_support: bool = False

    # ------------------------------------------------------------------ hooks
    def _check_hyperparameters(self, n_components):
        """Checks that need the data (e.g. ``k <= n_components``); raise ValueError."""

    def _init_extra_parameters(self, xp, dtype, n_components, rng):
        """Initial values of ``_extra_parameters`` (a dict), given the data scale."""
        return {}

    def _init_encoder(self, xp, dtype, n_features, rng):
        """Encoder parameters: ``W_enc = W_dec`` for an SAE (random unit rows for a transcoder), ``b_enc = 0``."""
        if self.is_transcoder_:
            encoder = normalize_rows(rng.standard_normal((self.components_.shape[0], n_features)))
            self.encoder_ = xp.asarray(encoder, dtype=dtype)
        else:
            self.encoder_ = self.components_.copy()  # W_enc initialised as W_dec^T
        self.encoder_bias_ = xp.zeros(self.components_.shape[0], dtype=dtype)

    def _loss_and_grads(self, params, X, Y, dead_mask):
        """Loss and gradients of one minibatch (a :class:`~skdict.sae._step.StepResult`)."""
        return loss_and_grads(
            self, params, X, Y, centre=self._centre(), tied=not self.is_transcoder_, dead_mask=dead_mask
        )

    def _reconstruction(self, Z, params, Y):
        """The reconstruction term of the loss of codes ``Z`` (a :class:`~skdict.sae._reconstruction.Reconstruction`)."""
        return reconstruction(Z, params["components_"], params["decoder_bias_"], Y)

    def _encoding_state(self, params):
        """What :meth:`_encode` can reuse across the blocks of one inference call (e.g. a Gram matrix)."""
        return None

    def _encode(self, params, X, state=None):
        """Codes of a block of validated rows, as a :class:`~skdict.ops.codes.CodeMatrix`."""
        A, _ = preactivations(params, X, self._centre())
        rows, cols = self._support(A, training=False)
        return gather_codes(A, rows, cols)

    def _support(self, A, training):
        """Active pairs ``(rows, cols)`` (row-sorted) of the pre-activations ``A``."""
        raise NotImplementedError

    def _support_candidates(self, A):
        """Row-local pass of the row-blocked training step: ``(rows, cols, bounds)`` of a block ``A``.

        The training support, and ``bounds=None``; a support selected over the whole
        batch (BatchTopK) returns candidate pairs and per row an upper bound of its other
        entries instead, and :meth:`_select_candidates` picks among them.
        """
        rows, cols = self._support(A, training=True)
        return rows, cols, None

    def _select_candidates(self, values, n_rows):
        """``(keep, level)``: the support's positions among all the batch's candidate values, in order,
        and a level :math:`L` such that every entry :math:`a > L` must be a candidate (see
        :func:`skdict.sae._step._select_over_batch`). Only called when :meth:`_support_candidates`
        returns bounds."""
        raise NotImplementedError

    def _sparsity_penalty(self, A, rows, cols, n_rows, params):
        """``(penalty, dpenalty/da on the support, {parameter: dpenalty/dparameter})``, averaged over rows."""
        return 0.0, 0.0, {}

    def _probe_pairs(self, A):
        """Extra pairs where dL/dz is needed (e.g. a threshold's window), or ``None``."""
        return None

    def _probe_grads(self, values, rows, cols, dZ, n_rows):
        """Gradients of extra parameters from dL/dz (``dZ``) on the probe pairs, where :math:`a` is ``values``."""
        return {}

    def _aux_support(self, A, dead_mask):
        """Pairs for an auxiliary loss on dead latents (AuxK), or ``None``."""
        return None

    def _after_step(self, result):
        """Projection or bookkeeping of the activation after each optimizer step."""

    def _after_fit(self, data):
        """Statistics estimated at the final parameters from the data just trained on (e.g. an inference threshold).

        ``data`` is the training data (:mod:`skdict.sae._data`); ``data.statistics_rows(n)`` gives up to
        ``n`` of its rows without reading all of an out-of-core source.
        """

    def _training_control(self):
        """A controller the engine runs after every step (``step``, ``plateau_loss``), or ``None``.

        E.g. :class:`~skdict.sae._l0_target.L0Controller`, which steers ``alpha_`` to ``target_l0``.
        """
        return None

    def _history_record(self):
        """Keys of ``history_`` beyond the shared ones, for the epoch just ended (e.g. ``{"alpha": ...}``)."""
        return {}

    def _record_firing(self, columns, n_rows):
        """Dead-latent clock: every latent ages by ``n_rows`` samples, those that fired reset to 0."""
        xp = get_namespace(columns)
        self._samples_since_fired += n_rows
        fired = xp.bincount(columns, minlength=self._samples_since_fired.shape[0]) > 0
        self._samples_since_fired[fired] = 0

    # ------------------------------------------------------- fitted internals
    def _params(self):
        names = self._parameter_names + self._extra_parameters
        return {name: getattr(self, name) for name in names}

    def _centre(self):
        return self.input_center_ if self.is_transcoder_ else self.decoder_bias_

    def _dead_mask(self):
        return self._samples_since_fired >= self.dead_after

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _resolve_n_components(self, n_features):
        """``n_components=None`` means 8 latents per input feature (an 8x expansion)."""
        return 8 * n_features if self.n_components is None else self.n_components

    # ---------------------------------------------------------------- fitting
    def _training_data(self, X, y, *, reset):
        """Validate the training input and wrap it for the engine (nothing fitted is touched).

        Arrays (and array-likes) become :class:`~skdict.sae._data.InMemoryData` on the
        training device; out-of-core data (a ``.npy`` path or folder, ``np.memmap``,
        HDF5/Zarr/Dask arrays, a stream of chunks) becomes
        :class:`~skdict.sae._data.StreamedData` over a :class:`~skdict.sources.DataSource`.
        """
        if is_out_of_core(X):
            return self._streamed_data(X, y, reset=reset)
        return InMemoryData(*self._prepare(X, y, reset=reset))

    def _check_target_kind(self, has_target, n_targets, *, reset):
        """A fitted SAE keeps its kind (SAE or transcoder) and target width; a tied one is never a transcoder."""
        if not reset:
            if self.is_transcoder_ and not has_target:
                raise ValueError(
                    f"{type(self).__name__} was fitted as a transcoder (with a 2-D Y); pass Y of shape "
                    f"(n_samples, {self.n_targets_}) again, or refit with warm_start=False."
                )
            if not self.is_transcoder_ and has_target:
                raise ValueError(
                    f"{type(self).__name__} was fitted as an SAE (no Y); refit with warm_start=False "
                    "to train a transcoder."
                )
            if has_target and n_targets != self.n_targets_:
                raise ValueError(f"Y has {n_targets} columns, but the transcoder was fitted with {self.n_targets_}.")
        elif has_target and not self._supports_transcoder:
            raise ValueError(
                f"{type(self).__name__} has a tied dictionary (codes and reconstruction use the same atoms), "
                "so it cannot be a transcoder: call fit(X) without a 2-D Y, or use TopKSAE for a transcoder."
            )

    def _prepare(self, X, y, *, reset):
        """Validate and place ``X`` (and a transcoder target) on the training device."""
        X = check_input(self, X, reset=reset)
        Y = check_target(y, X) if is_matrix_target(y) else None
        self._check_target_kind(Y is not None, None if Y is None else Y.shape[1], reset=reset)
        device = resolve_device(self.device, X) if reset else device_of(self.components_)
        return to_device(X, device), to_device(Y, device)

    def _streamed_data(self, X, y, *, reset):
        """Open ``X`` (and a target ``y``) as sources; check widths and kind; the device is ``device`` (CPU for "auto")."""
        source = as_source(X)
        has_target = is_target(y)
        if has_target:
            targets = as_source(y, name="Y")
            if not (isinstance(source, RowRangeSource) and isinstance(targets, RowRangeSource)):
                raise ValueError(
                    "a transcoder streams X and Y as row-aligned sources (files, arrays, HDF5/Zarr/Dask datasets); "
                    "a stream of chunks cannot be paired with targets: save both to .npy files, or use partial_fit "
                    "with one (X, Y) chunk at a time."
                )
            self._check_target_kind(True, targets.n_features, reset=reset)
            source = PairedSource(source, targets)
        else:
            self._check_target_kind(False, None, reset=reset)
        n_features = source.n_inputs if has_target else source.n_features
        if reset:
            self.n_features_in_ = n_features
            self.__dict__.pop("feature_names_in_", None)
        elif n_features != self.n_features_in_:
            raise ValueError(
                f"{source.name} has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        device = resolve_device(self.device, None) if reset else device_of(self.components_)
        return StreamedData(source, device)

    def _initialize(self, data):
        """Set every fitted attribute from the training data (seeded by ``random_state``).

        The initial statistics (the geometric medians, the data scales) come from a
        sample of :data:`_MEDIAN_SAMPLE` rows (:meth:`~skdict.sae._data.InMemoryData.init_sample`).
        """
        rng = check_random_state(self.random_state)
        X_sample, target_sample = data.init_sample(rng, _MEDIAN_SAMPLE)
        xp = get_namespace(X_sample)
        dtype = X_sample.dtype
        self.is_transcoder_ = data.has_target
        self.n_targets_ = target_sample.shape[1]
        n_components = self._resolve_n_components(data.n_features)
        self._check_hyperparameters(n_components)

        self.decoder_bias_ = geometric_median(target_sample)
        self.input_center_ = geometric_median(X_sample) if self.is_transcoder_ else None

        atoms = normalize_rows(rng.standard_normal((n_components, self.n_targets_)))
        self.components_ = xp.asarray(atoms, dtype=dtype)
        self._init_encoder(xp, dtype, data.n_features, rng)
        self._set_data_scales(X_sample, target_sample)
        for name, value in self._init_extra_parameters(xp, dtype, n_components, rng).items():
            setattr(self, name, value)
        self._start_training(rng, reset=True)

    def _set_data_scales(self, X_sample, target_sample):
        """``_data_scale`` :math:`s_{in}` and ``_lr_scales`` (:math:`s_{out}` for ``decoder_bias_``) from a sample.

        Adam moves every parameter by about the learning rate per step, so parameters
        measured in data units (biases, thresholds) get their step multiplied by the
        data's per-coordinate RMS. This is what normalising the data would do, without
        changing the units of the fitted model (and without overflow for any finite
        data: float32 squares overflow from |x| ~ 1e19).

        Raises
        ------
        ValueError
            A spread outside :data:`_TRAINABLE_SCALES`, naming ``X`` or ``Y`` and the fix.
        """
        scale_in = root_mean_square(X_sample - self._centre()) or 1.0
        scale_out = root_mean_square(target_sample - self.decoder_bias_) or 1.0
        for what, scale in (("X", scale_in), ("Y" if self.is_transcoder_ else "X", scale_out)):
            if not _TRAINABLE_SCALES[0] <= scale <= _TRAINABLE_SCALES[1]:
                raise ValueError(
                    f"{what} has a root-mean-square spread of {scale:.3g}: the training loss (its square, summed) "
                    f"cannot be represented in float64 at that scale. Rescale {what} (e.g. StandardScaler, or "
                    f"multiply by a power of ten) into [{_TRAINABLE_SCALES[0]:.0e}, {_TRAINABLE_SCALES[1]:.0e}]; the "
                    "training itself is scale-free within that range."
                )
        self._data_scale = scale_in
        self._lr_scales = {name: scale_in for name in self._preactivation_unit_parameters}
        self._lr_scales["decoder_bias_"] = scale_out

    def _init_training_scalars(self):
        """Scalars of training derived from the data scale (e.g. JumpReLU's ``bandwidth_``); none by default."""

    def _start_training(self, rng, *, reset):
        """The training state, the ONE place it is set up: RNG, fresh Adam, dead-latent clock at zero, counters.

        Called by :meth:`_initialize` (``reset=True``: ``history_`` and the counters start
        afresh) and by :meth:`_complete_training_state` (``reset=False``: those a model
        already has are kept). Needs the parameters and :meth:`_set_data_scales`.
        """
        xp = get_namespace(self.components_)
        self._rng = rng
        self._init_training_scalars()
        if self._regularizer is not None:
            self._regularizer.initialize(self)
        self._adam = Adam(self._params())
        self._samples_since_fired = xp.zeros(self.components_.shape[0], dtype=xp.int64)
        if reset or not hasattr(self, "history_"):
            self.history_, self.step_history_ = new_history()
        for name in ("n_iter_", "n_steps_", "n_samples_seen_"):
            if reset or not hasattr(self, name):
                setattr(self, name, 0)

    def _complete_training_state(self, data):
        """Start training a model that has parameters but no training state, from the first data it sees.

        A model built from arrays (:func:`skdict.io._build.build_fitted`, a file saved without
        optimizer state, an imported SAELens SAE) or whose parameters were set by hand: Adam
        starts fresh, the dead-latent clock at zero, the RNG from ``random_state``, and the
        data scales are estimated from a sample of ``data`` as :meth:`_initialize` does.
        A model that has its training state is left as it is.
        """
        if hasattr(self, "_adam"):
            return
        check_parameter_values(self, f"{type(self).__name__} (parameters given from outside a fit)")
        rng = check_random_state(self.random_state)
        X_sample, target_sample = data.init_sample(rng, _MEDIAN_SAMPLE)
        self._set_data_scales(X_sample, target_sample)
        self._start_training(rng, reset=False)

    def _parameter_shapes(self):
        """Expected shape of every parameter, from the declared names (``_parameter_names``, ``_extra_parameters``).

        With :math:`m` = ``components_.shape[0]``, :math:`d` = ``n_features_in_`` and
        :math:`d_{out}` = ``n_targets_`` (:math:`d` for an SAE): ``components_`` (m, d_out), ``encoder_`` (m, d),
        ``encoder_bias_`` (m,), ``decoder_bias_`` (d_out,), ``input_center_`` (d,) for a
        transcoder, and every extra (activation) parameter one value per latent, (m,).
        """
        m, d = self.components_.shape[0], self.n_features_in_
        d_out = self.n_targets_ if self.is_transcoder_ else d  # an SAE reconstructs its input
        known = {"components_": (m, d_out), "encoder_": (m, d), "encoder_bias_": (m,), "decoder_bias_": (d_out,)}
        shapes = {name: known.get(name, (m,)) for name in self._parameter_names + self._extra_parameters}
        if self.is_transcoder_:
            shapes["input_center_"] = (d,)
        return shapes

    def _check_parameter_shapes(self):
        """Raise a ValueError naming the first parameter that is missing or has the wrong shape (both shapes)."""
        for name, expected in self._parameter_shapes().items():
            value = getattr(self, name, None)
            shape = None if value is None else tuple(getattr(value, "shape", ()))
            if shape != expected:
                found = "missing" if value is None else f"of shape {shape}"
                raise ValueError(
                    f"{type(self).__name__}: {name} is {found}, expected shape {expected} (n_components="
                    f"{self.components_.shape[0]} from components_, n_features_in_={self.n_features_in_}, "
                    f"n_targets_={self.n_targets_}); give {name} with shape {expected}."
                )

    def _complete_fitted(self):
        """The fitted scalars implied by parameters given from outside (arrays, a file, set by hand); shapes checked.

        ``n_features_in_`` (from ``encoder_``, else ``components_``), ``n_targets_``,
        ``is_transcoder_`` (widths differ, or an ``input_center_`` is given), ``input_center_``
        (``None`` for an SAE) where absent, then the class's resolved hyper-parameters
        (:meth:`_check_hyperparameters`: ``k_``, ``layer_sizes_``). Values already set are kept.

        Raises
        ------
        ValueError
            ``components_`` is not 2-D, or a parameter is missing or ill-shaped (naming it and both shapes).
        """
        components = self.components_
        if getattr(components, "ndim", None) != 2:
            raise ValueError(
                f"{type(self).__name__}: components_ must be 2-D (n_components, n_targets), got shape "
                f"{getattr(components, 'shape', None)}."
            )
        encoder = getattr(self, "encoder_", None)
        width = components.shape[1] if getattr(encoder, "ndim", 0) != 2 else encoder.shape[1]
        self.__dict__.setdefault("n_features_in_", width)
        self.__dict__.setdefault("n_targets_", components.shape[1])
        self.__dict__.setdefault(
            "is_transcoder_", getattr(self, "input_center_", None) is not None or self.n_features_in_ != self.n_targets_
        )
        if not self.is_transcoder_:
            self.input_center_ = None
        self._check_parameter_shapes()
        self._check_hyperparameters(components.shape[0])

    def _is_initialized(self):
        """Whether the model has parameters to continue from (fitted, built from arrays, or set by hand).

        Parameters set by hand get the fitted scalars they imply here (:meth:`_complete_fitted`).
        """
        if hasattr(self, "components_") and not hasattr(self, "n_targets_"):
            self._complete_fitted()
        return hasattr(self, "components_")

    def _check_resume(self, data):
        """Before training further: the width must not change; other hyper-parameters are re-read.

        ``set_params(k=..., warm_start=True)`` then ``fit`` trains on with the new
        ``k``; a new ``n_components`` cannot reuse the parameters and is an error.
        A model without training state gets one (:meth:`_complete_training_state`).
        """
        fitted = self.components_.shape[0]
        wanted = self._resolve_n_components(self.n_features_in_)
        if wanted != fitted:
            raise ValueError(
                f"n_components={wanted} differs from the fitted model's {fitted} latents: continuing "
                "(warm_start=True or partial_fit) needs the same width; set warm_start=False to refit."
            )
        self._check_hyperparameters(fitted)
        self._complete_training_state(data)

    def _train(self, data, **schedule):
        """:func:`~skdict.sae._training.run_epochs`, ``n_iter_``, then :meth:`_after_fit`.

        After a divergence too, ``n_iter_`` counts the completed epochs and
        :meth:`_after_fit` runs at the kept parameters before the error propagates.
        """
        n_before = len(self.history_["loss"])
        try:
            run = run_epochs(self, data, **schedule)
        except TrainingDivergedError:
            self.n_iter_ += len(self.history_["loss"]) - n_before
            self._after_fit(data)
            raise
        self.n_iter_ += run.n_epochs
        self._after_fit(data)
        return run

    @keeps_state_on_failure
    def fit(self, X, y=None):
        """Train the SAE on ``X`` (or a transcoder from ``X`` to ``Y``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Activations; NumPy or CuPy (see ``device``).
        y : None, 1-D array or 2-D array of shape (n_samples, n_targets)
            ``None`` or a 1-D label vector (ignored, as scikit-learn's Pipeline
            passes labels to every step): train an SAE that reconstructs ``X``.
            A 2-D ``Y``: train a transcoder that encodes ``X`` and reconstructs ``Y``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            A bad parameter, ``X`` or ``Y``; the estimator is left as it was.
        TrainingDivergedError
            The loss became non-finite or exploded; the estimator keeps the
            parameters of its last sane checkpoint (usable: ``transform``, ``score``).

        Warns
        -----
        ConvergenceWarning
            The budget (``max_iter``, ``max_steps``, ``max_samples``, or the default
            one) or a one-pass stream ran out before the windowed loss reached a plateau
            (``tol``, ``n_iter_no_change``, ``log_every``); or the last epoch's explained
            variance is negative (the model is worse than its mean).
        """
        self._validate_params()
        resume = self.warm_start and self._is_initialized()
        data = self._training_data(X, y, reset=not resume)
        if not data.reiterable and self.max_iter is not None and self.max_iter > 1:
            raise ValueError(
                f"{data.source.name} is a one-pass iterator (e.g. a generator), which can be read for one epoch "
                f"only, but max_iter={self.max_iter}: set max_iter=1, pass a re-iterable source (a list of chunks, "
                "files), or call partial_fit once per chunk."
            )
        if resume:
            self._check_resume(data)
        else:
            self._initialize(data)
            resume_from_checkpoint(self, data)  # checkpoint_dir holds a checkpoint of this fit: continue from it
        # like history_, n_iter_ counts every epoch since initialisation (warm starts add to it)
        run = self._train(data, budget=Budget.of(self), scheduled=True, early_stopping=self.early_stopping)
        warn_if_unfinished(self, run, stacklevel=3)  # the caller of fit (through keeps_state_on_failure)
        return self

    @keeps_state_on_failure
    def partial_fit(self, X, y=None):
        """One epoch over a chunk of a stream; initialises on the first call.

        The learning rate is constant (no warmup or decay: a stream has no known
        horizon); Adam's state and the dead-latent counters carry over between calls.
        Errors as :meth:`fit` (no ConvergenceWarning: a stream has no budget to run out of).
        """
        self._validate_params()
        initialized = self._is_initialized()
        data = self._training_data(X, y, reset=not initialized)
        if initialized:
            self._check_resume(data)
        else:
            self._initialize(data)
        self._train(data, budget=Budget(epochs=1), scheduled=False, early_stopping=False)
        return self

    # -------------------------------------------------------------- inference
    def _encode_blocks(self, X):
        """Yield ``(start, stop, CodeMatrix)`` over row blocks of a validated, on-device ``X``."""
        rows_per_block = max(1, _TRANSFORM_BLOCK // self.components_.shape[0])
        params = self._params()
        state = self._encoding_state(params)
        for start in range(0, X.shape[0], rows_per_block):
            stop = min(start + rows_per_block, X.shape[0])
            yield start, stop, self._encode(params, X[start:stop], state)

    def _on_model_device(self, X):
        check_is_fitted(self)
        X = check_input(self, X, reset=False)
        return X, to_device(X, device_of(self.components_))

    _like_input = staticmethod(like_input)

    def transform(self, X):
        """Sparse codes :math:`z` of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core data
            An array (NumPy, CuPy, ``np.memmap``, another framework's array through DLPack), or a
            source :func:`skdict.sources.as_source` reads (a ``.npy`` path, folder or glob of shards,
            an HDF5/Zarr dataset, a Dask array, a stream of 2-D chunks).

        Returns
        -------
        codes : array of shape (n_samples, n_components), or sparse
            For an array, a dense array of the input's kind (NumPy or CuPy). For a file, dataset,
            Dask array or stream, whose dense codes may not fit in memory, a CSR matrix
            (``scipy.sparse.csr_array``; ``cupyx.scipy.sparse.csr_matrix`` on a GPU model), built
            block by block: memory O(nnz + block x n_components).
        """
        if self._reads_as_source(X):
            sparse_blocks = [self._sparse_codes(Xb) for Xb, _ in self._source_blocks(X)]
            return _stack_rows(sparse_blocks)
        X_in, X = self._on_model_device(X)
        return self._like_input(self._dense_codes(X), X_in)

    @staticmethod
    def _reads_as_source(X):
        """Whether inference reads ``X`` through a source: files, datasets, Dask, streams (not arrays, not memmaps)."""
        return is_out_of_core(X) and not isinstance(X, np.ndarray)

    def _source_blocks(self, X, y=None):
        """Yield ``(X block, target block or None)`` over an out-of-core input, in order, checked, on the model's device."""
        check_is_fitted(self)
        data = self._streamed_data(X, y, reset=False) if self.is_transcoder_ and y is not None else None
        source = data.source if data is not None else as_source(X)
        if data is None and source.n_features != self.n_features_in_:
            raise ValueError(
                f"{source.name} has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        rows = max(1, _TRANSFORM_BLOCK // max(self.components_.shape[0], source.n_features))
        device = device_of(self.components_)
        for _, block in prefetched(source.chunks(rows), depth=2):
            block = to_device(block, device)
            yield (source.split(block) if data is not None else (block, None))

    def _sparse_codes(self, X):
        """Codes of one validated, on-device block as a CSR matrix (dense only for that block)."""
        sparse = sparse_namespace(get_namespace(X))
        dense = self._dense_codes(X)
        return sparse.csr_matrix(dense) if sparse is not scipy.sparse else scipy.sparse.csr_array(dense)

    def _dense_codes(self, X):
        """Dense codes of a validated, on-device ``X``, in ``X``'s dtype.

        Each block's product :math:`\\tilde x W_{enc}^\\top` is written straight into
        the output and cut to its support there (:meth:`_keep_support`), blocks on
        threads (:func:`~skdict.ops._threads.run_row_blocks`): the only dense
        (n_samples x n_components) array is the result.
        """
        xp = get_namespace(X)
        params = self._params()
        encoder = params["encoder_"].astype(X.dtype, copy=False)
        centre = self._centre().astype(X.dtype, copy=False)
        bias = params["encoder_bias_"].astype(X.dtype, copy=False)
        codes = xp.empty((X.shape[0], encoder.shape[0]), dtype=X.dtype)

        def encode_block(start, stop):
            block = codes[start:stop]
            xp.matmul(X[start:stop] - centre, encoder.T, out=block)
            self._keep_support(block, bias)

        run_row_blocks(encode_block, X.shape[0], max(1, _TRANSFORM_BLOCK // encoder.shape[0]), xp)
        return codes

    def _keep_support(self, A, bias):
        """Turn :math:`\\tilde x W_{enc}^\\top` into dense codes in place: add :math:`b_{enc}`, zero off the support."""
        add_bias(A, bias)
        rows, cols = self._support(A, training=False)
        values = A[rows, cols]
        A[...] = 0
        A[rows, cols] = values

    def inverse_transform(self, X):
        """Reconstruction :math:`\\hat y = z W_{dec} + b_{dec}` from codes of shape (n_samples, n_components)."""
        check_is_fitted(self)
        xp_in_cupy = is_cupy_array(X)
        codes = check_codes(X, self.components_.shape[0], like=self.components_)  # finite, real, model's device
        reconstruction = codes @ self.components_ + self.decoder_bias_
        return reconstruction if xp_in_cupy else to_numpy(reconstruction)

    def predict(self, X):
        """Reconstruction of the target from ``X``: of ``X`` for an SAE, of ``Y`` for a transcoder.

        ``X`` as in :meth:`transform`; the result is dense, shape (n_samples, n_targets)
        (NumPy for out-of-core input, read block by block).
        """
        if self._reads_as_source(X):
            return np.concatenate([to_numpy(self._reconstruct(Xb)) for Xb, _ in self._source_blocks(X)], axis=0)
        X_in, X = self._on_model_device(X)
        return self._like_input(self._reconstruct(X), X_in)

    def _reconstruct(self, X):
        """:math:`\\hat y` of a validated, on-device ``X``, encoded block by block."""
        xp = get_namespace(X)
        out = xp.empty((X.shape[0], self.n_targets_), dtype=X.dtype)
        for start, stop, Z in self._encode_blocks(X):
            out[start:stop] = Z.dot(self.components_) + self.decoder_bias_
        return out

    def score(self, X, y=None):
        """Explained variance of the reconstruction, :math:`1 - \\sum\\|y-\\hat y\\|^2 / \\sum\\|y-\\bar y\\|^2`.

        The target is ``X`` for an SAE (``y`` ignored) and the 2-D ``y`` for a transcoder.
        :math:`\\bar y` is the per-feature mean over the samples scored. Out-of-core ``X``
        (and ``y``) is read once, block by block: both sums are accumulated in float64.
        """
        from skdict.metrics import explained_variance

        check_is_fitted(self)
        if self.is_transcoder_ and not (is_matrix_target(y) if hasattr(y, "ndim") else y is not None):
            raise ValueError(f"{type(self).__name__} is a transcoder: score(X, Y) needs the 2-D target Y.")
        if self._reads_as_source(X):
            return self._streamed_score(X, y)
        if self.is_transcoder_:
            target = check_target(y, check_input(self, X, reset=False))
        else:
            target = check_input(self, X, reset=False)
        return explained_variance(target, self.predict(X))

    def _streamed_score(self, X, y):
        """Explained variance over an out-of-core input: residual and total sums of squares merged over blocks."""
        moments, residual = RunningMoments(), 0.0
        for Xb, Yb in self._source_blocks(X, y if self.is_transcoder_ else None):
            target = Xb if Yb is None else Yb
            residual += sum_of_squares(target - self._reconstruct(Xb))
            moments.update(target)
        if moments.total_variance == 0.0:
            raise ValueError("the scored target has zero variance (all its rows are identical): explained variance is undefined.")
        return 1.0 - residual / moments.total_variance

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags
