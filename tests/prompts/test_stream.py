"""The stream format: role bytes, cleaning, parsing, templates."""
import pytest

import prompts
from prompts import stream


def test_turn_round_trip_through_split():
    text = stream.user("remember that the door code is 4417") + stream.bot("ok.") + stream.replay("the door code is 4417")
    assert stream.split_turns(text) == [
        ("user", "remember that the door code is 4417"),
        ("bot", "ok."),
        ("replay", "the door code is 4417"),
    ]


def test_clean_removes_role_bytes_and_newlines():
    dirty = "a\nb" + stream.BOT + "c\x00d"
    t = stream.user(dirty)
    # exactly one role byte and one END, both at the edges
    assert t[0] == stream.USER and t[-1] == stream.END
    assert not any(ch in stream.ROLES or ch == stream.END for ch in t[1:-1])
    assert stream.split_turns(t) == [("user", "a b c d")]


def test_unicode_survives():
    t = stream.user("ma sœur vit à Porto 🚀")
    assert stream.split_turns(t) == [("user", "ma sœur vit à Porto 🚀")]


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        stream.turn("narrator", "hello")


def test_templates_render_and_missing_values_raise():
    assert "impulse_memory_pressure" in prompts.names()
    line = prompts.render("impulse_memory_pressure", value="0.93", high="0.85")
    assert line == "memory pressure: occupancy 0.93 above 0.85"
    with pytest.raises(KeyError):
        prompts.render("impulse_memory_pressure", value="0.93")
    with pytest.raises(KeyError, match="no prompt template"):
        prompts.get("does_not_exist")
