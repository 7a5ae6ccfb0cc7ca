"""The place a team overrides one of quantgate's public fixtures for its own runs (pytest reads a conftest.py
in the rootdir; `quantgate gate` roots the run in the working directory). For instance its own evaluation data:

    import pytest
    from quantgate.public import GateData

    @pytest.fixture(scope="session")
    def gate_data():
        return GateData.from_folders("data/our-golden-queries")

The fixtures themselves live in the plugin (quantgate.fixtures.public); this repository overrides none."""
