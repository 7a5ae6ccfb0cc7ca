"""The model in production (--gate-baseline) and the regression gate's logic against it."""
