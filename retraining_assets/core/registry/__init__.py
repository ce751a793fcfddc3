"""The model registry: numbered versions, artifacts with checksums, aliases with their full
history, an append-only audit log, pending approvals and the training watermark."""

from retraining_assets.core.registry.registry import *  # noqa: F403
from retraining_assets.core.registry.registry import REJECTED, utc_now  # noqa: F401
