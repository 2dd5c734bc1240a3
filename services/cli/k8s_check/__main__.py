import sys

from services.cli.k8s_check.cli import main

sys.exit(main())
