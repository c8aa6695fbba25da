"""Diagnostics and surgeries on fitted dictionaries: stationarity, geometry, frozen-decoder codes, support refits."""

from skdict.inspection._dynamics import track_learning_dynamics
from skdict.inspection._geometry import antipodal_pairs, wide_dictionary_solution
from skdict.inspection._stationarity import stationarity_gaps
from skdict.inspection._surgeries import encoder_warm_start_savings, frozen_decoder_codes, support_refit
from skdict.inspection._top_activating import top_activating

__all__ = [
    "antipodal_pairs",
    "encoder_warm_start_savings",
    "frozen_decoder_codes",
    "stationarity_gaps",
    "support_refit",
    "top_activating",
    "track_learning_dynamics",
    "wide_dictionary_solution",
]
