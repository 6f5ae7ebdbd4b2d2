"""Shared by the accounts tests: a real SMTP server (aiosmtpd on loopback) that keeps what
it receives, an organisation with its owner, and a dashboard client that sends forms the
way a browser does (Origin header, the page's CSRF token)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from server import db, orgs, users
from server.mail import SmtpSettings
from server.permissions import Role
from server.runtime import Runtime
from tests.conftest import free_port

BASE = "https://127.0.0.1:8443"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/dashboard/invitations/\S+")


@dataclass
class Inbox:
    """What the SMTP server was handed."""

    settings: SmtpSettings
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, timeout: float = 10.0) -> Message:
        with self.arrived:
            self.arrived.wait_for(
                lambda: any(m["To"] == to for m in self.messages), timeout=timeout
            )
            found = [m for m in self.messages if m["To"] == to]
        assert found, f"no e-mail to {to} arrived"
        return found[-1]

    def invitation_link(self, to: str) -> str:
        body = self.wait_for(to).get_payload(decode=True)
        assert isinstance(body, bytes)
        match = LINK.search(body.decode())
        assert match, body
        return match.group(0)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    port = free_port()
    box = Inbox(SmtpSettings(host="127.0.0.1", port=port, sender="loadbay@test.example"))
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass(frozen=True)
class OrgWithOwner:
    org: db.Organisation
    owner_id: str
    email: str
    password: str = PASSWORD


def org_with_owner(
    rt: Runtime, email: str = "owner@acme.example", name: str = "Acme"
) -> OrgWithOwner:
    org = orgs.create_organisation(rt, name, ["https://app.acme.example"])
    owner = users.add_user(rt, org.id, email, "Owner", PASSWORD, Role.OWNER, actor="cli")
    return OrgWithOwner(org, owner.id, email)


class Dashboard:
    """A browser's view of the dashboard: cookies kept, forms sent with Origin and the
    CSRF token of the last page read."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, follow_redirects=False, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        origin: str | None = BASE,
        csrf: bool = True,
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf and self.csrf:
            form.setdefault("csrf", self.csrf)
        headers = {"origin": origin} if origin else {}
        response = self.client.post(path, data=form, headers=headers, follow_redirects=False)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/dashboard/sign-in", {"email": email, "password": password})
        follow, hops = response, 0
        while follow.status_code == 303 and hops < 3:  # to the page it lands on (its token)
            follow, hops = self.get(follow.headers["location"]), hops + 1
        return response
