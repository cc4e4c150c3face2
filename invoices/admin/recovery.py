"""The recovery report in admin, for support and finance: pick a currency and a period, read the
figures, the two charts with their tables, or download it all as CSV."""

import csv
import datetime

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.money import format_money
from invoices.charts import Point, bar_chart, line_chart
from invoices.recovery import (
    RecoveryReport,
    default_period,
    period_error,
    recovery_report,
    report_csv_rows,
    report_currencies,
)


class RecoveryPeriodForm(forms.Form):
    """The report's question: one currency, invoices due from a day to a day (both included)."""

    currency = forms.ChoiceField(label=gettext_lazy("Currency"))
    start = forms.DateField(label=gettext_lazy("Due from"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("Due until"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, query, *, currencies: list[str], today: datetime.date):
        # A visit without a question asks the default one, so the page always shows figures.
        start, end = default_period(today)
        data = {
            "currency": currencies[0] if currencies else "",
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        data.update({key: query[key] for key in data if query.get(key)})
        super().__init__(data)
        self.fields["currency"].choices = [(code, code) for code in currencies]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and (problem := period_error(start, end)):
            self.add_error("end", problem)
        return data


def report_for(
    data, *, today: datetime.date | None = None
) -> tuple[RecoveryPeriodForm, RecoveryReport | None]:
    today = today or timezone.localdate()
    form = RecoveryPeriodForm(data, currencies=report_currencies(), today=today)
    if not form.is_valid():
        return form, None
    return form, recovery_report(
        currency=form.cleaned_data["currency"],
        start=form.cleaned_data["start"],
        end=form.cleaned_data["end"],
        as_of=today,
    )


def csv_response(report: RecoveryReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"recovery-{report.currency}-{report.start.isoformat()}-{report.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")  # spreadsheet apps read UTF-8 by this mark
    writer = csv.writer(response)
    writer.writerows(report_csv_rows(report))
    return response


def charts(report: RecoveryReport):
    def money(amount_minor: int) -> str:
        return format_money(amount_minor, report.currency)

    by_position = bar_chart(
        _("Invoices paid, by place in the charge order"),
        [Point(row.label, row.paid.count, str(row.paid.count)) for row in report.by_position],
    )
    weekly = line_chart(
        _("Revenue recovered by backups, by week"),
        [
            Point(row.week.isoformat(), row.recovered_minor, money(row.recovered_minor))
            for row in report.weekly
        ],
        fmt=money,
    )
    return by_position, weekly


def recovery_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    form, report = report_for(request.GET)
    if report is not None and request.GET.get("format") == "csv":
        return csv_response(report)
    by_position, weekly = charts(report) if report is not None else (None, None)
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Recovery report"),
        "subtitle": None,
        "opts": model_admin.opts,
        "form": form,
        "report": report,
        "by_position_chart": by_position,
        "weekly_chart": weekly,
        "csv_query": query.urlencode(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/invoices/recovery/report.html", context)
