"""How good the detector is, measured: a labelled synthetic corpus, window scoring, a
plain z-score baseline, and the runner behind `make eval`."""
