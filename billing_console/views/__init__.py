"""The console's shell: the base views every page builds on, and the dashboard."""

from core.views import ConsolePage, ManagerPage, MemberPage

from .dashboard import DashboardView

__all__ = ["ConsolePage", "DashboardView", "ManagerPage", "MemberPage"]
