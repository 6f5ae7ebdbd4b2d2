"""The demo organisation's owner: created on the first start; each start gives it a new
random password, printed once (as the demo's secret key is)."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from server import users
from server.models.accounts import User
from server.permissions import Role
from server.runtime import Runtime

EMAIL = "owner@demo.example"


def demo_owner(rt: Runtime, org_id: str) -> tuple[str, str]:
    password = secrets.token_urlsafe(15)  # 20 characters, 120 random bits
    with rt.sessions() as session:
        user_id = session.scalar(select(User.id).where(User.email == EMAIL))
    if user_id is None:
        users.add_user(rt, org_id, EMAIL, "Demo owner", password, Role.OWNER, actor="demo")
    else:
        users.set_password(rt, user_id, password, actor="demo")
    return EMAIL, password
