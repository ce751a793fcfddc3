"""Who a Dagster run acts for, as the audit log records it."""

import dagster as dg

from retraining_assets.core.registry import Actor, actual_identity

# Dagster+ tags runs launched from the UI with the user; OSS runs carry no user.
USER_TAGS = ("dagster/user", "user")


def actor_of(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, claimed: str | None = None
) -> Actor:
    """The claimed user (job config) and the actual identity: the UI user from the run's tags,
    else the OS user running the code."""
    tags = context.run.tags
    actual = next((tags[tag] for tag in USER_TAGS if tags.get(tag)), None) or actual_identity()
    return Actor(by=claimed or "automation", actual_user=actual)
