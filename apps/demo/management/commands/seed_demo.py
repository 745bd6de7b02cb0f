"""Create the demo users and the demo data of every app. Idempotent."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.services import role_groups_ensure
from apps.core.demo_password import demo_password
from apps.demo.seed import seed_demo_data

DEMO_USERS = [
    # username, group, is_staff, full name
    ("viewer", "viewer", False, "Vera Viewer"),
    ("engineer", "ml_engineer", False, "Emil Engineer"),
    ("analyst", "analyst", False, "Ana Analyst"),
    ("analyst2", "analyst", False, "Arne Analyst"),
    ("admin", None, True, "Ada Admin"),
]


class Command(BaseCommand):
    help = "Create the demo users and demo data; running it twice creates nothing twice."

    def add_arguments(self, parser):
        parser.add_argument("--users-only", action="store_true", help="only the demo users")

    def handle(self, *args, users_only: bool = False, **options):
        role_groups_ensure()
        password = demo_password()
        User = get_user_model()
        created = []
        with transaction.atomic():
            for username, group, is_staff, full_name in DEMO_USERS:
                user, was_created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "first_name": full_name.split()[0],
                        "last_name": full_name.split()[1],
                        "email": f"{username}@example.com",
                        "is_staff": is_staff,
                        "is_superuser": is_staff,
                    },
                )
                if was_created:
                    created.append(username)
                if was_created or not user.check_password(password):
                    user.set_password(password)
                    user.save(update_fields=["password"])
                if group:
                    user.groups.add(Group.objects.get(name=group))
        self.stdout.write(f"demo users ready ({', '.join(created) or 'none new'}); password: {password}")
        if users_only:
            return
        seed_demo_data(stdout=self.stdout)
