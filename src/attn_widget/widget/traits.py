"""The explorer's synced state: every trait the front end reads or sets, in one place.

Traits are state (small, synced both ways); bulk data travels as custom messages (protocol.py).
js/state/types.ts `ExplorerState` mirrors this list, and a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
from traitlets import Bool, Bytes, Dict, Enum, Float, HasTraits, Int, List, Unicode

from attn_widget.contract import COLOR_SCALES, COMPOSITION_LABELS, REPEATED_TOKENS, SHADE_BY, WEIGHTINGS
from attn_widget.export.standalone import BUNDLE_DIR
from attn_widget.maths.sinks import SINK_THRESHOLD
from attn_widget.widget import arguments


class Whole(Int):  # type: ignore[type-arg]
    """An index set from Python or the front end: a whole number, never a bool or a float. Checked
    by the trait itself, so a front-end update (whose validators wait for the whole update, and skip
    a value equal to the old one: True == 1) cannot slip one in."""

    def validate(self, obj: Any, value: Any) -> int:
        return arguments.whole(self.name or "value", value)


class Share(Float):  # type: ignore[type-arg]
    """A finite share in (0, 1]."""

    def validate(self, obj: Any, value: Any) -> float:
        return arguments.real(self.name or "value", value, 0.0, 1.0, open_low=True)


class PromptText(Unicode):  # type: ignore[type-arg]
    """The prompt: setting it (from Python, the front end's `set_state`, the dataset stepper) is the
    explorer's prompt transition, which runs the model and stores the prompt with its whole state."""

    def set(self, obj: HasTraits, value: Any) -> None:
        text = self.validate(obj, value)
        transition = getattr(obj, "prompt_transition", None)
        # traitlets sets each held trait again, unchanged, when hold_trait_notifications ends (as
        # ipywidgets' set_state does around a front-end update): that is no new prompt to run
        again = getattr(obj, "_cross_validation_lock", False) and text == getattr(obj, str(self.name))
        if transition is None or again:
            super().set(obj, text)
        else:
            transition(text, lambda: Unicode.set(self, obj, text))


class ExplorerTraits(anywidget.AnyWidget):
    """`prompt`, `layer`, `head` and the view settings are set from Python or the front end; the
    read-only traits are what the kernel computed for the current prompt."""

    _esm = BUNDLE_DIR / "widget.js"
    _css = BUNDLE_DIR / "widget.css"

    # ---- the prompt and the selection -------------------------------------------------
    prompt = PromptText("").tag(sync=True)
    layer = Whole(0).tag(sync=True)
    head = Whole(0).tag(sync=True)
    metric = Unicode(REPEATED_TOKENS).tag(sync=True)
    focus_token = Whole(-1).tag(sync=True)
    """The token the views focus on (hovered or locked in the token strip), -1 for none."""
    focus_locked = Bool(False).tag(sync=True)

    # ---- what the kernel computed for the prompt --------------------------------------
    tokens = List(Unicode(), read_only=True).tag(sync=True)
    n_layers = Int(0, read_only=True).tag(sync=True)
    n_heads = Int(0, read_only=True).tag(sync=True)
    model_name = Unicode("", read_only=True).tag(sync=True)
    layer_names = List(Unicode(), read_only=True).tag(sync=True)
    """Each layer's module path (and pass, where a looped model runs a module again); empty where the
    backend names none (a layer's index is then all there is)."""
    score_table = Dict(read_only=True).tag(sync=True)
    scored_layers = Int(0, read_only=True).tag(sync=True)
    """How many layers' scores are in `score_table` so far (rows of the others are null)."""
    thumbnails = Bytes(b"", read_only=True).tag(sync=True)
    thumbnail_side = Int(0, read_only=True).tag(sync=True)
    revision = Int(0, read_only=True).tag(sync=True)
    """Bumped whenever what a head request returns changes: the front end asks again."""
    error = Unicode("").tag(sync=True)
    read_only_prompt = Bool(False, read_only=True).tag(sync=True)
    head_classes = List(List(Unicode()), read_only=True).tag(sync=True)
    summary_rows = List(Dict(), read_only=True).tag(sync=True)
    snapshot_key = Unicode(read_only=True).tag(sync=True)
    """Names this explorer's static snapshot output (widget/display.py), which the live view hides."""

    # ---- how the views show it ---------------------------------------------------------
    color_scale = Enum(COLOR_SCALES, "linear").tag(sync=True)
    shade_by = Enum(SHADE_BY, "received").tag(sync=True)
    """Token strip shading: attention each token receives from the focused one, gives to it, or
    the selected head's logit attribution."""
    weighting = Enum(WEIGHTINGS, "attention").tag(sync=True)
    """What the heatmap, thumbnails and scores weigh: attention, or `||A f(x)||` (value-weighted)."""
    compare_prompt = Unicode("").tag(sync=True)
    """A second prompt of the same token count; the views then show A(prompt) - A(compare_prompt)."""
    answer = Unicode("").tag(sync=True)
    counterfactual = Unicode("").tag(sync=True)
    """Token strings for logit attribution: answer minus counterfactual (empty: the answer's logit)."""
    attribution = List(Float(), read_only=True).tag(sync=True)
    """Per-source logit attribution of the selected head at the attributed query (empty: no answer)."""
    attribution_query = Int(-1, read_only=True).tag(sync=True)

    # ---- research: datasets, sinks, similarity -----------------------------------------
    dataset_size = Int(0, read_only=True).tag(sync=True)
    """Prompts in the last dataset run; the prompt box steps through them with `dataset_index`."""
    dataset_index = Whole(-1).tag(sync=True)
    """The dataset prompt shown (re-run on demand), -1 for a prompt of one's own."""
    score_spread = Dict(read_only=True).tag(sync=True)
    """`dataset:<metric>` -> standard deviation over prompts, `(n_layers, n_heads)` lists."""
    progress = Dict(read_only=True).tag(sync=True)
    """Long work under way: {"label", "done", "total"}; empty when idle."""
    exclude_sinks = Bool(False).tag(sync=True)
    """Heatmap: zero each head's sink positions and renormalise its rows."""
    sink_threshold = Share(SINK_THRESHOLD).tag(sync=True)
    """A key is a sink where it receives more than this share of attention on average, in (0, 1]."""
    sink_positions: List[list[list[int]]] = List(read_only=True).tag(sync=True)
    """`[layer][head]` -> sink key positions on the current prompt."""
    show_similarity = Bool(False).tag(sync=True)
    """While true, `similarity` follows the prompt (the view's button sets it)."""
    similarity = Dict(read_only=True).tag(sync=True)
    """{"order": [[layer, head], ...], "distance": clustered matrix} for the head similarity view."""
    composition_kind = Enum(("", *COMPOSITION_LABELS), "").tag(sync=True)
    """The head composition view's Q-, K- or V-composition ("q", "k", "v"); empty: the view is closed."""
    composition = Dict(read_only=True).tag(sync=True)
    """{"kind", "n_layers", "n_heads", "scores"}: float32 bytes `[writer, reader]` over heads in layer
    order (`layer * n_heads + head`), NaN where the reader is not in a later layer."""

    def prompt_transition(self, prompt: str, store: Callable[[], None]) -> None:
        """Sets the prompt; the explorer runs the model and publishes its state with it."""
        store()
