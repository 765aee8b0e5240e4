"""Every email and SMS leaves through the notification outbox: outside
leb.notifications (which delivers) and leb.sms (the gateways), no code sends
mail or texts itself."""

from __future__ import annotations

import ast
from pathlib import Path

LEB = Path(__file__).resolve().parents[2]
SENDERS = {
    "send_mail",
    "send_mass_mail",
    "mail_admins",
    "mail_managers",
    "EmailMessage",
    "EmailMultiAlternatives",
    "send_sms",
}
ALLOWED = {LEB / "notifications", LEB / "sms"}


def _is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def direct_sends(root: Path = LEB) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if _is_test(path) or any(path.is_relative_to(folder) for folder in ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.alias):
                name = node.name.rsplit(".", 1)[-1]
            else:
                continue
            if name in SENDERS:
                found.append(
                    f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', '?')} {name}"
                )
    return found


def test_nothing_outside_the_outbox_sends_mail_or_texts() -> None:
    assert direct_sends() == []


def test_the_check_finds_a_direct_send(tmp_path: Path) -> None:
    # given a module that mails and texts by itself
    app = tmp_path / "leb" / "shop"
    app.mkdir(parents=True)
    (app / "actions.py").write_text(
        "from django.core.mail import send_mail\n"
        "import leb.sms\n"
        "def go():\n"
        "    send_mail('s', 'b', None, ['a@example.com'])\n"
        "    leb.sms.send_sms('+85294000001', 'hi')\n",
        encoding="utf-8",
    )
    (app / "tests").mkdir()
    (app / "tests" / "test_x.py").write_text("from django.core.mail import send_mail\n")

    # then both are found, and the test file is not
    found = direct_sends(tmp_path / "leb")
    assert [line.split()[-1] for line in found] == ["send_mail", "send_mail", "send_sms"]
    assert all("tests" not in line for line in found)
