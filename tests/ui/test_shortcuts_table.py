"""The one table of shortcut actions: what the page is served, what the panel saves."""
import pytest

from app.ui.session import PageError
from app.ui.shortcuts import ACTIONS, DEFAULT_SHORTCUTS, page_table, save_keys


def test_the_page_gets_every_action_once_with_its_element_and_default(store):
    table = page_table(store)
    actions = [r for r in table if not r.get("alias")]
    assert [r["action"] for r in actions] == list(ACTIONS) == list(DEFAULT_SHORTCUTS)
    assert all(r["target"].startswith("#") and r["label"] and r["key"] == r["default"] for r in actions)
    assert {r["key"]: r["action"] for r in table if r.get("alias")} == {"Ctrl+y": "redo", "Ctrl+s": "save",
                                                                        "+": "zoom_in"}


def test_saving_keeps_only_the_changed_keys_and_reset_clears_them(store):
    table = save_keys(store, {**DEFAULT_SHORTCUTS, "tool_box": "x"})
    assert store.get_setting("shortcuts") == {"tool_box": "x"}
    assert next(r for r in table if r["action"] == "tool_box")["key"] == "x"
    save_keys(store, dict(DEFAULT_SHORTCUTS))
    assert store.get_setting("shortcuts") == {}


@pytest.mark.parametrize("keys, message", [
    ({"tool_box": "e"}, "more than one action: e"),
    ({"tool_box": "E"}, "more than one action: e"),
    ({"tool_box": " "}, "belongs to the canvas"),
    ({"tool_box": "Enter"}, "belongs to the canvas"),
    ({"launch": "x"}, "unknown actions: ['launch']"),
    ({"tool_box": ""}, "Shortcuts map actions to keys"),
])
def test_bad_keys_are_refused_and_nothing_is_saved(store, keys, message):
    save_keys(store, {"tool_pan": "k"})
    with pytest.raises(PageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        save_keys(store, keys)
    assert store.get_setting("shortcuts") == {"tool_pan": "k"}
