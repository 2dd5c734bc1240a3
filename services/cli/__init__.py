"""The `vigil` command line: run the local stack, one service, simulated devices, tools."""
