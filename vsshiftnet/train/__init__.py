"""Training: `python -m vsshiftnet.train`, export with `python -m vsshiftnet.train.export`."""
