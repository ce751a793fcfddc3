"""How a plot shows in an asset's metadata. Dagster's UI renders a Markdown value inline only
when it is under 1,000 characters (``MetadataEntry.tsx``, ``expandSmallValues``); a PNG as a
``data:`` URI never is, so it would sit behind "[Show Markdown]". An image that points at the
report server's copy stays short and shows on the asset page, and its URL opens in one click."""

import dagster as dg


def inline_image(alt: str, url: str) -> dg.MetadataValue:
    """Markdown the UI shows as the image at ``url`` (a report server URL, already quoted)."""
    return dg.MetadataValue.md(f"![{alt}]({url})")
