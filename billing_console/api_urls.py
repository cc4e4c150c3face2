"""The REST API, mounted at /api/. Its OpenAPI 3 schema is at /api/schema/, interactive docs at /api/docs/."""

from django.conf import settings
from django.urls import path
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import AccountListApi, AuthTokenApi
from accounts.member_api import (
    BillingContactsApi,
    InvitationDetailApi,
    InvitationListApi,
    MemberDetailApi,
    MemberListApi,
)
from invoices.api import (
    InvoiceAttemptListApi,
    InvoiceDetailApi,
    InvoiceListApi,
    InvoicePayApi,
    StaffInvoiceIssueApi,
)
from invoices.download_api import InvoiceExportApi, InvoicePdfApi
from invoices.recovery_api import StaffRecoveryReportApi
from payments.api import ChargeOrderApi, PaymentMethodDetailApi, PaymentMethodListApi
from payments.stripe_api import PaymentMethodSetupApi

# Swagger UI's assets come from drf-spectacular-sidecar through our static files, its script from a
# separate request (the "split" view); only its small inline stylesheet needs an exception.
_docs_csp = {**settings.SECURE_CSP, "style-src": [*settings.SECURE_CSP["style-src"], "'unsafe-inline'"]}

# Ids are matched as any path segment so that a malformed one is the API's JSON 404.
urlpatterns = [
    path("auth/token/", AuthTokenApi.as_view(), name="api-auth-token"),
    path("accounts/", AccountListApi.as_view(), name="api-accounts"),
    path("account/billing-contacts/", BillingContactsApi.as_view(), name="api-billing-contacts"),
    path("members/", MemberListApi.as_view(), name="api-members"),
    path("members/<str:id>/", MemberDetailApi.as_view(), name="api-member"),
    path("invitations/", InvitationListApi.as_view(), name="api-invitations"),
    path("invitations/<str:id>/", InvitationDetailApi.as_view(), name="api-invitation"),
    path("payment-methods/", PaymentMethodListApi.as_view(), name="api-payment-methods"),
    path("payment-methods/setup/", PaymentMethodSetupApi.as_view(), name="api-payment-method-setup"),
    path("payment-methods/<str:id>/", PaymentMethodDetailApi.as_view(), name="api-payment-method"),
    path("charge-order/", ChargeOrderApi.as_view(), name="api-charge-order"),
    path("invoices/", InvoiceListApi.as_view(), name="api-invoices"),
    path("invoices/export/", InvoiceExportApi.as_view(), name="api-invoices-export"),
    path("invoices/<str:id>/", InvoiceDetailApi.as_view(), name="api-invoice"),
    path("invoices/<str:id>/pdf/", InvoicePdfApi.as_view(), name="api-invoice-pdf"),
    path("invoices/<str:id>/attempts/", InvoiceAttemptListApi.as_view(), name="api-invoice-attempts"),
    path("invoices/<str:id>/pay/", InvoicePayApi.as_view(), name="api-invoice-pay"),
    path("staff/invoices/", StaffInvoiceIssueApi.as_view(), name="api-staff-invoices"),
    path("staff/recovery/", StaffRecoveryReportApi.as_view(), name="api-staff-recovery"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        csp_override(_docs_csp)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
