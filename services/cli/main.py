"""The `vigil` command.

vigil up [--devices N] [--no-simulator]   the whole suite on this machine
vigil serve SERVICE                       one service (what Kubernetes runs)
vigil simulate --target HOST:PORT ...     simulated devices against any ingest
vigil token device ID | dashboard         print a credential
vigil replay --input IN.csv --output OUT.csv   back-test the detector on a CSV
vigil rules check FILE                    validate a rules file
vigil bench [--quick|--smoke] [--json FILE] measure every stage against its baseline
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from services.cli import local_secrets, registry
from services.common import auth, logs
from services.common.errors import ConfigError

DEFAULT_STATE = Path(".vigil")
#: The stages of `vigil bench`, in the order it runs them (bench/run.py).
BENCH_STAGES = (
    "detector",
    "queue",
    "cache",
    "ratelimit",
    "memory",
    "ingest",
    "dashboard",
    "fanout",
)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be from 0 to 100000")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vigil", description="Real-time anomaly detection.")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start Redis, the four services and simulated devices")
    up.add_argument("--devices", type=_count, default=10, help="simulated devices (default 10)")
    up.add_argument(
        "--rate",
        type=_positive_float,
        default=1.0,
        help="batches per second per simulated device (default 1)",
    )
    up.add_argument("--no-simulator", action="store_true", help="start no simulated devices")
    up.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE,
        help="where Redis data, secrets and stack.json live (default .vigil)",
    )
    up.add_argument(
        "--free-ports", action="store_true", help="pick free loopback ports instead of the defaults"
    )

    serve = sub.add_parser("serve", help="run one service until SIGTERM")
    serve.add_argument("service", choices=registry.SERVICES)

    sim = sub.add_parser("simulate", help="stream from simulated devices")
    sim.add_argument("--target", required=True, help="ingest address, HOST:PORT")
    sim.add_argument("--devices", type=_count, default=10)
    sim.add_argument(
        "--rate", type=_positive_float, default=1.0, help="batches per second per device"
    )
    sim.add_argument("--prefix", default="sim", help="device id prefix (default sim)")
    sim.add_argument("--duration", type=_positive_float, default=None, help="stop after seconds")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)

    token = sub.add_parser("token", help="print a device or dashboard token")
    kinds = token.add_subparsers(dest="kind", required=True)
    dev = kinds.add_parser("device", help="token of one device")
    dev.add_argument("device_id")
    dev.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    dash = kinds.add_parser("dashboard", help="token for dashboards and the API")
    dash.add_argument("--name", default="dashboard", help="viewer name (default dashboard)")
    dash.add_argument("--ttl", type=int, default=0, help="seconds until it expires (0 = never)")
    dash.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)

    replay = sub.add_parser(
        "replay", help="score a CSV (timestamp,value) with the detector, row by row"
    )
    replay.add_argument("--input", type=Path, required=True, help="CSV with timestamp,value")
    replay.add_argument(
        "--output", type=Path, required=True, help="CSV to write: timestamp,anomaly_score"
    )
    replay.add_argument("--rules", type=Path, default=None, help="rules file (default: shipped)")
    replay.add_argument(
        "--sensor", default="value", help="sensor name the rules know the series by (value)"
    )

    rules = sub.add_parser("rules", help="work with detection rules files")
    rule_ops = rules.add_subparsers(dest="op", required=True)
    check = rule_ops.add_parser("check", help="validate a rules file; exit 2 naming the line")
    check.add_argument("file", type=Path)

    bench = sub.add_parser("bench", help="measure every stage against its baseline")
    sizes = bench.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick", action="store_true", help="smaller runs, under 2 minutes (CI-sized)"
    )
    sizes.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest runs that exercise every stage (checks it works; figures mean little)",
    )
    bench.add_argument("--json", type=Path, default=None, help="also write the report here")
    bench.add_argument(
        "--stage",
        action="append",
        choices=BENCH_STAGES,
        default=None,
        help="run only this stage (repeatable; default: all, in this order)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"vigil: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per command
    if args.command == "serve":
        from services.common.bootstrap import main as serve_main

        settings_factory, app_factory = registry.load(args.service)
        return serve_main(args.service, settings_factory, app_factory)
    if args.command == "token":
        secret = local_secrets.resolve(args.kind, os.environ, args.state_dir)
        if args.kind == "device":
            print(auth.device_token(secret, args.device_id))
        else:
            print(auth.dashboard_token(secret, args.name, args.ttl))
        return 0
    if args.command == "simulate":
        from services.simulator.fleet import run_fleet

        logs.configure("simulator")
        secret = local_secrets.resolve("device", os.environ, args.state_dir)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run_fleet(
                    args.target,
                    secret,
                    args.devices,
                    args.rate,
                    prefix=args.prefix,
                    seed=args.seed,
                    duration_s=args.duration,
                )
            )
        return 0
    if args.command == "replay":
        from services.detector.replay import replay
        from services.detector.rules.parse import load

        count = replay(args.input, args.output, load(args.rules), sensor=args.sensor)
        print(f"{count} rows scored -> {args.output}", file=sys.stderr)
        return 0
    if args.command == "rules":
        from services.detector.rules.parse import load

        rules = load(args.file)
        print(f"{args.file}: ok ({len(rules.sensors)} sensors, {len(rules.overrides)} overrides)")
        return 0
    if args.command == "bench":
        try:
            from bench.run import main as bench_main
        except ImportError:  # an image carries the services, not the benchmarks
            print(
                "vigil: bench needs Vigil's source tree (run `make bench` there)", file=sys.stderr
            )
            return 2
        return bench_main(args)
    if args.command == "up":
        from services.cli.stack import Stack

        logs.configure("vigil", "text", "INFO")
        logging.getLogger().setLevel(logging.INFO)
        stack = Stack(
            state_dir=args.state_dir,
            devices=0 if args.no_simulator else args.devices,
            rate=args.rate,
            free_ports=args.free_ports,
        )
        return asyncio.run(stack.run())
    raise AssertionError(args.command)
