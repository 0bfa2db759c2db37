"""The soak writes its own section of docs/reliability.md and keeps the others'."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from soak import HEADING, replace_section  # noqa: E402


def test_a_new_doc_gets_a_title_and_the_section():
    out = replace_section("", HEADING, "figures\n")
    assert out == "# Reliability\n\n## Crash cycles\n\nfigures\n"


def test_the_section_is_replaced_and_the_others_kept():
    doc = "# Reliability\n\nintro\n\n## Crash cycles\n\nold\nfigures\n\n## Churn\n\nchurn figures\n"
    out = replace_section(doc, HEADING, "new figures\n")
    assert out == "# Reliability\n\nintro\n\n## Crash cycles\n\nnew figures\n\n## Churn\n\nchurn figures\n"
    assert replace_section(out, HEADING, "new figures\n") == out


def test_a_missing_section_is_appended_after_the_others():
    doc = "# Reliability\n\n## Churn\n\nchurn figures\n"
    out = replace_section(doc, HEADING, "figures")
    assert out == doc + "\n## Crash cycles\n\nfigures\n"
