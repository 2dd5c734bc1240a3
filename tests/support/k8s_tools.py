"""The check tools `make k8s-check` installs (kubectl, kubernetes-validate, checkov).
Missing tools are a failure that says how to get them, never a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cli.k8s_check.tools import Tools

ROOT = Path(__file__).resolve().parents[2]


def k8s_tools() -> Tools:
    tools = Tools(Path(os.environ.get("VIGIL_K8S_TOOLS", ROOT / ".venv" / "k8s-tools" / "bin")))
    missing = tools.missing()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing in {tools.bin}: run `make k8s-check` once")
    return tools
