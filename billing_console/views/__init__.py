"""The console's shell: the base views every page builds on, the dashboard and the activity log
(the pages that draw on every app)."""

from core.views import ConsolePage, ManagerPage, MemberPage

from .activity import ActivityCsvView, ActivityView
from .dashboard import DashboardView

__all__ = ["ActivityCsvView", "ActivityView", "ConsolePage", "DashboardView", "ManagerPage", "MemberPage"]
