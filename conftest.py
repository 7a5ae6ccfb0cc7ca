"""Thin: registers quantgate's pytest plugins; logic lives in quantgate/ and fixtures/."""

pytest_plugins = ["fixtures.plugin", "fixtures.variants"]
