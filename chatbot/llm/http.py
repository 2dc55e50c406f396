"""The HTTP library the installed ``openai`` SDK is built on.

Recent SDK releases moved from ``httpx`` to its successor ``httpx2`` (same API). A custom
transport or client handed to the SDK must come from the same library, so everything in
this package imports it from here.
"""

try:
    import httpx2 as httpx
except ImportError:  # older SDKs
    import httpx  # type: ignore[no-redef]

__all__ = ["httpx"]
