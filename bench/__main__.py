"""`python -m bench`: the same as `vigil bench`."""

import argparse

from bench.cli import add_arguments
from bench.run import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench", description="Vigil benchmarks.")
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
