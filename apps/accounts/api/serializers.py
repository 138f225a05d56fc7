from rest_framework import serializers


class AuthenticateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=256, trim_whitespace=False, style={"input_type": "password"}
    )


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=512)


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    display_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())
    is_staff = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField(help_text="JWT access token, valid 15 minutes.")
    refresh = serializers.CharField(help_text="Opaque refresh token; single use (rotated).")
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Access token lifetime in seconds.")
    user = UserOutput()


class RolesInput(serializers.Serializer):
    roles = serializers.ListField(child=serializers.CharField(max_length=32), max_length=8)
