"""One gate run: the settings the user asked for, the frozen context they resolve to (candidate, data, device), the
score store, and the plugin's session object with each variant's life in the run."""
