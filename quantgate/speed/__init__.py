"""Speed: the workloads and calls pytest-benchmark times, the phases of a call, auto batch, the history rule."""
