"""The customer console: every page a member of an account sees in the browser."""

from django.urls import path

from accounts import member_views as members
from accounts import views as accounts
from billing_console.views import ActivityCsvView, ActivityView, DashboardView
from invoices import downloads
from invoices import views as invoices
from payments import views as payments

urlpatterns = [
    path("", DashboardView.as_view(), name="dashboard"),
    # Signing in and out, and resetting a forgotten password.
    path("sign-in/", accounts.SignInView.as_view(), name="login"),
    path("sign-out/", accounts.SignOutView.as_view(), name="logout"),
    path("password-reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", accounts.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        accounts.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/", accounts.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("switch-account/", accounts.SwitchAccountView.as_view(), name="switch_account"),
    path("settings/", accounts.SettingsView.as_view(), name="settings"),
    path("language/", accounts.LanguageView.as_view(), name="language"),
    # Who receives billing email, who is a member, and joining through an invitation.
    path("settings/billing-contacts/", members.BillingContactsView.as_view(), name="billing_contacts"),
    path("settings/members/", members.MembersView.as_view(), name="members"),
    path("settings/members/<int:pk>/", members.MemberChangeView.as_view(), name="member_change"),
    path(
        "settings/invitations/<int:pk>/cancel/",
        members.InvitationCancelView.as_view(),
        name="invitation_cancel",
    ),
    path("invitations/<str:token>/", members.InvitationAcceptView.as_view(), name="invitation_accept"),
    path("activity/", ActivityView.as_view(), name="activity"),
    path("activity/export/", ActivityCsvView.as_view(), name="activity_export"),
    # Payment methods and the charge order.
    path("payment-methods/", payments.PaymentMethodListView.as_view(), name="payment_methods"),
    path("payment-methods/order/", payments.ChargeOrderSetView.as_view(), name="charge_order_set"),
    path(
        "payment-methods/add/<slug:kind>/", payments.AddPaymentMethodView.as_view(), name="payment_method_add"
    ),
    path(
        "payment-methods/add/<slug:kind>/confirm/",
        payments.ConfirmAddPaymentMethodView.as_view(),
        name="payment_method_add_confirm",
    ),
    path(
        "payment-methods/<int:pk>/order/",
        payments.ChargeOrderActionView.as_view(),
        name="charge_order_action",
    ),
    path(
        "payment-methods/<int:pk>/leave-order/",
        payments.LeaveChargeOrderView.as_view(),
        name="charge_order_leave",
    ),
    path(
        "payment-methods/<int:pk>/remove/",
        payments.RemovePaymentMethodView.as_view(),
        name="payment_method_remove",
    ),
    path(
        "payment-methods/<int:pk>/expiry/",
        payments.UpdateExpiryView.as_view(),
        name="payment_method_expiry",
    ),
    # Invoices.
    path("invoices/", invoices.InvoiceListView.as_view(), name="invoices"),
    path("invoices/export/", downloads.InvoiceCsvView.as_view(), name="invoices_export"),
    path("invoices/<int:pk>/", invoices.InvoiceDetailView.as_view(), name="invoice_detail"),
    path("invoices/<int:pk>/pay/", invoices.InvoicePayNowView.as_view(), name="invoice_pay_now"),
    path(
        "invoices/<int:pk>/authenticate/",
        invoices.InvoiceAuthenticateView.as_view(),
        name="invoice_authenticate",
    ),
    path("invoices/<int:pk>/pdf/", downloads.InvoicePdfView.as_view(), name="invoice_pdf"),
]
