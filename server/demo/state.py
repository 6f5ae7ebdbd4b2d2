"""The demo's organisation, contacts template and webhook destination, created once."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from destinations.webhook import new_secret
from server import db, orgs
from server.runtime import Runtime

TEMPLATE_FILE = Path(__file__).parent / "contacts.schema.json"
TEMPLATE_ID = re.compile(r"tpl_[0-9a-f]{24}")
RECEIVED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")


@dataclass(frozen=True)
class DemoState:
    org_id: str
    publishable_key: str
    template_id: str
    destination_id: str
    webhook_secret: str
    importer_origin: str
    host_origin: str

    @property
    def host_page(self) -> str:
        return f"{self.host_origin}/demo/host"

    @property
    def receiver_page(self) -> str:
        return f"{self.importer_origin}/demo/receiver"


def host_origin_for(public_url: str) -> str:
    """The demo host page lives on another origin (localhost vs 127.0.0.1), as a client's would."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://localhost:{parts.port}"


def state_file(rt: Runtime) -> Path:
    return rt.settings.data_dir / "demo.json"


def load_state(rt: Runtime) -> DemoState | None:
    path = state_file(rt)
    if not path.exists():
        return None
    return DemoState(**json.loads(path.read_text()))


def seed(rt: Runtime) -> DemoState:
    """Create the demo organisation once; later runs reuse it (and its secret)."""
    importer_origin = rt.settings.public_url
    existing = load_state(rt)
    if existing is not None and existing.importer_origin == importer_origin:
        with rt.sessions() as session:
            if session.get(db.Organisation, existing.org_id) is not None:
                return existing
    host_origin = host_origin_for(importer_origin)
    org = orgs.create_organisation(rt, "Demo Inc.", [host_origin])
    template = orgs.create_template(rt, org, json.loads(TEMPLATE_FILE.read_text()))
    secret = new_secret()
    destination = orgs.create_destination(
        rt,
        org,
        template,
        "webhook",
        "Demo receiver",
        {"url": f"{importer_origin}/demo/webhook", "secret": secret},
    )
    state = DemoState(
        org_id=org.id,
        publishable_key=org.publishable_key,
        template_id=template.id,
        destination_id=destination.id,
        webhook_secret=secret,
        importer_origin=importer_origin,
        host_origin=host_origin,
    )
    path = state_file(rt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh, indent=2)
    return state
