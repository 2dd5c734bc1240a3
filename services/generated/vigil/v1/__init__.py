"""Generated from protos/ by `make proto`; never edit."""
