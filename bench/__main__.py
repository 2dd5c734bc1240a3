"""`python -m bench [--quick | --smoke] [--json FILE] [--stage NAME]`: the same as `vigil bench`."""

import sys

from services.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
