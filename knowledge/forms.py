from django import forms

from marketplace.models import Agent

from .models import KnowledgeEntry, clean_tags


class KnowledgeEntryForm(forms.ModelForm):
    source_url = forms.URLField(
        label="Source link", required=False, max_length=500, assume_scheme="https"
    )
    tags = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated words of letters, digits, - and _, e.g. “billing, on-call”.",
    )

    class Meta:
        model = KnowledgeEntry
        fields = ("title", "content_type", "body", "source_url", "agent", "tags")
        labels = {"content_type": "Type", "source_url": "Source link", "agent": "For agent"}
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}
        help_texts = {"body": "Markdown is fine."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Only agents the user installed (plus the current one): a select over the whole
        # marketplace would be thousands of options long.
        installed = Agent.objects.filter(installations__user=user)
        current = self.instance.agent_id
        agents = Agent.objects.filter(pk__in=installed.values("pk"))
        if current:
            agents = agents | Agent.objects.filter(pk=current)
        self.fields["agent"].queryset = agents.only("id", "name").order_by("name")
        self.fields["agent"].empty_label = "No particular agent"
        self.fields["agent"].help_text = "One of the agents you installed."
        if self.instance.pk and not self.is_bound:
            self.initial["tags"] = ", ".join(self.instance.tags or [])

    def clean_tags(self):
        return clean_tags([t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()])


class KnowledgeFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    type = forms.ChoiceField(
        required=False,
        choices=[("", "All types"), *KnowledgeEntry.ContentType.choices],
        label="Type",
    )
