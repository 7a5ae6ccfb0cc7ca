"""The variant matrix: the registry (id -> spec), the factory that builds and loads, the artifact cache, the
candidate, the machine's capabilities and the memory guard."""
