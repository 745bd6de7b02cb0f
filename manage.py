#!/usr/bin/env python
import os
import sys

# Commands that serve requests: without a SECRET_KEY they must keep refusing to start.
SERVING_COMMANDS = {"runserver", "runstack"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_web.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if "SECRET_KEY" not in os.environ and "DEBUG" not in os.environ and command not in SERVING_COMMANDS:
        # a fresh checkout (`manage.py check`, `makemigrations`, `shell`): development settings, said
        # out loud; production always sets SECRET_KEY, so this never applies there
        os.environ["DEBUG"] = "1"
        print("manage.py: no SECRET_KEY or DEBUG in the environment; using development settings (DEBUG=1).",
              file=sys.stderr)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
