"""User-supplied strings (file names, --text, model paths) are shown, never obeyed by the terminal.

A file name can hold ESC (colour and cursor codes), OSC sequences (window title, hyperlinks), BEL,
newlines (a fake second error line), RTL overrides (text that reads backwards) and bytes that are not
UTF-8. None of it may reach stdout or stderr raw, in tables, JSON, progress or error lines.
"""

from __future__ import annotations

import os
import shutil

import pytest

from qwen3vl_inspect.cli import main
from qwen3vl_inspect.formatting import safe_text
from qwen3vl_inspect.session import demo_image_path

NASTY = "ev\x1b]0;PWNED\x07\x1b[31mil\u202egnp\nerror: fake\r\u200bx"
RAW = ("\x1b", "\x07", "\u202e", "\u200b", "\r", "\udcff")


def assert_clean(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal raw"


def test_safe_text_escapes_what_a_terminal_obeys():
    assert safe_text("photo (1).png") == "photo (1).png"
    assert safe_text("日本語 café.png") == "日本語 café.png"  # other scripts are printable: unchanged
    assert safe_text("a\x1b[31mb") == "a\\x1b[31mb"
    assert safe_text("a\x1b]8;;http://x\x1b\\b\x07") == "a\\x1b]8;;http://x\\x1b\\b\\x07"
    assert safe_text("two\nlines\r\t") == "two\\nlines\\r\\t"
    assert safe_text("abc\u202egnp.exe") == "abc\\u202egnp.exe"
    assert safe_text("zero\u200bwidth\u2028sep") == "zero\\u200bwidth\\u2028sep"
    assert safe_text("\x9b31m") == "\\x9b31m"  # C1 control sequence introducer
    assert safe_text(os.fsdecode(b"bad\xffname")) == "bad\\udcffname"  # undecodable bytes in a file name
    assert safe_text(3) == "3"


@pytest.fixture
def nasty_image(tmp_path):
    path = tmp_path / f"{NASTY}.png"
    shutil.copy(demo_image_path(), path)
    return path


@pytest.mark.parametrize("command", [["trace"], ["trace", "--json"], ["stats"], ["stats", "--json"], ["fusion"],
                                     ["fusion", "--json"]], ids=" ".join)
def test_file_names_reach_stdout_escaped(command, nasty_image, capsys):
    assert main([command[0], str(nasty_image), "--model", "tiny", *command[1:]]) == 0
    captured = capsys.readouterr()
    assert_clean(captured.out)
    assert_clean(captured.err)
    if "--json" not in command:
        assert "ev\\x1b]0;PWNED\\x07" in captured.out  # shown, so the user can tell which file it was


def test_attention_output_name_escaped(nasty_image, tmp_path, capsys):
    output = tmp_path / f"map{NASTY}.png"
    assert main(["attention", str(nasty_image), "--model", "tiny", "--layer", "0", "-o", str(output)]) == 0
    assert output.is_file()
    captured = capsys.readouterr()
    assert_clean(captured.out)
    assert_clean(captured.err)  # also matplotlib's "missing glyph" warnings: the PNG title is escaped too
    assert "wrote " in captured.out and "\\n" in captured.out


@pytest.mark.parametrize("argv", [
    ["trace", f"/tmp/missing{NASTY}.png", "--model", "tiny"],
    ["info", "--model", f"/tmp/no-model{NASTY}"],
    ["trace", "--model", "tiny", "--device", f"cu{NASTY}"],
    ["attention", "--model", "tiny", "--layer", "0", "--query", NASTY, "-o", "/tmp/x.png"],
    ["attention", "--model", "tiny", "--layer", "0", "-o", f"/tmp/no-folder{NASTY}/x.png"],
], ids=["image", "model", "device", "query", "output"])
def test_error_lines_escape_what_the_user_typed(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert_clean(captured.err)
    assert len(captured.err.strip().splitlines()) == 1  # the newline in the name did not forge a second line
    assert "PWNED" in captured.err


def test_prompt_text_escaped_in_the_fusion_view(capsys):
    assert main(["fusion", "--model", "tiny", "--text", f"Describe {NASTY}"]) == 0
    captured = capsys.readouterr()
    assert_clean(captured.out)
    assert "\\x1b" in captured.out and "\\x07" in captured.out  # each token escaped where it stands
