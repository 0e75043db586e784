"""One rule for label names wherever one enters: the CLI (``labels add``, ``labels import``, its
``--label``, ``train --label``) and the page.  No character of Unicode categories Cc, Cf, Zl or Zp:
each would break a line-based export or hide in a name that looks like another."""

from __future__ import annotations

import re

import pytest

from audioscan.indexer.store.store import Store
from audioscan.web.inputs import BadInput
from audioscan.web.labels import _NEW
from tests.query.helpers import cli

# One of each refused category: line and paragraph separators, a C1 control, a tab, a zero-width space.
REFUSED = {"U+2028": "a\u2028b", "U+2029": "a\u2029b", "U+0085": "a\x85b", "U+0009": "a\tb", "U+200B": "a\u200bb"}


def _stored(world) -> int:
    with Store.open(world / "store") as store:
        return len(store.labels())


def _refused(result, code: str) -> bool:
    """Refused in one sentence naming the character, with no traceback."""
    return result.exit_code == 1 and code in result.stderr and "Traceback" not in result.stderr \
        and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("code", ["U+2028", "U+200B"])  # the page's test covers every category
def test_every_cli_entry_refuses_the_same_characters(world, code):
    name = REFUSED[code]
    assert _refused(cli(world, "labels", "add", "long.mkv", "20", "30", name), code)
    rows = world / "rows.csv"
    rows.write_text(f'path,start,end,label\nlong.mkv,20,30,"{name}"\n', encoding="utf-8")
    assert "U+" in cli(world, "labels", "import", str(rows)).stderr
    header_only = world / "header.csv"
    header_only.write_text("path,start,end\n")
    assert _refused(cli(world, "labels", "import", str(header_only), "--label", name), code)
    assert _refused(cli(world, "train", "gag", "--label", name), code)
    assert _stored(world) == 0


@pytest.mark.parametrize("code", REFUSED)
def test_the_page_refuses_the_same_characters(code):
    kind, _ = _NEW["label"]
    with pytest.raises(BadInput, match=re.escape(code)):
        kind.check("label", REFUSED[code])
    assert kind.check("label", " dog/bark 日本 🔔 ") == "dog/bark 日本 🔔"
