"""What every layer shares, below the backends: the variant spec, the candidate and its files, the artifact cache,
the machine's capabilities and the memory estimates. Nothing here imports another room of quantgate but errors and
logs."""
