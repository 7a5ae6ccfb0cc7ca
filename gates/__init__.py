"""The gate: `pytest gates/` in this repository; `pytest --pyargs quantgate.gates` (or `quantgate gate`)
wherever quantgate is installed."""
