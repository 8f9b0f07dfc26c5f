"""Datasets: the synthetic two-view ball images and CITE-seq (real file or simulator)."""
from .balls import BallsData, channel_stats, make_balls, treatment_name

__all__ = ["BallsData", "channel_stats", "make_balls", "treatment_name"]
