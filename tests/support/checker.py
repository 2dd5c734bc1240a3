"""The chaos checker: what devices sent and got acknowledged, held against what reached
Redis, the analyzer and a subscribed dashboard.

- readings: every reading of an acknowledged batch is in its device's history exactly
  once (ingest runs with history resolution 0, so history keeps every reading), and
  every acknowledged seq carries its (device, seq) mark;
- jobs: every alert that asked for a diagnosis (opened, escalated) has an insight for its
  job, and at the end no job is waiting, leased or dead-lettered;
- dashboard: every alert event in the stream reached the dashboard, none twice;
- alerts: none is resolved without having been opened first (a lost opening).

Duplicates are counted by id: a reading by (device, sensor, time), a dashboard event by
stream id, an alert by (alert id, state, severity), an insight by (job id, its answer).
`converge` waits until the system is quiet (no new event for a while, queue empty, every
alert's job answered, the dashboard at the newest event, every device that left has had
its offline alert), bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from services.common import keys
from services.common.events import SEVERITY_BY_NAME, newest_id
from services.common.queue import alert_job_id
from tests.support.dashboard import Dashboard
from tests.support.fleet import Fleet

QUIET_S = 2.5
#: How long after a device's goodbye `converge` waits for the offline alert the detector
#: raises once the device has been silent past its learned limit (5x its cadence,
#: stretched for irregular arrivals: a run full of faults teaches limits of several
#: seconds, longer than QUIET_S). Without this wait the checker could call the system
#: quiet in the gap and count the jobs of those alerts, still to come, as lost.
SILENCE_WAIT_S = 60.0
#: Every report published in this run, in order (the chaos conftest prints them last).
PUBLISHED: list[str] = []


@dataclass
class Report:
    name: str
    devices: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    batches_sent: int = 0
    batches_acked: int = 0
    readings_acked: int = 0
    batches_in_redis: int = 0
    readings_in_redis: int = 0
    readings_lost: int = 0
    readings_duplicated: int = 0
    alerts: int = 0
    alerts_on_dashboard: int = 0
    alerts_missing_on_dashboard: int = 0
    dashboard_duplicated: int = 0
    alerts_repeated: int = 0  # same (alert id, state, severity) again: a re-judged batch
    alerts_unopened: int = 0  # resolved, but never opened before: the opening was lost
    jobs: int = 0
    jobs_answered: int = 0
    jobs_lost: int = 0
    jobs_pending: int = 0
    dead_letters: int = 0
    insights_duplicated: int = 0
    reconnects: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # device streams ended, by status
    said: dict[str, set[str]] = field(default_factory=dict)  # each status's details
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def duplicated(self) -> int:
        return self.readings_duplicated + self.dashboard_duplicated + self.insights_duplicated

    def losses(self) -> dict[str, Any]:
        """Every way the run lost, doubled or left something undone, by name; {} when
        it lost nothing (what every fault run must show)."""
        found: dict[str, Any] = {
            "problems": self.problems,
            "batches sent, not acked": self.batches_sent - self.batches_acked,
            "batches acked, not in Redis": self.batches_acked - self.batches_in_redis,
            "readings acked, not in Redis": self.readings_acked - self.readings_in_redis,
            "readings lost": self.readings_lost,
            "readings duplicated": self.readings_duplicated,
            "alerts missing on the dashboard": self.alerts_missing_on_dashboard,
            "alerts resolved, never opened": self.alerts_unopened,
            "dashboard events duplicated": self.dashboard_duplicated,
            "jobs lost": self.jobs_lost,
            "jobs pending": self.jobs_pending,
            "dead letters": self.dead_letters,
            "insights duplicated": self.insights_duplicated,
        }
        return {what: n for what, n in found.items() if n}

    def line(self) -> str:
        kills = ", ".join(f"{k} {v}" for k, v in self.kills.items() if v) or "none"
        ended = ", ".join(f"{k} {v}" for k, v in sorted(self.ended.items())) or "none"
        return (
            f"[{self.name}] kills: {kills} | devices {self.devices}: "
            f"sent {self.batches_sent} batches, acked {self.batches_acked} "
            f"({self.readings_acked} readings), in Redis {self.batches_in_redis} batches "
            f"({self.readings_in_redis} readings), lost {self.readings_lost}, "
            f"duplicated {self.readings_duplicated} | alerts {self.alerts}, on dashboard "
            f"{self.alerts_on_dashboard}, missing {self.alerts_missing_on_dashboard}, "
            f"duplicated {self.dashboard_duplicated}, repeated by re-judging "
            f"{self.alerts_repeated}, resolved unopened {self.alerts_unopened} | "
            f"jobs {self.jobs}, answered {self.jobs_answered}, "
            f"lost {self.jobs_lost}, pending {self.jobs_pending}, dead {self.dead_letters}, "
            f"insights duplicated {self.insights_duplicated} | device reconnects "
            f"{self.reconnects} ({ended}), {self.seconds:.0f} s"
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=sorted)  # sets as lists

    def publish(self, workdir: Path) -> None:
        """Print the report (`make chaos` shows it) and keep it beside the run's logs."""
        print("\n" + self.line(), flush=True)
        PUBLISHED.append(self.line())
        (workdir / "report.json").write_text(self.as_json())


