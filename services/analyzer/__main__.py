"""`python -m services.analyzer`: run the analyzer service."""

from services.analyzer.server import AnalyzerApp
from services.analyzer.settings import AnalyzerSettings
from services.common.bootstrap import main

if __name__ == "__main__":
    raise SystemExit(main("analyzer", AnalyzerSettings.from_env, AnalyzerApp))
