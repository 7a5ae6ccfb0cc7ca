"""What a run ends in: the verdict (versioned, one merge), the run's state, resume, the quality history."""
