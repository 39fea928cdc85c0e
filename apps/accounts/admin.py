"""Django admin for users: search, filters, and actions that go through the use cases.

Status changes and session revocation run the same use cases as the API, so suspending a user
here revokes their tokens exactly as `PATCH /api/v1/users/{id}` does. Passwords are set through
Django's forms, hence through the configured bcrypt hasher.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.db import router, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_ratelimit.exceptions import Ratelimited

from apps.accounts import ratelimits, wiring
from apps.accounts.models import User
from apps.common.admin import CheckedInputAdmin
from apps.common.forms import JSONTextField
from core.domain.accounts.user import UserStatus
from core.domain.accounts.values import (
    ADMIN_ROLE,
    MAX_EMAIL_LENGTH,
    MAX_ROLES,
    NAME_MESSAGE,
    USER_ROLE,
    Email,
    PasswordHash,
    is_valid_full_name,
    parse_roles,
    parse_uuid,
)
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.admin import DeleteUsersError, UpdateUserError, UserChanges
from core.usecases.accounts.authentication import Credentials
from core.usecases.accounts.maintenance import NewUser


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(USER_ROLE, USER_ROLE), (ADMIN_ROLE, ADMIN_ROLE)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if not self.value():
            return queryset
        return queryset.annotate(roles_text=Cast("roles", TextField())).filter(
            roles_text__contains=f'"{self.value()}"'
        )


def _email_field(error_messages: dict[str, str] | None = None) -> forms.CharField:
    # Not Django's EmailField: its validator would run on the raw text, before normalisation.
    return forms.CharField(
        max_length=MAX_EMAIL_LENGTH,
        help_text="An ASCII local part, stored lowercased; an internationalised host in A-labels.",
        error_messages=error_messages,
    )


def _normalised_email(raw: str) -> str:
    """The address as the API accepts and stores it (`Email.parse`), or a form error."""
    email = Email.parse(raw)
    if email is None:
        raise forms.ValidationError("Enter a valid email address.")
    return email.value


def _checked_name(full_name: str) -> str:
    """The API's rule for a name (`is_valid_full_name`), in the admin's forms."""
    if not is_valid_full_name(full_name):
        raise forms.ValidationError(NAME_MESSAGE)
    return full_name


class AdminUserCreationForm(UserCreationForm):  # type: ignore[type-arg]
    """The add page's form; the user itself is made by `CreateUser` (`UserAdmin.save_model`).
    A taken address is the model form's own unique check, run on the normalised value."""

    email = _email_field({"unique": "An account with this email already exists."})

    class Meta:
        model = User
        fields = ("email", "full_name")

    def clean_email(self) -> str:
        return _normalised_email(self.cleaned_data["email"])

    def clean_full_name(self) -> str:
        return _checked_name(self.cleaned_data.get("full_name") or "")


ROLES_MESSAGE = (
    f"Enter a JSON list of at most {MAX_ROLES} roles, each a short lowercase slug "
    '(`user`, `admin`, `billing:read`), for example ["user", "admin"]; [] for none.'
)


class AdminUserChangeForm(UserChangeForm):  # type: ignore[type-arg]
    email = _email_field()
    # Tokens carry the roles as they are stored: the domain's rule (`parse_roles`), as for
    # `PATCH /api/v1/users/{id}`, so a bare string, numbers, null or a header-breaking role
    # never reach the database (nor a token).
    roles = JSONTextField(required=False, help_text=ROLES_MESSAGE)

    def clean_email(self) -> str:
        return _normalised_email(self.cleaned_data["email"])

    def clean_full_name(self) -> str:
        return _checked_name(self.cleaned_data.get("full_name") or "")

    def clean_roles(self) -> list[str]:
        roles = parse_roles(self.cleaned_data.get("roles"))
        if roles is None:
            raise forms.ValidationError(ROLES_MESSAGE)
        return list(roles)