def silence_due(
    events: list[tuple[str, dict[str, str]]], prefix: str, now_ms: int, wait_ms: int
) -> set[str]:
    """Devices (ids starting `prefix-`) that said goodbye less than `wait_ms` before
    `now_ms` (stream ids are Redis ms) and have no offline episode open (a device-level
    alert, sensor "", opened and not resolved): their offline alert is still to come."""
    left: dict[str, int] = {}  # device -> ms of its goodbye
    open_offline: set[str] = set()  # devices with an offline episode open
    for entry_id, fields in events:
        device = fields.get("device", "")
        if not device.startswith(prefix + "-"):
            continue
        at = int(entry_id.split("-", 1)[0])
        if fields["kind"] == "device":
            status = json.loads(fields["data"]).get("status")
            if status == "offline":
                left[device] = at
            elif status == "online":
                left.pop(device, None)
        elif fields["kind"] == "alert":
            event = json.loads(fields["data"])
            if event.get("sensor") != "":
                continue
            if event.get("state") in ("opened", "escalated"):
                open_offline.add(device)
            elif event.get("state") == "resolved":
                open_offline.discard(device)
    return {d for d, at in left.items() if d not in open_offline and now_ms - at < wait_ms}


def _alert_jobs(alert: dict[str, Any]) -> str | None:
    """The id of the job an alert event asked for: its episode and severity *level*
    (the event names the severity; the job id numbers it)."""
    if alert.get("state") not in ("opened", "escalated"):
        return None
    return alert_job_id(alert["episode_id"], SEVERITY_BY_NAME[alert["severity"]])


