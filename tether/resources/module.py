"""``module``: an application that consumes data; data sets select them by ``module-filter``."""

from __future__ import annotations

from tether.auth import acl as acl_mod
from tether.resources.base import ResourceKind


class ModuleKind(ResourceKind):
    name = "module"
    description = "An application that can open data of the content types it accepts."
    properties = {
        "data-accept-content-types": {
            "type": "array",
            "items": {"type": "string", "maxLength": 255},
            "maxItems": 256,
        },
        "url": {"type": "string", "maxLength": 2048},
    }
    collection_acl = {
        "query": [acl_mod.USER],
        "add": [acl_mod.USER],
        "bulk-delete": [acl_mod.USER],
    }