class AdminLoginForm(AdminAuthenticationForm):
    """Django admin's sign-in under the API login's rules against password guessing: the same
    per-IP rate limit (`ACCOUNTS_LOGIN_RATE`, one budget for both) and the same account lockout
    (`VerifyCredentials`: a locked account is refused even with the right password, a wrong
    one counts). Every refusal but the rate limit is Django's one "enter the correct email and
    password" error, whatever the account."""

    def clean(self) -> dict[str, Any]:
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is not None and password and self.request is not None:
            try:
                ratelimits.enforce(self.request, "login")
            except Ratelimited as limited:
                raise forms.ValidationError(
                    "Too many sign-in attempts from your address; try again in %(seconds)s "
                    "seconds.",
                    code="rate_limited",
                    params={"seconds": getattr(limited, "retry_after", 60)},
                ) from None
            if wiring.verify_credentials().execute(Credentials(email, password)).is_err():
                raise self.get_invalid_login_error()
        cleaned: dict[str, Any] = super().clean()  # Django's own sign-in, now allowed
        return cleaned


admin.site.login_form = AdminLoginForm


_django_password_change = admin.site.password_change


def _password_change(
    request: HttpRequest, extra_context: dict[str, Any] | None = None
) -> HttpResponse:
    """Django admin's own "change password" page (the signed-in admin's password): once it is
    changed, every API session of that user ends and the reset links mailed before stop
    working (`SealPasswordSet`), as on a user's page (`UserAdmin.user_change_password`). The
    admin's signed-in session goes on, as Django keeps it."""
    response: HttpResponse = _django_password_change(request, extra_context)
    if request.method == "POST" and response.status_code == 302:
        wiring.seal_password_set().execute(str(request.user.pk)).unwrap()
    return response


# The site's URLs are built later (config/urls.py), from this attribute.
admin.site.password_change = _password_change  # type: ignore[method-assign]


# Why an action left a user as they were, by `UpdateUser`'s error code.
_SKIPPED_BECAUSE = {
    UpdateUserError.ILLEGAL_TRANSITION: "that status change is not allowed",
    UpdateUserError.USER_DELETED: "their account is deleted",
    UpdateUserError.NOT_FOUND: "they no longer exist",
    UpdateUserError.LAST_ADMIN_STATUS: "it would leave no active admin",
}


def _apply(request: HttpRequest, queryset: QuerySet[User], changes: UserChanges, done: str) -> None:
    use_case = wiring.update_user()
    changed = 0
    skipped: Counter[str] = Counter()
    for user_id in queryset.values_list("id", flat=True):
        match use_case.execute(str(user_id), changes):
            case Ok(_):
                changed += 1
            case Err(error):
                skipped[_SKIPPED_BECAUSE.get(error, "they could not be updated")] += 1
    messages.info(request, f"{changed} user(s) {done}.")
    for reason, count in skipped.items():
        messages.warning(request, f"{count} user(s) skipped: {reason}.")


LAST_ADMIN_DELETE = (
    "Nothing was deleted: it would leave no active admin. Make another user an active admin first."
)
# Why a delete was refused, by `DeleteUsers`' error code.
_NOT_DELETED_BECAUSE = {DeleteUsersError.LAST_ADMIN: LAST_ADMIN_DELETE}


class _DeleteRefused(Exception):
    """`DeleteUsers` refused a delete: raised out of `delete_model` and `delete_queryset`, in
    the middle of Django's delete view and action, so that their transaction rolls back (the
    log entries of the deletion too) and they say why instead of their success message."""


def _delete_users(user_ids: Iterable[Any]) -> None:
    """Delete the users through `DeleteUsers`, inside the admin's transaction: every session
    of theirs ends first (their access tokens would otherwise act for users who no longer
    exist until they expire: the gateway checks only the cache's facts), the rows go after,
    and a delete that would leave no active admin is refused (`_DeleteRefused`). The users'
    rows are locked before the rows that refer to them (her reset links...) are deleted, so
    a reset, which locks the user and then the link, cannot deadlock with it."""
    match wiring.delete_users().execute(str(user_id) for user_id in user_ids):
        case Err(error):
            raise _DeleteRefused(_NOT_DELETED_BECAUSE[error])
        case Ok(_):
            pass


