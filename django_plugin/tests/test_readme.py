"""The README's settings table lists exactly the keys of djftpd.conf.DEFAULTS."""

from __future__ import annotations

import re
from pathlib import Path

from djftpd.conf import DEFAULTS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_settings_table_matches_defaults():
    section = README.read_text().split("### Settings reference", 1)[1].split("\n### ", 1)[0]
    keys = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)

    assert sorted(keys) == sorted(DEFAULTS)
    assert len(keys) == len(set(keys))
