"""One contract between kernel and browser: js/contract.gen.ts is generated from contract.py and up
to date, and js/state/types.ts's ExplorerState names exactly the synced traits."""

from __future__ import annotations

import re
from pathlib import Path

import anywidget

from attn_widget import AttentionExplorer, contract
from attn_widget.contract import CHANGE, DLA, HEAD_CLASSES
from attn_widget.contract import PROMPT_METRICS as METRICS

REPO = Path(__file__).resolve().parents[1]


def test_the_generated_typescript_module_is_up_to_date():
    assert (REPO / contract.GENERATED_PATH).read_text() == contract.typescript(), "run `make contract`"


def test_every_metric_and_head_class_has_its_label_and_colour():
    # the prompt's metrics, the model's tests, the attribution and change scores, sinks, built-in detectors
    extra = {contract.SINK_SHARE, contract.RETRIEVAL, contract.ABLATION, *contract.BUILT_IN_DETECTORS}
    assert set(contract.METRIC_LABELS) == {contract.REPEATED_TOKENS, *METRICS, DLA, CHANGE, *extra}
    assert tuple(contract.HEAD_CLASS_COLORS) == HEAD_CLASSES
    generated = contract.typescript()
    for value in (*contract.METRIC_LABELS.values(), *contract.HEAD_CLASS_COLORS.values()):
        assert f'"{value}"' in generated


def explorer_state_fields() -> set[str]:
    source = (REPO / "js" / "state" / "types.ts").read_text()
    body = re.search(r"export interface ExplorerState \{(.*?)\n\}", source, re.S)
    assert body, "ExplorerState not found in js/state/types.ts"
    return set(re.findall(r"^  (\w+)\??:", body.group(1), re.M))


PAGE_ONLY = {"standalone"}
"""Set by the standalone page's offline model (attn_widget.export.standalone), never by the kernel."""


def test_explorer_state_lists_exactly_the_synced_traits():
    own = {name for name, trait in AttentionExplorer.class_traits(sync=True).items() if not name.startswith("_")}
    inherited = set(anywidget.AnyWidget.class_traits(sync=True))  # anywidget's and ipywidgets' own
    assert explorer_state_fields() - PAGE_ONLY == own - inherited


def test_a_head_is_written_one_way():
    assert contract.head_label(1, 2) == "L1H2" and contract.head_label(11, 0) == "L11H0"
    assert '"L{layer}H{head}"' in contract.typescript()  # headLabel() in js/views/labels.ts reads it


def test_no_module_spells_a_head_its_own_way():
    # "Layer 0, head 3", "layer 1 head 2", "L1 H2" or a hand-made f"L{l}H{h}": every head label goes
    # through contract.head_label (Python) or headLabel (TypeScript)
    spelled = re.compile(
        r"[Ll]ayer \{[^}]+\},? head|L\{[^}]+\} ?H\{|L\$\{[^}]+\} ?H\$\{|layer \$\{[^}]+\},? head", re.IGNORECASE
    )
    sources = [*(REPO / "src" / "attn_widget").rglob("*.py"), *(REPO / "js").rglob("*.ts")]
    sources = [p for p in sources if p.name not in ("contract.py", "contract.gen.ts")]  # where it is defined
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in sources for m in spelled.finditer(p.read_text())]
    assert len(sources) > 50 and not found
