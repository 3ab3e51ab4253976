"""Tests for making attacker-influenced text safe to print."""

import unicodedata

from s1_autotask.text import clean, clip_utf16, quoted, utf16_len


class TestClean:
    """clean leaves one bounded, printable line."""

    def test_terminal_escapes_are_removed_whole(self):
        assert clean("\x1b[31mRED\x1b[0m \x1b]0;title\x07name") == "RED name"

    def test_line_breaks_cannot_forge_a_new_line(self):
        assert clean("n/a\n== Identifiers ==\r\nSHA-256: 00FAKE") == (
            "n/a == Identifiers == SHA-256: 00FAKE"
        )

    def test_bidi_override_and_zero_width_characters_are_removed(self):
        cleaned = clean("invoice\u202egpj.exe\u200b")

        assert not any(unicodedata.category(ch) == "Cf" for ch in cleaned)

    def test_limit_counts_utf16_units_like_autotask(self):
        cleaned = clean("🔥" * 400, 255)

        assert utf16_len(cleaned) <= 255
        assert cleaned.endswith("…")

    def test_quoted_bounds_huge_values(self):
        assert len(quoted("x" * 5_000_000)) < 100


class TestUtf16:
    """Lengths as a .NET service counts them."""

    def test_astral_characters_count_twice(self):
        assert utf16_len("a🔥") == 3

    def test_clip_never_splits_a_character(self):
        assert clip_utf16("ab🔥c", 3) == "ab"
