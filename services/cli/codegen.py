"""Generate Python code and type stubs from `protos/` (what `make proto` runs).

The generated package `vigil.v1` mirrors the proto paths, so `vigil/v1/ingest.proto`
becomes `vigil.v1.ingest_pb2`. With `--check` nothing is written: the code is generated
into a scratch folder and compared with what is committed. Never edit the output.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
PACKAGE_DOC = '"""Generated from protos/ by `make proto`; never edit."""\n'


def generate(out: Path) -> None:
    """Run protoc (from grpcio-tools) with the mypy-protobuf plugins into `out`."""
    import grpc_tools
    from grpc_tools import protoc

    bindir = Path(sys.executable).parent
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for package in {out / Path(s).parent for s in sources} | {out / "vigil"}:
        (package / "__init__.py").write_text(PACKAGE_DOC)
        (package / "py.typed").write_text("")


def differences(left: Path, right: Path) -> list[str]:
    """Relative paths whose content differs or that exist on one side only."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=["__pycache__"]), "")
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder that holds the vigil package")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    out: Path = args.out
    if not args.check:
        shutil.rmtree(out / "vigil", ignore_errors=True)
        generate(out)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        generate(Path(scratch))
        stale = (
            differences(Path(scratch) / "vigil", out / "vigil")
            if (out / "vigil").is_dir()
            else ["vigil/"]
        )
    if stale:
        print("generated code is stale; run `make proto`:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated code is current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
