"""`python -m services.detector`: run the detector service."""

from services.common.bootstrap import main
from services.detector.server import DetectorApp
from services.detector.settings import DetectorSettings

if __name__ == "__main__":
    raise SystemExit(main("detector", DetectorSettings.from_env, DetectorApp))
