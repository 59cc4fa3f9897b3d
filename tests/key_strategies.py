"""Hypothesis strategies shared by the tests of the issue-key modules."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["key_like_text"]

# Text dense in the characters that matter to the rule, with long runs to
# reach the 255 limits.
key_like_text = st.lists(
    st.sampled_from([*"ABZa_-019 /x", "é", "\u0663", "_A", "CVE", "PR", "A" * 200, "1" * 200]),
    max_size=40,
).map("".join)
