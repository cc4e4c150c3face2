"""API: the account's billing contacts, members and invitations. Thin views over
accounts.billing_contacts and accounts.members, which apply the same rules as the console."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses, id_parameter, is_authenticated

from . import members
from .api_access import (
    ACCOUNT_PERMISSIONS,
    AccountScopedSchema,
    IsAccountMember,
    request_account,
    request_membership,
)
from .billing_contacts import billing_contacts, billing_contacts_set
from .member_serializers import (
    BillingContactsOutputSerializer,
    BillingContactsSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
)
from .models import Invitation, Membership
from .selectors import get_for_account, scoped


class IsOwnerToChange(BasePermission):
    """Every member may read the members; only owners invite, change roles and remove."""

    message = _("Only owners can change who is a member of the account.")

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        membership = request_membership(request) if is_authenticated(request) else None
        return membership is not None and membership.role == Membership.Role.OWNER


OWNER_PERMISSIONS = [IsAccountMember, IsOwnerToChange]


@extend_schema(tags=["accounts"])
class BillingContactsApi(APIView):
    """Who receives the account's invoices, receipts and payment notices."""

    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        operation_id="billing_contacts_retrieve",
        responses={200: BillingContactsOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        return Response(BillingContactsOutputSerializer(billing_contacts(request_account(request))).data)

    @extend_schema(
        operation_id="billing_contacts_update",
        summary=_("Replace the billing contacts"),
        description=_(
            "Replaces the billing email and the further recipients at once; an address that is not "
            "one, or too many recipients, is refused whole (400). Owners are sent a security notice. "
            "Owners and billing members only."
        ),
        request=BillingContactsSerializer,
        responses={200: BillingContactsOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def put(self, request):
        account = request_account(request)
        serializer = BillingContactsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contacts = billing_contacts_set(
            account=account, actor=request.user, request=request, **serializer.validated_data
        )
        return Response(BillingContactsOutputSerializer(contacts).data)


def _members(account):
    return scoped(Membership.objects, account=account).select_related("user").order_by("pk")


@extend_schema(tags=["members"])
class MemberListApi(ListAPIView):
    """The account's members and their roles."""

    schema = AccountScopedSchema()
    permission_classes = OWNER_PERMISSIONS
    serializer_class = MemberSerializer

    def get_queryset(self):
        return _members(request_account(self.request))

    @extend_schema(
        operation_id="members_list",
        responses={200: MemberSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["members"], parameters=[id_parameter()])
class MemberDetailApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = OWNER_PERMISSIONS

    def get_member(self, request, id) -> Membership:
        account = request_account(request)
        return get_for_account(_members(account), account=account, pk=id)

    @extend_schema(
        operation_id="members_retrieve",
        responses={200: MemberSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, id):
        return Response(MemberSerializer(self.get_member(request, id)).data)

    @extend_schema(
        operation_id="members_update",
        summary=_("Change a member's role"),
        description=_("Owners only. The last owner cannot be given another role (400)."),
        request=MemberUpdateSerializer,
        responses={200: MemberSerializer, **error_responses(400, 401, 403, 404)},
    )
    def patch(self, request, id):
        membership = self.get_member(request, id)
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = members.member_set_role(
            membership=membership, actor=request.user, role=serializer.validated_data["role"], request=request
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        operation_id="members_destroy",
        summary=_("Remove a member"),
        description=_("Owners only. The last owner cannot be removed (400)."),
        request=None,
        responses={204: None, **error_responses(400, 401, 403, 404)},
    )
    def delete(self, request, id):
        members.member_remove(membership=self.get_member(request, id), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["members"])
class InvitationListApi(ListAPIView):
    """Invitations waiting to be accepted, and inviting a person by email."""

    schema = AccountScopedSchema()
    permission_classes = OWNER_PERMISSIONS
    serializer_class = InvitationSerializer

    def get_queryset(self):
        return members.pending_invitations(request_account(self.request)).order_by("pk")

    @extend_schema(
        operation_id="invitations_list",
        responses={200: InvitationSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="invitations_create",
        summary=_("Invite a person"),
        description=_(
            "Owners only. Emails the address a link that works once, until `expires_at`; a pending "
            "invitation for the same address stops working. An address that is already a member's is "
            "refused (400)."
        ),
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, *args, **kwargs):
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = members.invitation_create(
            account=request_account(request), actor=request.user, request=request, **serializer.validated_data
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["members"], parameters=[id_parameter()])
class InvitationDetailApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = OWNER_PERMISSIONS

    def get_invitation(self, request, id) -> Invitation:
        account = request_account(request)
        return get_for_account(members.pending_invitations(account), account=account, pk=id)

    @extend_schema(
        operation_id="invitations_retrieve",
        responses={200: InvitationSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, id):
        return Response(InvitationSerializer(self.get_invitation(request, id)).data)

    @extend_schema(
        operation_id="invitations_destroy",
        summary=_("Cancel an invitation"),
        description=_("Owners only. Its link stops working."),
        request=None,
        responses={204: None, **error_responses(400, 401, 403, 404)},
    )
    def delete(self, request, id):
        members.invitation_cancel(
            invitation=self.get_invitation(request, id), actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
