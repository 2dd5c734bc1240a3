"""The local stack's secrets: created once under the state folder, then reused.

Environment variables win; the file is only for `vigil up` on a workstation. The file
is written with mode 0600 and its values are never printed.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from services.common.errors import ConfigError

FILE = "secrets.json"
NAMES = {"device": "VIGIL_DEVICE_SECRET", "dashboard": "VIGIL_DASHBOARD_SECRET"}


def load_or_create(state_dir: Path) -> dict[str, str]:
    """The hex keys {'device': ..., 'dashboard': ...}, created on first use."""
    path = state_dir / FILE
    if path.exists():
        data = json.loads(path.read_text())
        if all(isinstance(data.get(k), str) for k in NAMES):
            return {k: data[k] for k in NAMES}
    state_dir.mkdir(parents=True, exist_ok=True)
    data = {k: secrets.token_hex(32) for k in NAMES}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    return data


def resolve(kind: str, environ: Mapping[str, str], state_dir: Path) -> str:
    """The secret of `kind` from its variable, else from a local stack's state folder."""
    name = NAMES[kind]
    value = environ.get(name, "").strip()
    if value:
        return value
    path = state_dir / FILE
    if path.exists():
        return load_or_create(state_dir)[kind]
    raise ConfigError(f"{name} is not set and there is no local stack secret in {path}")
