"""`python -m services.notifier`: run the notifier service."""

from services.common.bootstrap import main
from services.notifier.server import NotifierApp
from services.notifier.settings import NotifierSettings

if __name__ == "__main__":
    raise SystemExit(main("notifier", NotifierSettings.from_env, NotifierApp))
