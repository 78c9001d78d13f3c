"""%attn in a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from attn_widget import AttentionExplorer, magics


@pytest.fixture
def ip(ipython_shell):
    return ipython_shell


def test_attn_shows_an_explorer_for_a_named_model(ip, bridge):
    ip.user_ns["tiny"] = bridge
    explorer = ip.run_line_magic("attn", "--model tiny --layer 2 --head 1 the cat sat on the mat")
    assert isinstance(explorer, AttentionExplorer)
    assert explorer.model is bridge
    assert (explorer.layer, explorer.head) == (2, 1)
    assert explorer.prompt == "the cat sat on the mat"


def test_attn_reuses_the_last_model(ip, bridge):
    ip.user_ns["tiny"] = bridge
    ip.run_line_magic("attn", "--model tiny a first prompt")
    explorer = ip.run_line_magic("attn", "--head=3 it's John's \"quoted\" prompt")
    assert explorer.model is bridge and explorer.head == 3
    assert explorer.prompt == "it's John's \"quoted\" prompt"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--model nowhere hello", "no variable named 'nowhere'"),
        ("--layer x hello", "--layer takes a whole number"),
        ("--colour red hello", "unknown option '--colour'"),
        ("--model tiny --layer 99 hello", "layer 99 is out of range"),
    ],
)
def test_attn_reports_bad_arguments_without_a_traceback(ip, bridge, line, message):
    ip.user_ns["tiny"] = bridge
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("attn", line)


def test_parse_line_takes_the_rest_as_the_prompt():
    args = magics.parse_line("--model m --layer 3 --model=n   When Mary --layer 2 went")
    assert (args.model, args.layer, args.head) == ("n", 3, 0)
    assert args.prompt == "When Mary --layer 2 went"


def test_a_prompt_after_double_dash_may_start_with_dashes():
    args = magics.parse_line("--layer 1 -- --verbose is not an option here")
    assert (args.layer, args.prompt) == (1, "--verbose is not an option here")
    assert magics.parse_line("-- -- two dashes").prompt == "-- two dashes"
    with pytest.raises(UsageError, match="or -- before a prompt"):
        magics.parse_line("--verbose text")
