"""Admin settings every app's ModelAdmin shares."""

from django.db import models

# Bare host names typed into URL fields become https:// (Django 6 default).
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}
