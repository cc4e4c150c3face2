from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from invoices.webhooks import webhook_receive


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("billing_console.api_urls")),
    path("healthz", healthz, name="healthz"),
    path("webhooks/<slug:gateway>/", webhook_receive, name="webhook"),
    path("", include("billing_console.console_urls")),
]
