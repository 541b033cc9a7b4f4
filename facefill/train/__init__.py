"""Training: the loop (callbacks for progress and stop) and checkpoint state."""