@admin.register(User)
class UserAdmin(CheckedInputAdmin, DjangoUserAdmin):
    add_form = AdminUserCreationForm
    form = AdminUserChangeForm
    ordering = ("-created_at",)
    list_display = ("email", "full_name", "status", "email_verified", "roles", "created_at")
    list_filter = ("status", "email_verified", RoleFilter, "is_staff")
    search_fields = ("email", "deleted_email", "full_name")
    readonly_fields = (
        "status",
        "deleted_email",
        "created_at",
        "updated_at",
        "last_login",
        "tokens_valid_after",
        "sessions_ended_at",
        "failed_logins",
        "locked_until",
    )
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "roles", "email_verified")}),
        (
            "Status (change it with the actions)",
            {"fields": ("status", "deleted_email", "tokens_valid_after", "sessions_ended_at")},
        ),
        ("Django admin access", {"fields": ("is_staff", "is_superuser", "groups")}),
        (
            "Activity",
            {"fields": ("created_at", "updated_at", "last_login", "failed_logins", "locked_until")},
        ),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    filter_horizontal = ("groups",)
    actions = (
        "delete_selected",  # Django's, through `DeleteUsers` (first, where Django lists it)
        "activate",
        "suspend",
        "deactivate",
        "verify_email",
        "revoke_sessions",
    )

    @admin.action(description="Activate selected users")
    def activate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        _apply(request, queryset, UserChanges(status=UserStatus.ACTIVE), "activated")

    @admin.action(description="Suspend selected users (revokes their tokens)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        _apply(request, queryset, UserChanges(status=UserStatus.SUSPENDED), "suspended")

    @admin.action(description="Deactivate selected users (revokes their tokens)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        _apply(request, queryset, UserChanges(status=UserStatus.INACTIVE), "deactivated")

    @admin.action(description="Mark selected users' email verified")
    def verify_email(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        _apply(request, queryset, UserChanges(email_verified=True), "verified")

    @admin.action(description="Revoke every session of selected users")
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        use_case = wiring.logout_all()
        ids = list(queryset.values_list("id", flat=True))
        for user_id in ids:
            use_case.execute(str(user_id))
        messages.info(request, f"Sessions of {len(ids)} user(s) revoked.")

    def is_selectable_id(self, value: str) -> bool:
        """A user id as the API takes one (`parse_uuid`): an undashed form is no user id."""
        return parse_uuid(value) is not None

    @admin.action(permissions=["delete"], description=django_delete_selected.short_description)
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> Any:
        """Django's delete action, with its log entries in the delete's one transaction: a
        delete `DeleteUsers` refuses (`delete_queryset`) leaves no entry of it, and the admin
        is told why instead of Django's "Successfully deleted"."""
        try:
            with transaction.atomic(using=router.db_for_write(User)):
                return django_delete_selected(self, request, queryset)
        except _DeleteRefused as refused:
            messages.error(request, str(refused))
            return None

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Django's delete view; a delete `DeleteUsers` refuses (`delete_model`) rolls the
        view's transaction back and leads to the user's page with the reason, instead of
        Django's success message."""
        try:
            response: HttpResponse = super().delete_view(request, object_id, extra_context)
        except _DeleteRefused as refused:
            messages.error(request, str(refused))
            opts = self.opts
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=(object_id,),
                    current_app=self.admin_site.name,
                )
            )
        return response

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        """The delete view's delete: `DeleteUsers` (see `_delete_users`)."""
        _delete_users([obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """The delete action's delete: `DeleteUsers` (see `_delete_users`)."""
        _delete_users(queryset.values_list("id", flat=True))

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """A password set here ends the user's sessions, as a reset through the API does, and
        the reset links mailed before it stop working, as after a change through the API: both
        in one transaction (`SealPasswordSet`)."""
        response: HttpResponse = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            wiring.seal_password_set().execute(str(id)).unwrap()
        return response

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        """A deleted account is final (`User.is_final`): its page is view-only, and its
        password cannot be set either."""
        if obj is not None and _is_final(obj):
            return False
        return bool(super().has_change_permission(request, obj))

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Django's change view; a save first locks the user's row, in the view's own
        transaction, before Django reads it: a change committed since the page was loaded
        (logout-all, a soft delete, a lockout...) is what the form is checked and saved
        against, and one landing meanwhile waits for the save instead of being overwritten
        by it. A save to an account deleted since its page was loaded changes nothing (it
        would give the account back the address it released) and says so."""
        user_id = parse_uuid(unquote(object_id)) if object_id is not None else None
        if request.method != "POST" or user_id is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        alias = router.db_for_write(User)
        with transaction.atomic(using=alias):
            # The signed-in admin's row too, in one statement in id order (the one lock order
            # of paths that lock several users): the log entry of the save refers to it, and
            # its foreign key check waits for a status change that locked every active
            # admin's row with this user's; locked the other way round, they deadlock.
            locked = (
                User.objects.using(alias)
                .select_for_update()
                .filter(pk__in={user_id, str(request.user.pk)})
                .order_by("pk")
            )
            current = next((row for row in locked if str(row.pk) == user_id), None)
            if current is not None and _is_final(current):
                messages.error(request, DELETED_UNCHANGED)
                return HttpResponseRedirect(request.path)
            response: HttpResponse = super().changeform_view(
                request, object_id, form_url, extra_context
            )
        return response

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            # A new user is made as the domain makes one (the default roles...); the form
            # has checked the address and the password and hashed the latter (or left it
            # unusable). `obj` becomes that row, for the admin's log and redirect.
            command = NewUser(obj.email, PasswordHash(obj.password), obj.full_name)
            created = wiring.create_user().execute(command).unwrap()
            obj.pk = created.id.value
            obj.refresh_from_db()
            obj._state.adding = False
            return
        deferred = [field for field in _THROUGH_UPDATE_USER if field in form.changed_data]
        # Only the columns the form changed are written: one the page does not edit
        # (`sessions_ended_at`, `tokens_valid_after`, `status`, `deleted_email`, the
        # lockout...) is never written back as it was read, whatever committed meanwhile.
        written = [name for name in form.changed_data if name in _FORM_COLUMNS]
        if written:
            obj.save(using=router.db_for_write(User), update_fields=[*written, "updated_at"])
        if not deferred:
            return
        # New roles and a change of the email's verification go through UpdateUser, as the
        # API's and the actions' changes do: it revokes the access tokens that carry old roles,
        # and it keeps the last active admin one (`leaves_no_admin`). The form saves the other
        # fields first; these change once the admin's transaction has committed, so a refresh
        # in between cannot mint a token with the old roles after they were revoked.
        changes = UserChanges(
            roles=tuple(obj.roles) if "roles" in deferred else None,
            email_verified=bool(obj.email_verified) if "email_verified" in deferred else None,
        )
        for field in deferred:  # as stored until then, for the admin's log
            setattr(obj, field, form.initial.get(field))

        def apply_changes() -> None:
            match wiring.update_user().execute(str(obj.pk), changes):
                case Err(UpdateUserError.LAST_ADMIN_ROLE):
                    messages.error(
                        request,
                        "The roles were not changed: this user is the last active admin, and "
                        "keeps the admin role until another user is an active admin.",
                    )
                case Err(UpdateUserError.LAST_ADMIN_VERIFICATION):
                    messages.error(
                        request,
                        "The email verification was not changed: this user is the last active "
                        "admin, and stays verified until another user is an active admin.",
                    )
                case Err(_):
                    messages.error(
                        request,
                        f"The {_unchanged(deferred)} not changed: the user could not be updated.",
                    )

        transaction.on_commit(apply_changes, using=router.db_for_write(User))


# The change form's fields that are changed through `UpdateUser`, after the form's own save.
_THROUGH_UPDATE_USER = ("roles", "email_verified")
# The columns the change form's own save writes when changed (its groups are saved apart).
_FORM_COLUMNS = frozenset(
    field.name for field in User._meta.concrete_fields if field.name not in _THROUGH_UPDATE_USER
)

DELETED_UNCHANGED = (
    "Nothing was saved: this account is deleted, and a deleted account never changes again."
)


def _is_final(user: User) -> bool:
    """`User.is_final`, on a row: a deleted account."""
    return UserStatus(user.status) is UserStatus.DELETED


def _unchanged(fields: list[str]) -> str:
    """What a refused `UpdateUser` left as it was, for the admin's message."""
    names = {"roles": "roles were", "email_verified": "email verification was"}
    if len(fields) == 1:
        return names[fields[0]]
    return "roles and the email verification were"


# Django's own group admin, under the platform's checks of query strings and selected ids.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(CheckedInputAdmin, DjangoGroupAdmin):
    pass
