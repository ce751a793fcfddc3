"""Rollout: the traffic router, rollout plans, the experiment statistics behind decisions, the
rollout's state transitions and the A/B experiment report."""

from retraining_assets.core.rollout.hashing import *  # noqa: F403
