"""Traffic routers: pure functions from (the object in the cluster, the traffic wanted) to the object to
write, or :class:`CannotExpress`. See :mod:`.base` for the contract."""

from .base import CannotExpress, HeaderMatch, HeaderRoute, Result, Split, Traffic, Write, two_way
from .gateway import GatewayRoute, http_route
from .istio import IstioRoute, destination_rule, virtual_service
from .nginx import NginxCanary, canary_ingress
from .services import replica_ratio
from .smi import SmiSplit, traffic_split

__all__ = [
    "CannotExpress",
    "GatewayRoute",
    "HeaderMatch",
    "HeaderRoute",
    "IstioRoute",
    "NginxCanary",
    "Result",
    "SmiSplit",
    "Split",
    "Traffic",
    "Write",
    "canary_ingress",
    "destination_rule",
    "http_route",
    "replica_ratio",
    "traffic_split",
    "two_way",
    "virtual_service",
]
