"""Keep Burr's import of ``burr.core`` from loading pandas into the server.

On its first import, ``burr.core.state`` registers serde plugins for langchain, pydantic
and pandas, importing each library that is installed. pandas is (Burr's ``[start]`` extra
brings it for Burr's Streamlit apps), yet no state of this chatbot holds a DataFrame, and
pandas with numpy and pyarrow was the largest part of the server's start-up. A finder on
``sys.meta_path`` declines the pandas plugin while ``burr.core.state`` is being initialised,
which Burr treats as "pandas not installed". Any later, explicit
``import burr.integrations.serde.pandas`` works as usual.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

PANDAS_PLUGIN = "burr.integrations.serde.pandas"
_BURR_STATE = "burr.core.state"


class _DeclinePandasPluginDuringBurrImport(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == PANDAS_PLUGIN and _burr_state_initialising():
            raise ImportError(f"{PANDAS_PLUGIN} is not auto-loaded by this chatbot")
        return None  # let the other finders do their usual work


def _burr_state_initialising() -> bool:
    module = sys.modules.get(_BURR_STATE)
    return module is not None and getattr(module.__spec__, "_initializing", False)


def skip_pandas_serde_plugin() -> None:
    """Install the finder once (idempotent); a no-op once ``burr.core`` is imported."""
    if not any(isinstance(f, _DeclinePandasPluginDuringBurrImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeclinePandasPluginDuringBurrImport())
