"""On-demand feature views at the import path Feast repositories use (`feast.on_demand_feature_view`)."""

import sys
import types
from typing import Any

from potluck.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view

__all__ = ["OnDemandFeatureView", "on_demand_feature_view"]


class _CallableModule(types.ModuleType):
    # Importing this module replaces the attribute `potluck.on_demand_feature_view` (the decorator)
    # with the module itself; calling the module then still declares a view.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return on_demand_feature_view(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
