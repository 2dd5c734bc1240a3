"""`python -m services.ingest`: run the ingest service."""

from services.common.bootstrap import main
from services.ingest.server import IngestApp
from services.ingest.settings import IngestSettings

if __name__ == "__main__":
    raise SystemExit(main("ingest", IngestSettings.from_env, IngestApp))
