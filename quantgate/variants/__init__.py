"""The variant matrix, above the backends: the registry (id -> spec, each spec's backend module), the factory that
builds and loads, the time guard."""
