"""One gate run: the settings the user asked for, the session the plugin builds once (candidate, data, device
resolved), the scores it keeps, and each variant's life in the run."""
