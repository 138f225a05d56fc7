from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from apps.accounts.models import RefreshToken, User
from apps.accounts.services import token_family_revoke

admin.site.site_header = "ElysiumUX · VR platform administration"
admin.site.site_title = "ElysiumUX"
admin.site.index_title = "Platform administration"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Platform", {"fields": ("display_name",)}),
    )
    list_display = ("username", "email", "display_name", "role_names", "is_active", "last_login")
    list_filter = ("groups", "is_active", "is_staff")

    @admin.display(description="roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all()))

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "family", "created_at", "expires_at", "used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "family")
    readonly_fields = [f.name for f in RefreshToken._meta.fields]
    actions = ["revoke_family"]

    @admin.action(description="Revoke the whole token family")
    def revoke_family(self, request, queryset):  # type: ignore[no-untyped-def]
        for family in set(queryset.values_list("family", flat=True)):
            token_family_revoke(family=family)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
