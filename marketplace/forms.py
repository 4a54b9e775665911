from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from . import filters
from .managers import DEFAULT_AGENT_ORDERING
from .models import RATINGS
from .search import MAX_QUERY_LENGTH, RELEVANCE

SORT_CHOICES = [
    ("-rating", "Top rated"),
    ("-installs", "Most installed"),
    ("-created", "Newest"),
    ("-updated", "Recently updated"),
    ("name", "Name (A to Z)"),
]

MIN_RATING_CHOICES = [
    ("", "Any rating"),
    ("4", "4★ and up"),
    ("3", "3★ and up"),
    ("2", "2★ and up"),
]


class CategoryChoiceField(forms.ChoiceField):
    """The menu lists categories with listed agents; any existing category is a valid filter."""

    def valid_value(self, value):
        return super().valid_value(value) or filters.category_exists(value)


class BrowseForm(forms.Form):
    """Browse filters from the query string. An invalid one (marketplace.filters) makes the
    page a 400 with the error shown; the list then leaves that filter out, never a 500."""

    category = CategoryChoiceField(
        required=False, error_messages={"invalid_choice": "Unknown category “%(value)s”."}
    )
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)
    min_rating = forms.ChoiceField(choices=MIN_RATING_CHOICES, required=False, label="Rating")

    def __init__(self, data=None, *, categories=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["category"].choices = [("", "All categories")] + [
            (c["category__slug"], f"{c['category__name']} ({c['count']})") for c in categories
        ]

    def filters(self) -> dict:
        """Valid filters only: an invalid category, sort or rating is left out."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "category": data.get("category") or "",
            "sort": data.get("sort") or DEFAULT_AGENT_ORDERING,
            "min_rating": int(data["min_rating"]) if data.get("min_rating") else None,
        }


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(r, f"{r} star{'s' if r > 1 else ''}") for r in reversed(RATINGS)],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick a rating from 1 to 5 stars."},
    )
    title = forms.CharField(max_length=120, required=False)
    body = forms.CharField(
        label="Review",
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional; only used to reset a password.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search for",
        max_length=MAX_QUERY_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "What should it do?"}),
    )
    category = forms.SlugField(required=False, validators=[filters.validate_category])
    sort = forms.ChoiceField(
        choices=[(RELEVANCE, "Best match"), *SORT_CHOICES], required=False, label="Sort by"
    )
    min_rating = forms.ChoiceField(choices=MIN_RATING_CHOICES, required=False, label="Rating")