class Checker:
    def __init__(self, redis: Redis, fleet: Fleet, dashboard: Dashboard | None) -> None:
        self.redis = redis
        self.fleet = fleet
        self.dashboard = dashboard

    async def _events(self) -> list[tuple[str, dict[str, str]]]:
        return cast(list[tuple[str, dict[str, str]]], await self.redis.xrange(keys.EVENTS))

    def _ours(self, fields: dict[str, str]) -> bool:
        return fields.get("device", "").startswith(self.fleet.prefix + "-")

    async def _unanswered(self) -> set[str]:
        jobs: set[str] = set()
        answered: set[str] = set()
        for _, fields in await self._events():
            if not self._ours(fields):
                continue
            event = json.loads(fields["data"])
            if fields["kind"] == "alert" and (job := _alert_jobs(event)):
                jobs.add(job)
            elif fields["kind"] == "insight":
                answered.add(str(event.get("job_id")))
        return jobs - answered

    async def converge(self, timeout_s: float = 90.0) -> None:
        """Until nothing moves: no new event for QUIET_S, no job waiting or leased,
        every alert's job answered, the dashboard at the newest event."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            newest = await newest_id(self.redis)
            if newest != last:
                last, since = newest, time.monotonic()
            busy = await self.redis.zcard(keys.QUEUE) + await self.redis.zcard(keys.QUEUE_LEASES)
            if (
                newest is not None
                and not busy
                and time.monotonic() - since >= QUIET_S
                and not await self._unanswered()
                and not await self._silence_due()
            ):
                if self.dashboard is not None:
                    await self.dashboard.wait_for(newest, max(1.0, deadline - time.monotonic()))
                if await newest_id(self.redis) == newest:
                    return
            await asyncio.sleep(0.25)  # settling poll: "nothing happens" has no event

    async def _silence_due(self) -> set[str]:
        seconds, micros = await self.redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return silence_due(
            await self._events(), self.fleet.prefix, now_ms, int(SILENCE_WAIT_S * 1000)
        )

    async def report(self, name: str, kills: dict[str, int], seconds: float) -> Report:
        report = Report(name, len(self.fleet.ids), dict(kills), seconds=seconds)
        report.batches_sent = self.fleet.sent_batches()
        report.batches_acked = self.fleet.acked_batches()
        report.reconnects = self.fleet.reconnects()
        report.ended = self.fleet.ended()
        report.said = self.fleet.said()
        for device_id, ledger in self.fleet.ledger.items():
            await self._check_device(report, device_id, ledger.sent, ledger.acked)
            if ledger.refused:
                report.problems.append(f"{device_id} refused: {ledger.refused}")
        await self._check_events(report)
        report.jobs_pending = await self.redis.zcard(keys.QUEUE) + await self.redis.zcard(
            keys.QUEUE_LEASES
        )
        report.dead_letters = await self.redis.llen(keys.QUEUE_DEAD)
        return report

    async def _check_device(
        self, report: Report, device_id: str, sent: dict[int, list[Any]], acked: set[int]
    ) -> None:
        marks = {int(m) for m in await self.redis.zrange(keys.seen(device_id), 0, -1)}
        report.batches_in_redis += len(acked & marks)
        rows: Counter[tuple[str, float]] = Counter()
        for _, fields in await self.redis.xrange(keys.history(device_id)):
            for sensor, at, _value in json.loads(fields["readings"]):
                rows[(sensor, round(at, 3))] += 1
        report.readings_duplicated += sum(n - 1 for n in rows.values() if n > 1)
        for seq in acked:
            for row in sent[seq]:
                report.readings_acked += 1
                if row in rows:
                    report.readings_in_redis += 1
                else:
                    report.readings_lost += 1

    async def _check_events(self, report: Report) -> None:
        alerts: dict[str, dict[str, Any]] = {}
        jobs: set[str] = set()
        insights: Counter[tuple[str, str]] = Counter()
        answered: set[str] = set()
        for entry_id, fields in await self._events():
            if not self._ours(fields):
                continue
            event = json.loads(fields["data"])
            if fields["kind"] == "alert":
                alerts[entry_id] = event
                if job := _alert_jobs(event):
                    jobs.add(job)
            elif fields["kind"] == "insight":
                job_id = str(event.get("job_id"))
                answered.add(job_id)
                answer = json.dumps([event.get(k) for k in ("source", "diagnosis", "note")])
                insights[(job_id, answer)] += 1
        report.alerts = len(alerts)
        same = Counter((a["alert_id"], a["state"], a["severity"]) for a in alerts.values())
        report.alerts_repeated = sum(n - 1 for n in same.values() if n > 1)
        opened: set[str] = set()
        for alert in alerts.values():  # in stream order
            if alert["state"] == "opened":
                opened.add(alert["alert_id"])
            elif alert["state"] == "resolved" and alert["alert_id"] not in opened:
                report.alerts_unopened += 1
        report.jobs = len(jobs)
        report.jobs_answered = len(jobs & answered)
        report.jobs_lost = len(jobs - answered)
        report.insights_duplicated = sum(n - 1 for n in insights.values() if n > 1)
        if self.dashboard is not None:
            seen = Counter(entry_id for entry_id, _ in self.dashboard.received)
            report.dashboard_duplicated = sum(n - 1 for n in seen.values() if n > 1)
            report.alerts_on_dashboard = len(alerts.keys() & seen.keys())
            report.alerts_missing_on_dashboard = len(alerts.keys() - seen.keys())
