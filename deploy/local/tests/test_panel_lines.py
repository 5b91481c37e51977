"""What `make demo` prints last: the control panel's address and tokens, or why not."""

from __future__ import annotations

from nordflow_local import panel


def test_without_a_running_panel_it_says_so() -> None:
    assert panel.sign_in_lines({}, ["demo"]) == [
        "The control panel is not running (see `make status`)."
    ]


def test_with_a_panel_it_prints_the_address_and_the_tokens(monkeypatch) -> None:
    made: list[tuple[str, ...]] = []

    def create(env: dict[str, str], *args: str) -> str:
        made.append(args)
        return f"nfcp_{len(made)}"

    monkeypatch.setattr(panel, "create_token", create)
    lines = panel.sign_in_lines({"CONTROL_PANEL_URL": "http://127.0.0.1:4000"}, ["demo", "x"])
    assert lines[0].startswith("Control panel: http://127.0.0.1:4000/")
    assert "nfcp_1" in lines[1]
    assert "operator" in lines[1]
    assert "tenant demo:" in lines[2]
    assert lines[2].endswith("nfcp_2")
    assert made == [("--operator", "--name", "demo-operator"), ("demo", "--name", "demo")]


def test_a_failed_token_is_named(monkeypatch) -> None:
    monkeypatch.setattr(panel, "create_token", lambda env, *args: None)
    lines = panel.sign_in_lines({"CONTROL_PANEL_URL": "http://p"}, [])
    assert "creating a token failed" in lines[1]
