"""Exceptions the public API raises: each carries a message fit to show a researcher as is."""

from traitlets import TraitError


class AttnWidgetError(ValueError):
    """Base class: bad input to the explorer (prompt, layer, head, model, message)."""


class PromptError(AttnWidgetError, TraitError):
    """The prompt cannot be run: empty, or longer than the model's context (a TraitError too)."""


class SelectionError(AttnWidgetError, TraitError):
    """A layer or head index outside the model (a TraitError too, so traitlets keeps the old value)."""


class ModelError(AttnWidgetError):
    """The model is of a kind no backend supports, or it failed while running."""


class AttnWidgetWarning(UserWarning):
    """Input the explorer can show but that is probably not what was meant (e.g. rows of precomputed
    attention that do not sum to 1)."""


class AnswerError(AttnWidgetError, TraitError):
    """An answer or counterfactual that is not one token of the model's vocabulary (a TraitError too)."""


class WeightsError(ModelError, TraitError):
    """What value weighting or logit attribution need is missing: the model's weights (precomputed
    attention), a tokenizer, or a layout it can read (a TraitError too, so the old value stays)."""
