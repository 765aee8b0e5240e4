"""docs/configuration.md lists every LEB_* variable the settings read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_setting_is_documented() -> None:
    settings_source = (ROOT / "leb" / "settings.py").read_text()
    names = set(re.findall(r'env(?:_bool|_list)?\(\s*"([A-Z_]+)"', settings_source))
    documented = set(
        re.findall(r"`LEB_([A-Z_]+)`", (ROOT / "docs" / "configuration.md").read_text())
    )
    assert names, "no settings found"
    assert names <= documented, sorted(names - documented)
