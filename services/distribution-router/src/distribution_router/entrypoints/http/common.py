"""What every router of the tenant API takes: the dependencies object.

No `from __future__ import annotations` in the routers: FastAPI must see the real types of
the routes' parameters, including the dependency aliases.
"""

from typing import Annotated

from fastapi import Depends
from nordflow_runtime.http import request_deps

from ...deps import Deps

AppDeps = Annotated[Deps, Depends(request_deps)]
