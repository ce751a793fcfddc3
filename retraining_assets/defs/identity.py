"""Who a Dagster run acts for, as the audit log records it."""

from collections.abc import Mapping

import dagster as dg

from retraining_assets.core.registry import Actor, actual_identity

# Dagster+ tags runs launched from the UI with the user; OSS runs carry no user.
USER_TAGS = ("dagster/user", "user")

Context = dg.AssetExecutionContext | dg.OpExecutionContext


def _op_context(context: Context) -> dg.OpExecutionContext:
    # the op context answers in a run and when an asset is invoked directly in a test
    # (``build_asset_context``), where ``context.run`` is not set
    if isinstance(context, dg.AssetExecutionContext):
        return context.op_execution_context
    return context


def run_tags(context: Context) -> Mapping[str, str]:
    return _op_context(context).run_tags


def run_id(context: Context) -> str:
    """The run's id ("EPHEMERAL" when invoked directly)."""
    return _op_context(context).run_id


def actor_of(context: Context, claimed: str | None = None) -> Actor:
    """The claimed user (job config) and the actual identity: the UI user from the run's tags,
    else the OS user running the code."""
    tags = run_tags(context)
    actual = next((tags[tag] for tag in USER_TAGS if tags.get(tag)), None) or actual_identity()
    return Actor(by=claimed or "automation", actual_user=actual)
