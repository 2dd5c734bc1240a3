"""Hot reload of the rules file: poll it, and swap the rules only when the new file is valid.

The file's (mtime, size, inode) is checked every `VIGIL_RULES_POLL_SECONDS`; polling
works the same on a laptop and on a Kubernetes ConfigMap (which is swapped by a
symlink). A changed file is parsed in full first: if it is invalid, the error (with its
line) is logged and counted and the old rules stay in force; if it is valid, the
detector uses it from its next reading. Swapping happens between two Detect calls on
the one event loop, so no reading is dropped or judged half by each.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from services.common.errors import ConfigError
from services.detector import metrics
from services.detector.engine import Detector
from services.detector.rules.parse import load

log = logging.getLogger(__name__)
Signature = tuple[int, int, int] | None


def signature(path: Path) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class RulesWatcher:
    def __init__(self, detector: Detector, path: Path, poll_s: float) -> None:
        self.detector = detector
        self.path = path
        self.poll_s = poll_s
        self.seen: Signature = signature(path)
        self.changed = asyncio.Event()  # set after every reload attempt (for tests, tools)
        self.last_error: str | None = None

    def check(self) -> bool | None:
        """Reload if the file changed: True applied, False rejected, None unchanged."""
        current = signature(self.path)
        if current == self.seen:
            return None
        self.seen = current
        try:
            rules = load(self.path)
        except ConfigError as exc:
            self.last_error = exc.message
            metrics.RULE_RELOADS.labels("rejected").inc()
            log.error("rules rejected; the previous rules stay", extra={"error": exc.message})
            self.changed.set()
            return False
        self.last_error = None
        self.detector.set_rules(rules)
        metrics.RULE_RELOADS.labels("applied").inc()
        log.info("rules reloaded", extra={"path": str(self.path)})
        self.changed.set()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)  # polling is the design: files have no push
            self.check()
