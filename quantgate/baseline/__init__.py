"""The model in production (--gate-baseline): resolved, checked and loaded; the regression gate against it runs with
the session's services (quantgate.session.regression)."""
