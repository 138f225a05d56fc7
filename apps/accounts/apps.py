from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles (AthenaCore)"

    def ready(self) -> None:
        from apps.accounts import checks, schema, signals  # noqa: F401  (registers them)
