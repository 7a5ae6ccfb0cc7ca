"""summary.md, the plots and the recommendation, written from a verdict."""
