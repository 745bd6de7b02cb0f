"""Signals for apps that come later in the dependency order (they must not be imported here)."""

from django.dispatch import Signal

# Sent after a training run's results are committed: sender=Run, run=<Run>.
run_trained = Signal()
