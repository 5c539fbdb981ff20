"""The set of resource kinds a server knows, including the template collections."""

from __future__ import annotations

from collections.abc import Iterable

from tether.auth import acl as acl_mod
from tether.errors import NotFound
from tether.resources.base import Doc, ResourceKind, Template


class TemplateKind(ResourceKind):
    """``<type>-template``: read-only resources describing how to create a templated type."""

    editable = False
    deletable = False
    audited = False
    collection_acl = {"query": [acl_mod.ANON], "add": [], "bulk-delete": []}

    def __init__(self, parent: ResourceKind) -> None:
        self.name = f"{parent.name}-template"
        self.description = f"Templates for creating {parent.name} resources."
        self.parent = parent
        super().__init__()


def template_doc(kind: ResourceKind, template: Template, timestamp: str) -> Doc:
    return {
        "id": f"{kind.name}-template/{template.subtype}",
        "resource-type": f"{kind.name}-template",
        "created": timestamp,
        "updated": timestamp,
        "created-by": "internal",
        "updated-by": "internal",
        "name": template.name,
        "description": template.description,
        "subtype": template.subtype,
        "method": template.subtype,
        "href": f"{kind.name}-template/{template.subtype}",
        "fields": sorted(template.properties),
        "acl": acl_mod.normalize(
            {acl_mod.OWNERS: [acl_mod.ADMIN], acl_mod.VIEW_DATA: list(template.view)}
        ),
    }


class Registry:
    def __init__(self, kinds: Iterable[ResourceKind]) -> None:
        self._kinds: dict[str, ResourceKind] = {}
        for kind in kinds:
            self._kinds[kind.name] = kind
            if kind.templated:
                tkind = TemplateKind(kind)
                self._kinds[tkind.name] = tkind

    def __contains__(self, name: str) -> bool:
        return name in self._kinds

    def kind(self, name: str) -> ResourceKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise NotFound(f"unknown resource type '{name}'") from None

    def kinds(self) -> list[ResourceKind]:
        return list(self._kinds.values())

    def templated(self) -> list[ResourceKind]:
        return [k for k in self._kinds.values() if k.templated]
